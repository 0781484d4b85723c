"""Approval gates: points where work waits for someone to say yes or no.

An agent (or a person) requests approval of something — a plan, a schema change, a deploy —
with a JSON ``request`` and a ``gate_type`` naming what kind of thing it is. The gate is
``pending`` until it is decided exactly once:

    pending ─approve→ approved
            ─reject──→ rejected
            ─cancel──→ cancelled   (the request was withdrawn)

A decision carries an optional JSON ``response`` (feedback, conditions, a reason) and who
decided. Deciding a gate that is no longer pending is refused with
:class:`AlreadyDecidedError`, which names the decision that stands: a decision is never
silently replaced. :meth:`ApprovalService.wait` polls a gate until it is decided.

A request carries an idempotency key (one is made up when the caller gives none): the same
request again with a key the project already holds returns that gate and writes nothing, so an
agent that retries, or runs again after a crash, waits on the same gate. Another request
(type, title, payload, phase or instance) under that key is refused with
:class:`IdempotencyConflictError`.
"""

from __future__ import annotations

import builtins
import json
import time
from typing import Any

from ctxdb.domain.ids import new_idempotency_key
from ctxdb.domain.validation import (
    check_choice,
    check_identifier,
    check_limit,
    check_non_negative_int,
    check_optional_int,
    check_positive_id,
    check_seconds,
    check_text,
    encode_json,
)
from ctxdb.domain.vocabulary import GateStatus
from ctxdb.errors import (
    AlreadyDecidedError,
    ApprovalGateNotFoundError,
    ApprovalTimeoutError,
    InvalidStatusError,
)
from ctxdb.service.common import Service, audit, same_request
from ctxdb.service.usecases.instances import require_instance
from ctxdb.service.usecases.phases import require_phase
from ctxdb.service.usecases.projects import require_project
from ctxdb.storage import Row, Tx

MAX_PAGE = 1_000
MAX_TITLE = 1_000
MAX_WAIT_SECONDS = 24 * 3600.0
MIN_POLL_SECONDS = 0.05


def _gate(row: Row) -> dict[str, Any]:
    for name in ("request", "response"):  # both backends hand JSON over as text
        if isinstance(row.get(name), str):
            row[name] = json.loads(row[name])
    return row


def require_gate(tx: Tx, gate_id: int, project_id: str | None = None,
                 *, lock: bool = False) -> dict[str, Any]:
    """The gate (locked with ``lock``); with ``project_id``, another project's gate is refused
    as unknown, so that ids never reach across projects."""
    row = tx.one("lock_approval_gate" if lock else "get_approval_gate", gate_id=gate_id)
    if row is None or (project_id is not None and row["project_id"] != project_id):
        where = f" in project {project_id!r}" if project_id is not None else ""
        raise ApprovalGateNotFoundError(f"unknown approval gate {gate_id}{where}",
                                        gate_id=gate_id)
    return _gate(row)


class ApprovalService(Service):
    def request(
        self,
        project_id: str,
        gate_type: str,
        request: Any = None,
        *,
        title: str = "",
        phase_id: int | None = None,
        instance_id: str | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Open a pending gate asking to approve ``request`` (any JSON value; ``{}`` when
        omitted). ``gate_type`` says what is asked (``plan``, ``deploy``, …); ``phase_id`` and
        ``instance_id`` (the requesting instance) must belong to the project."""
        check_identifier(project_id, "project_id")
        check_identifier(gate_type, "gate_type")
        request_json = encode_json({} if request is None else request, "approval request",
                                   self.settings.max_content_bytes)
        check_text(title, "title", MAX_TITLE)
        check_optional_int(phase_id, "phase_id")
        if instance_id is not None:
            check_identifier(instance_id, "instance_id")
        key = check_identifier(idempotency_key or new_idempotency_key(), "idempotency_key")
        actor = check_identifier(actor or instance_id or self.settings.actor, "actor")

        def unit(tx: Tx) -> dict[str, Any]:
            existing = tx.value("approval_gate_by_key", project_id=project_id,
                                idempotency_key=key)
            if existing is not None:
                return same_request(require_gate(tx, existing), {
                    "gate_type": gate_type, "title": title,
                    "request": json.loads(request_json), "phase_id": phase_id,
                    "instance_id": instance_id}, what="approval gate", key=key,
                    id_field="gate_id")
            require_project(tx, project_id, active=True)
            if phase_id is not None:
                require_phase(tx, phase_id, project_id)
            if instance_id is not None:
                require_instance(tx, instance_id, project_id)
            gate_id = tx.value("insert_approval_gate", project_id=project_id,
                               phase_id=phase_id, instance_id=instance_id,
                               gate_type=gate_type, title=title, request=request_json,
                               requested_by=actor, idempotency_key=key)
            audit(tx, actor, "approval.request", "approval_gate", gate_id, project_id,
                  gate_type=gate_type, title=title, instance_id=instance_id,
                  phase_id=phase_id)
            return require_gate(tx, gate_id)

        return self.storage.write(unit)

    def get(self, gate_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        check_positive_id(gate_id, "gate_id")
        if project_id is not None:
            check_identifier(project_id, "project_id")
        return self.storage.read(lambda tx: require_gate(tx, gate_id, project_id))

    def list(
        self,
        project_id: str,
        *,
        status: str | None = None,
        gate_type: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> builtins.list[dict[str, Any]]:
        """A page of a project's gates, oldest first; pass the last one's id as ``after``."""
        check_identifier(project_id, "project_id")
        status_value = "" if status is None else check_choice(
            status, GateStatus, "approval gate status", error=InvalidStatusError).value
        if gate_type is not None:
            check_identifier(gate_type, "gate_type")
        check_non_negative_int(after, "after")
        check_limit(limit, MAX_PAGE)

        def unit(tx: Tx) -> builtins.list[dict[str, Any]]:
            require_project(tx, project_id)
            rows = tx.all("list_approval_gates", project_id=project_id, status=status_value,
                          gate_type=gate_type or "", after_gate_id=after, limit=limit)
            return [_gate(row) for row in rows]

        return self.storage.read(unit)

    def approve(self, gate_id: int, response: Any = None, *, project_id: str | None = None,
                actor: str | None = None) -> dict[str, Any]:
        """Approve a pending gate, with an optional ``response`` (any JSON value)."""
        return self._decide(gate_id, GateStatus.APPROVED, response, project_id, actor)

    def reject(self, gate_id: int, response: Any = None, *, project_id: str | None = None,
               actor: str | None = None) -> dict[str, Any]:
        """Reject a pending gate; ``response`` says why (any JSON value)."""
        return self._decide(gate_id, GateStatus.REJECTED, response, project_id, actor)

    def cancel(self, gate_id: int, response: Any = None, *, project_id: str | None = None,
               actor: str | None = None) -> dict[str, Any]:
        """Withdraw a pending request (nobody needs to decide it any more)."""
        return self._decide(gate_id, GateStatus.CANCELLED, response, project_id, actor)

    def wait(self, gate_id: int, timeout_seconds: float, *, poll_seconds: float = 1.0,
             project_id: str | None = None) -> dict[str, Any]:
        """Poll the gate until it is no longer pending and return it (approved, rejected or
        cancelled); :class:`ApprovalTimeoutError` if it is still pending after
        ``timeout_seconds`` (0: look once). Each poll is one short read."""
        check_positive_id(gate_id, "gate_id")
        timeout = check_seconds(timeout_seconds, "timeout_seconds", MAX_WAIT_SECONDS, low=0)
        poll = check_seconds(poll_seconds, "poll_seconds", 3600, low=MIN_POLL_SECONDS)
        deadline = time.monotonic() + timeout
        while True:
            gate = self.get(gate_id, project_id=project_id)
            left = deadline - time.monotonic()
            if gate["status"] != GateStatus.PENDING:
                return gate
            if left <= 0:
                raise ApprovalTimeoutError(
                    f"approval gate {gate_id} is still pending after {timeout:g} s",
                    gate_id=gate_id, timeout_seconds=timeout)
            time.sleep(min(poll, left))

    def _decide(self, gate_id: int, status: GateStatus, response: Any,
                project_id: str | None, actor: str | None) -> dict[str, Any]:
        check_positive_id(gate_id, "gate_id")
        if project_id is not None:
            check_identifier(project_id, "project_id")
        response_json = None if response is None else encode_json(
            response, "approval response", self.settings.max_content_bytes)
        actor = check_identifier(actor or self.settings.actor, "actor")
        verb = {GateStatus.APPROVED: "approve", GateStatus.REJECTED: "reject",
                GateStatus.CANCELLED: "cancel"}[status]

        def unit(tx: Tx) -> dict[str, Any]:
            gate = require_gate(tx, gate_id, project_id, lock=True)
            if gate["status"] != GateStatus.PENDING:
                by = f" by {gate['decided_by']}" if gate["decided_by"] else ""
                raise AlreadyDecidedError(
                    f"approval gate {gate_id} was already {gate['status']}{by} at "
                    f"{gate['decided_at']}: cannot {verb} it",
                    gate_id=gate_id, status=gate["status"], decided_by=gate["decided_by"])
            require_project(tx, gate["project_id"], active=True)
            tx.execute("decide_approval_gate", gate_id=gate_id, status=status.value,
                       response=response_json, decided_by=actor)
            audit(tx, actor, f"approval.{verb}", "approval_gate", gate_id,
                  gate["project_id"], gate_type=gate["gate_type"],
                  responded=response_json is not None)
            return require_gate(tx, gate_id)

        return self.storage.write(unit)
