"""The ``/v1`` routes of the workflow records: approval gates (request, list — the pending
ones with ``status=pending`` —, get, approve, reject, cancel), command runs (queue, record a
finished one, list, get with its output, start, finish, cancel), checkpoints (save, list,
latest, get) and the verification of the project's audit chain.

Every id is looked up by the service within the URL's project, so another project's record
answers exactly like an unknown one. A create with ``Idempotency-Key`` is answered, on a
retry, with the record that key made (the services keep the key per project).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ctxdb.http import workflow_models as w
from ctxdb.http.encoding import EncodedRoute
from ctxdb.http.problems import PROBLEM_RESPONSES
from ctxdb.http.routing import Admin, IdempotencyKey, Reader, Writer, project_naming

v1 = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES, route_class=EncodedRoute)
PROJECT = "/projects/{project_id}"


# --- approval gates -----------------------------------------------------------------------


@v1.post(PROJECT + "/approvals", response_model=w.Approval, status_code=201)
def request_approval(caller: Writer, project_id: str, body: w.ApprovalIn,
                     key: IdempotencyKey = None) -> Any:
    return caller.db.approvals.request(
        project_naming(caller, project_id, body.instance_id), body.gate_type, body.request,
        title=body.title, phase_id=body.phase_id, instance_id=body.instance_id,
        idempotency_key=key)


@v1.get(PROJECT + "/approvals", response_model=list[w.Approval])
def list_approvals(caller: Reader, project_id: str, status: str | None = None,
                   gate_type: str | None = None, after: int = 0, limit: int = 100) -> Any:
    return caller.db.approvals.list(caller.project(project_id), status=status,
                                    gate_type=gate_type, after=after, limit=limit)


@v1.get(PROJECT + "/approvals/{gate_id}", response_model=w.Approval)
def get_approval(caller: Reader, project_id: str, gate_id: int) -> Any:
    return caller.db.approvals.get(gate_id, project_id=caller.project(project_id))


@v1.post(PROJECT + "/approvals/{gate_id}/approve", response_model=w.Approval)
def approve(caller: Writer, project_id: str, gate_id: int, body: w.DecisionIn) -> Any:
    return caller.db.approvals.approve(gate_id, body.response,
                                       project_id=caller.project(project_id))


@v1.post(PROJECT + "/approvals/{gate_id}/reject", response_model=w.Approval)
def reject(caller: Writer, project_id: str, gate_id: int, body: w.DecisionIn) -> Any:
    return caller.db.approvals.reject(gate_id, body.response,
                                      project_id=caller.project(project_id))


@v1.post(PROJECT + "/approvals/{gate_id}/cancel", response_model=w.Approval)
def cancel_approval(caller: Writer, project_id: str, gate_id: int, body: w.DecisionIn) -> Any:
    return caller.db.approvals.cancel(gate_id, body.response,
                                      project_id=caller.project(project_id))


# --- command runs -------------------------------------------------------------------------


@v1.post(PROJECT + "/commands", response_model=w.CommandRun, status_code=201)
def queue_command(caller: Writer, project_id: str, body: w.CommandIn,
                  key: IdempotencyKey = None) -> Any:
    """A run that is to happen (``queued``); ``start`` and ``finish`` follow."""
    return caller.db.commands.queue(
        project_naming(caller, project_id, body.instance_id), body.command, body.arguments,
        cwd=body.cwd, instance_id=body.instance_id, idempotency_key=key)


@v1.post(PROJECT + "/commands/record", response_model=w.CommandRun, status_code=201)
def record_command(caller: Writer, project_id: str, body: w.CommandRecordIn,
                   key: IdempotencyKey = None) -> Any:
    """A run that already finished, in one step."""
    return caller.db.commands.record(
        project_naming(caller, project_id, body.instance_id), body.command, body.arguments,
        exit_code=body.exit_code, status=body.status, output=body.output, error=body.error,
        duration_ms=body.duration_ms, cwd=body.cwd, instance_id=body.instance_id,
        idempotency_key=key)


@v1.get(PROJECT + "/commands", response_model=list[w.CommandRun])
def list_commands(caller: Reader, project_id: str, status: str | None = None,
                  command: str | None = None, instance_id: str | None = None,
                  after: int = 0, limit: int = 100) -> Any:
    """A page of the project's runs, oldest first, without their output."""
    return caller.db.commands.list(project_naming(caller, project_id, instance_id),
                                   status=status,
                                   command=command, instance_id=instance_id, after=after,
                                   limit=limit)


@v1.get(PROJECT + "/commands/{run_id}", response_model=w.CommandRun)
def get_command(caller: Reader, project_id: str, run_id: int) -> Any:
    """One run, with its whole output."""
    return caller.db.commands.get(run_id, project_id=caller.project(project_id))


@v1.post(PROJECT + "/commands/{run_id}/start", response_model=w.CommandRun)
def start_command(caller: Writer, project_id: str, run_id: int) -> Any:
    return caller.db.commands.start(run_id, project_id=caller.project(project_id))


@v1.post(PROJECT + "/commands/{run_id}/finish", response_model=w.CommandRun)
def finish_command(caller: Writer, project_id: str, run_id: int, body: w.FinishIn) -> Any:
    return caller.db.commands.finish(
        run_id, exit_code=body.exit_code, status=body.status, output=body.output,
        error=body.error, duration_ms=body.duration_ms, project_id=caller.project(project_id))


@v1.post(PROJECT + "/commands/{run_id}/cancel", response_model=w.CommandRun)
def cancel_command(caller: Writer, project_id: str, run_id: int, body: w.CancelRunIn) -> Any:
    return caller.db.commands.cancel(run_id, error=body.error,
                                     project_id=caller.project(project_id))


# --- checkpoints and the audit chain ------------------------------------------------------


@v1.post(PROJECT + "/checkpoints", response_model=w.Checkpoint, status_code=201)
def save_checkpoint(caller: Writer, project_id: str, body: w.CheckpointIn,
                    key: IdempotencyKey = None) -> Any:
    return caller.db.checkpoints.save(body.instance_id, body.state, label=body.label,
                                      project_id=project_naming(caller, project_id,
                                                                body.instance_id),
                                      idempotency_key=key)


@v1.get(PROJECT + "/checkpoints", response_model=list[w.Checkpoint])
def list_checkpoints(caller: Reader, project_id: str, instance_id: str | None = None,
                     label: str | None = None, after: int = 0, limit: int = 100) -> Any:
    return caller.db.checkpoints.list(project_naming(caller, project_id, instance_id),
                                      instance_id=instance_id,
                                      label=label, after=after, limit=limit)


@v1.get(PROJECT + "/checkpoints/latest", response_model=w.Checkpoint | None)
def latest_checkpoint(caller: Reader, project_id: str, instance_id: str | None = None,
                      label: str | None = None) -> Any:
    """The newest checkpoint (of an instance, with a label); ``null`` when there is none."""
    return caller.db.checkpoints.latest(project_naming(caller, project_id, instance_id),
                                        instance_id=instance_id,
                                        label=label)


@v1.get(PROJECT + "/checkpoints/{checkpoint_id}", response_model=w.Checkpoint)
def get_checkpoint(caller: Reader, project_id: str, checkpoint_id: int) -> Any:
    return caller.db.checkpoints.get(checkpoint_id, project_id=caller.project(project_id))


@v1.get(PROJECT + "/audit/verify", response_model=w.AuditVerification)
def verify_audit(caller: Reader, project_id: str) -> Any:
    """Recompute the project's audit chain: ``ok`` is false when a sealed entry was changed
    or removed (docs/audit.md)."""
    pid = caller.project(project_id)
    caller.db.projects.get(pid)
    return caller.db.audit_chain.verify(pid)


@v1.post(PROJECT + "/audit/seal", response_model=dict[str, Any])
def seal_audit(caller: Admin, project_id: str) -> Any:
    """Seal the project's audit entries written since the last sealing into its hash chain;
    how many, and the chain's head (docs/audit.md)."""
    pid = caller.project(project_id)
    caller.db.projects.get(pid)
    return caller.db.audit_chain.seal(pid)
