"""The MCP tools as plain synchronous functions over the service layer.

Each method validates nothing itself beyond choosing the project: the services check every
argument and raise :class:`ctxdb.errors.CtxdbError` subclasses, which the server turns into
MCP tool errors. Each returns the plain text the model reads.
"""

from __future__ import annotations

from typing import Any

from ctxdb.domain.pack_formats import pack_as_text, pack_payload
from ctxdb.domain.vocabulary import SearchKind
from ctxdb.errors import ApprovalTimeoutError, ValidationError
from ctxdb.mcp import render
from ctxdb.mcp import render_coordination as coordination
from ctxdb.service import Ctxdb

NO_PROJECT = ("no project given: pass project_id, or start the server with "
              "'ctxdb mcp --project PROJECT_ID'")


class ContextTools:
    """The tools of one server: a store and the project used when a call names none."""

    def __init__(self, db: Ctxdb, default_project: str | None = None) -> None:
        self.db = db
        self.default_project = default_project

    def project(self, project_id: str | None) -> str:
        chosen = project_id if project_id is not None else self.default_project
        if chosen is None:
            raise ValidationError(NO_PROJECT)
        # Any call of the project notices its sessions that stopped without a handoff.
        self.db.continuity.settle(chosen)
        return chosen

    def scope(self, project_id: str | None) -> str | None:
        """The project a record named by id must belong to: the one named, else the server's
        (if any). The services refuse a record of another project."""
        return project_id if project_id is not None else self.default_project

    def get_context(self, project_id: str | None = None, budget_tokens: int | None = None,
                    phase_id: int | None = None) -> str:
        """The project's latest handoff (if any), then its budgeted pack, as text."""
        project = self.project(project_id)
        settings = self.db.settings
        budget = budget_tokens if budget_tokens is not None else int(
            settings.context_window * settings.pack_budget_fraction)
        pack = self.db.context.pack(project, budget, phase_id)
        handoff = self.db.tokens.latest_handoff(project_id=project)
        text = pack_as_text(pack_payload(project, pack))
        return text if handoff is None else f"{render.handoff_text(handoff)}\n\n{text}"

    def store_context(self, content: Any, priority: str = "HIGH", content_type: str = "note",
                      phase_id: int | None = None, created_by: str | None = None,
                      project_id: str | None = None) -> str:
        item = self.db.context.store(self.project(project_id), content, priority, content_type,
                                     phase_id, created_by=created_by)
        return render.stored_text(item)

    def search_context(self, query: str | None = None, priority: str | None = None,
                       content_type: str | None = None, phase_id: int | None = None,
                       limit: int = 20, full_content: bool = False,
                       project_id: str | None = None) -> str:
        project = self.project(project_id)
        result = self.db.context.search(project, query, priority=priority,
                                        content_type=content_type, phase_id=phase_id,
                                        limit=limit)
        return render.search_text(project, query, result, full_content)

    def search(self, query: str, kinds: list[str] | None = None, content_type: str | None = None,
               priority: str | None = None, namespace: str | None = None,
               since: str | None = None, until: str | None = None, limit: int = 10,
               raw: bool = False, project_id: str | None = None) -> str:
        project = self.project(project_id)
        hits = self.db.search.search(project, query, kinds=kinds or tuple(SearchKind),
                                     content_type=content_type, priority=priority,
                                     namespace=namespace, since=since, until=until,
                                     limit=limit, raw=raw)
        return render.search_hits_text(project, query, hits, limit)

    def record_handoff(self, instance_id: str, summary: str = "",
                       next_steps: list[str] | None = None,
                       working_set: dict[str, Any] | None = None,
                       project_id: str | None = None) -> str:
        handoff = self.db.tokens.record_handoff(instance_id, summary=summary,
                                                next_steps=next_steps, working_set=working_set,
                                                project_id=self.scope(project_id))
        return render.handoff_recorded_text(handoff)

    def heartbeat(self, instance_id: str, phase_id: int | None = None,
                  project_id: str | None = None) -> str:
        return render.heartbeat_text(self.db.instances.heartbeat(
            instance_id, phase_id, project_id=self.scope(project_id)))

    def list_instances(self, project_id: str | None = None, status: str | None = None) -> str:
        project = self.project(project_id)
        return render.instances_text(project, self.db.instances.list(project, status), status)

    def memory_get(self, namespace: str, key: str, version: int | None = None,
                   project_id: str | None = None) -> str:
        memory = self.db.memories.get(self.project(project_id), namespace, key, version)
        if version is None:
            return render.memory_text(memory)
        return render.memory_version_text(memory)

    def memory_put(self, namespace: str, key: str, value: Any, memory_type: str | None = None,
                   expected_version: int | None = None, ttl_seconds: int | None = None,
                   project_id: str | None = None) -> str:
        memory = self.db.memories.put(self.project(project_id), namespace, key, value,
                                      memory_type=memory_type,
                                      expected_version=expected_version,
                                      ttl_seconds=ttl_seconds)
        return render.memory_stored_text(memory)

    def memory_list(self, prefix: str = "", limit: int = 50,
                    after_namespace: str | None = None, after_key: str | None = None,
                    project_id: str | None = None) -> str:
        project = self.project(project_id)
        after = None
        if after_namespace is not None or after_key is not None:
            after = (after_namespace or "", after_key or "")
        memories = self.db.memories.list(project, prefix, limit=limit, after=after)
        return render.memories_text(project, prefix, memories, limit)

    def session_append(self, session_id: str, role: str, content: Any,
                       metadata: dict[str, Any] | None = None,
                       idempotency_key: str | None = None,
                       project_id: str | None = None) -> str:
        event = self.db.conversations.append(session_id, role, content, metadata=metadata,
                                             idempotency_key=idempotency_key,
                                             project_id=self.scope(project_id))
        return render.event_appended_text(event)

    def session_events(self, session_id: str, after_sequence: int = 0, limit: int = 50,
                       project_id: str | None = None) -> str:
        events = self.db.conversations.events(session_id, after_sequence=after_sequence,
                                              limit=limit, project_id=self.scope(project_id))
        return render.session_events_text(session_id, events, after_sequence, limit)

    # --- coordination: tasks, messages, approval gates, command runs, checkpoints ----------
    # Records named by id are looked up within the project named or the server's (when there
    # is one), so that a tool never reaches into another project's tasks, messages or gates.

    def task_create(self, title: str, description: str = "", priority: int = 0,
                    depends_on: list[int] | None = None, parent_task_id: int | None = None,
                    project_id: str | None = None) -> str:
        task = self.db.tasks.create(self.project(project_id), title, description=description,
                                    priority=priority, depends_on=depends_on or (),
                                    parent_task_id=parent_task_id)
        return coordination.task_created_text(task)

    def task_list(self, status: str | None = None, lease_owner: str | None = None,
                  after: int = 0, limit: int = 50, project_id: str | None = None) -> str:
        project = self.project(project_id)
        tasks = self.db.tasks.list(project, status=status, lease_owner=lease_owner,
                                   after=after, limit=limit)
        return coordination.tasks_text(project, tasks, status, limit)

    def task_claim(self, instance_id: str, lease_seconds: float = 1800.0,
                   project_id: str | None = None) -> str:
        project = self.project(project_id)
        task = self.db.tasks.claim(project, instance_id, lease_seconds)
        return coordination.task_claimed_text(task, project)

    def task_complete(self, task_id: int, epoch: int, result: Any = None,
                      project_id: str | None = None) -> str:
        return coordination.task_finished_text(self.db.tasks.complete(
            task_id, epoch, result, project_id=self.scope(project_id)))

    def task_fail(self, task_id: int, epoch: int, error: str,
                  project_id: str | None = None) -> str:
        return coordination.task_finished_text(self.db.tasks.fail(
            task_id, epoch, error, project_id=self.scope(project_id)))

    def message_send(self, body: Any, to_instance: str | None = None,
                     to_role: str | None = None, broadcast: bool = False, subject: str = "",
                     sender: str | None = None, project_id: str | None = None) -> str:
        chosen: list[tuple[str, str | None]] = [
            (kind, value) for kind, value in (("instance", to_instance), ("role", to_role))
            if value is not None]
        if broadcast:
            chosen.append(("broadcast", None))
        if len(chosen) != 1:
            raise ValidationError("give exactly one of to_instance, to_role or broadcast=true")
        kind, recipient = chosen[0]
        message = self.db.messages.send(self.project(project_id), kind, recipient, body,
                                        subject=subject, sender=sender)
        return coordination.message_sent_text(message)

    def message_inbox(self, instance_id: str, visibility_seconds: float = 300.0,
                      limit: int = 10, project_id: str | None = None) -> str:
        messages = self.db.messages.inbox(instance_id, visibility_seconds, limit,
                                          project_id=self.scope(project_id))
        return coordination.inbox_text(instance_id, messages, visibility_seconds)

    def message_ack(self, message_id: int, instance_id: str,
                    project_id: str | None = None) -> str:
        self.db.messages.ack(message_id, instance_id, project_id=self.scope(project_id))
        return coordination.ack_text(message_id, instance_id)

    def approval_request(self, gate_type: str, request: Any = None, title: str = "",
                         instance_id: str | None = None, phase_id: int | None = None,
                         idempotency_key: str | None = None,
                         project_id: str | None = None) -> str:
        gate = self.db.approvals.request(self.project(project_id), gate_type, request,
                                         title=title, instance_id=instance_id,
                                         phase_id=phase_id, idempotency_key=idempotency_key)
        return coordination.gate_text(gate)

    def approval_status(self, gate_id: int, wait_seconds: float = 0.0,
                        project_id: str | None = None) -> str:
        scope = self.scope(project_id)
        if wait_seconds <= 0:
            return coordination.gate_text(self.db.approvals.get(gate_id, project_id=scope))
        try:
            gate = self.db.approvals.wait(gate_id, wait_seconds, poll_seconds=1.0,
                                          project_id=scope)
        except ApprovalTimeoutError:  # still pending: that is an answer, not a failure
            gate = self.db.approvals.get(gate_id, project_id=scope)
        return coordination.gate_text(gate)

    def command_record(self, command: str, arguments: list[Any] | None = None,
                       exit_code: int | None = None, status: str | None = None,
                       output: str = "", error: str | None = None,
                       duration_ms: int | None = None, instance_id: str | None = None,
                       cwd: str | None = None, idempotency_key: str | None = None,
                       project_id: str | None = None) -> str:
        run = self.db.commands.record(self.project(project_id), command, arguments or [],
                                      exit_code=exit_code, status=status, output=output,
                                      error=error, duration_ms=duration_ms,
                                      instance_id=instance_id, cwd=cwd,
                                      idempotency_key=idempotency_key)
        return coordination.run_recorded_text(run)

    def checkpoint_save(self, instance_id: str, state: Any, label: str = "",
                        idempotency_key: str | None = None,
                        project_id: str | None = None) -> str:
        checkpoint = self.db.checkpoints.save(instance_id, state, label=label,
                                              project_id=self.scope(project_id),
                                              idempotency_key=idempotency_key)
        return coordination.checkpoint_saved_text(checkpoint)

    def checkpoint_latest(self, instance_id: str | None = None, label: str | None = None,
                          project_id: str | None = None) -> str:
        project = self.project(project_id)
        checkpoint = self.db.checkpoints.latest(project, instance_id=instance_id, label=label)
        return coordination.checkpoint_text(checkpoint, project)
