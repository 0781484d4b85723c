"""The remote services by which agents coordinate: tasks, messages, conversation sessions,
approval gates, command runs, checkpoints, search and the audit chain. As in
:mod:`ctxdb.client.records`: the local services' arguments (without ``actor``), the same
answers; a record named by id alone is reached within the connection's project, or the
``project_id`` given."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ctxdb.client.records import RemoteService
from ctxdb.errors import ApprovalTimeoutError


class RemoteTasks(RemoteService):
    def create(self, project_id: str, title: str, *, description: str = "",
               priority: int = 0, parent_task_id: int | None = None,
               depends_on: Iterable[int] = (),
               idempotency_key: str | None = None) -> dict[str, Any]:
        return dict(self.t.create(self.t.path(project_id, "tasks"), {
            "title": title, "description": description, "priority": priority,
            "parent_task_id": parent_task_id, "depends_on": list(depends_on)},
            idempotency_key))

    def get(self, task_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("GET", self.t.path(project_id, "tasks", task_id)))

    def list(self, project_id: str, *, status: str | None = None,
             lease_owner: str | None = None, parent_task_id: int | None = None, after: int = 0,
             limit: int = 100) -> builtins.list[dict[str, Any]]:
        return list(self.t.call("GET", self.t.path(project_id, "tasks"), params={
            "status": status, "lease_owner": lease_owner, "parent_task_id": parent_task_id,
            "after": after, "limit": limit}))

    def claim(self, project_id: str, instance_id: str,
              lease_seconds: float) -> dict[str, Any] | None:
        answer = self.t.call("POST", self.t.path(project_id, "tasks", "claim"), json={
            "instance_id": instance_id, "lease_seconds": lease_seconds})
        return None if answer["task"] is None else dict(answer["task"])

    def start(self, task_id: int, epoch: int, *,
              project_id: str | None = None) -> dict[str, Any]:
        return self._fenced(task_id, "start", project_id, {"epoch": epoch})

    def renew(self, task_id: int, epoch: int, lease_seconds: float, *,
              project_id: str | None = None) -> dict[str, Any]:
        return self._fenced(task_id, "renew", project_id,
                            {"epoch": epoch, "lease_seconds": lease_seconds})

    def complete(self, task_id: int, epoch: int, result: Any = None, *,
                 project_id: str | None = None) -> dict[str, Any]:
        return self._fenced(task_id, "complete", project_id, {"epoch": epoch, "result": result})

    def fail(self, task_id: int, epoch: int, error: str, *,
             project_id: str | None = None) -> dict[str, Any]:
        return self._fenced(task_id, "fail", project_id, {"epoch": epoch, "error": error})

    def release(self, task_id: int, epoch: int, *,
                project_id: str | None = None) -> dict[str, Any]:
        return self._fenced(task_id, "release", project_id, {"epoch": epoch})

    def cancel(self, task_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        return self._fenced(task_id, "cancel", project_id, None)

    def _fenced(self, task_id: int, verb: str, project_id: str | None,
                body: Any) -> dict[str, Any]:
        return dict(self.t.call("POST", self.t.path(project_id, "tasks", task_id, verb),
                                json=body))


class RemoteMessages(RemoteService):
    def send(self, project_id: str, recipient_kind: str, recipient: str | None, body: Any, *,
             subject: str = "", sender: str | None = None,
             idempotency_key: str | None = None) -> dict[str, Any]:
        return dict(self.t.create(self.t.path(project_id, "messages"), {
            "recipient_kind": recipient_kind, "recipient": recipient, "body": body,
            "subject": subject, "sender": sender}, idempotency_key))

    def get(self, message_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("GET", self.t.path(project_id, "messages", message_id)))

    def inbox(self, instance_id: str, visibility_seconds: float = 30.0, limit: int = 10, *,
              project_id: str | None = None) -> builtins.list[dict[str, Any]]:
        return list(self.t.call("POST", self.t.path(project_id, "messages", "inbox"), json={
            "instance_id": instance_id, "visibility_seconds": visibility_seconds,
            "limit": limit}))

    def ack(self, message_id: int, instance_id: str, *,
            project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("POST", self.t.path(project_id, "messages", message_id, "ack"),
                                json={"instance_id": instance_id}))

    def promote(self, message_id: int, to: str, *, project_id: str | None = None,
                namespace: str | None = None, key: str | None = None,
                priority: str = "HIGH", actor: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("POST", self.t.path(project_id, "messages", message_id,
                                                     "promote"), json={
            "to": to, "namespace": namespace, "key": key, "priority": priority}))


class RemoteObservations(RemoteService):
    def timeline(self, project_id: str, *, session_id: str | None = None,
                 since: str | None = None, limit: int = 50) -> builtins.list[dict[str, Any]]:
        return list(self.t.call("GET", self.t.path(project_id, "timeline"), params={
            "session_id": session_id, "since": since, "limit": limit}))


class RemoteConversations(RemoteService):
    def create(self, project_id: str, app_name: str, user_id: str, *,
               instance_id: str | None = None, state: dict[str, Any] | None = None,
               idempotency_key: str | None = None) -> dict[str, Any]:
        return dict(self.t.create(self.t.path(project_id, "sessions"), {
            "app_name": app_name, "user_id": user_id, "instance_id": instance_id,
            "state": state}, idempotency_key))

    def get(self, session_id: str, *, project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("GET", self.t.path(project_id, "sessions", session_id)))

    def list(self, project_id: str, *, app_name: str | None = None,
             user_id: str | None = None, status: str | None = None, after: str | None = None,
             limit: int = 100) -> builtins.list[dict[str, Any]]:
        return list(self.t.call("GET", self.t.path(project_id, "sessions"), params={
            "app_name": app_name, "user_id": user_id, "status": status, "after": after,
            "limit": limit}))

    def update_state(self, session_id: str, state: dict[str, Any], *,
                     project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("PUT", self.t.path(project_id, "sessions", session_id,
                                                    "state"), json={"state": state}))

    def close(self, session_id: str, *, project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("POST", self.t.path(project_id, "sessions", session_id,
                                                     "close")))

    def append(self, session_id: str, role: str, content: Any, *,
               metadata: dict[str, Any] | None = None, idempotency_key: str | None = None,
               project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.create(self.t.path(project_id, "sessions", session_id, "events"), {
            "role": role, "content": content, "metadata": metadata}, idempotency_key))

    def events(self, session_id: str, *, after_sequence: int = 0, limit: int = 100,
               project_id: str | None = None) -> builtins.list[dict[str, Any]]:
        return list(self.t.call("GET", self.t.path(project_id, "sessions", session_id,
                                                    "events"),
                                params={"after_sequence": after_sequence, "limit": limit}))


class RemoteApprovals(RemoteService):
    def request(self, project_id: str, gate_type: str, request: Any = None, *,
                title: str = "", phase_id: int | None = None, instance_id: str | None = None,
                idempotency_key: str | None = None) -> dict[str, Any]:
        return dict(self.t.create(self.t.path(project_id, "approvals"), {
            "gate_type": gate_type, "request": request, "title": title,
            "phase_id": phase_id, "instance_id": instance_id}, idempotency_key))

    def get(self, gate_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("GET", self.t.path(project_id, "approvals", gate_id)))

    def list(self, project_id: str, *, status: str | None = None,
             gate_type: str | None = None, after: int = 0,
             limit: int = 100) -> builtins.list[dict[str, Any]]:
        return list(self.t.call("GET", self.t.path(project_id, "approvals"), params={
            "status": status, "gate_type": gate_type, "after": after, "limit": limit}))

    def approve(self, gate_id: int, response: Any = None, *,
                project_id: str | None = None) -> dict[str, Any]:
        return self._decide(gate_id, "approve", response, project_id)

    def reject(self, gate_id: int, response: Any = None, *,
               project_id: str | None = None) -> dict[str, Any]:
        return self._decide(gate_id, "reject", response, project_id)

    def cancel(self, gate_id: int, response: Any = None, *,
               project_id: str | None = None) -> dict[str, Any]:
        return self._decide(gate_id, "cancel", response, project_id)

    def wait(self, gate_id: int, timeout_seconds: float, *, poll_seconds: float = 1.0,
             project_id: str | None = None) -> dict[str, Any]:
        """Poll the gate until it is decided, as the local service does (one GET a poll)."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            gate = self.get(gate_id, project_id=project_id)
            left = deadline - time.monotonic()
            if gate["status"] != "pending":
                return gate
            if left <= 0:
                raise ApprovalTimeoutError(
                    f"approval gate {gate_id} is still pending after {timeout_seconds:g} s",
                    gate_id=gate_id, timeout_seconds=timeout_seconds)
            time.sleep(min(max(poll_seconds, 0.05), left))

    def _decide(self, gate_id: int, verb: str, response: Any,
                project_id: str | None) -> dict[str, Any]:
        return dict(self.t.call("POST", self.t.path(project_id, "approvals", gate_id, verb),
                                json={"response": response}))


class RemoteCommands(RemoteService):
    def queue(self, project_id: str, command: str, arguments: Sequence[Any] = (), *,
              cwd: str | None = None, instance_id: str | None = None,
              idempotency_key: str | None = None) -> dict[str, Any]:
        return dict(self.t.create(self.t.path(project_id, "commands"), {
            "command": command, "arguments": list(arguments), "cwd": cwd,
            "instance_id": instance_id}, idempotency_key))

    def record(self, project_id: str, command: str, arguments: Sequence[Any] = (), *,
               idempotency_key: str | None = None, **outcome: Any) -> dict[str, Any]:
        """``outcome``: exit_code, status, output, error, duration_ms, cwd, instance_id."""
        return dict(self.t.create(self.t.path(project_id, "commands", "record"), {
            "command": command, "arguments": list(arguments), **outcome}, idempotency_key))

    def get(self, run_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("GET", self.t.path(project_id, "commands", run_id)))

    def list(self, project_id: str, *, status: str | None = None, command: str | None = None,
             instance_id: str | None = None, after: int = 0,
             limit: int = 100) -> builtins.list[dict[str, Any]]:
        return list(self.t.call("GET", self.t.path(project_id, "commands"), params={
            "status": status, "command": command, "instance_id": instance_id,
            "after": after, "limit": limit}))

    def start(self, run_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("POST", self.t.path(project_id, "commands", run_id, "start")))

    def finish(self, run_id: int, *, project_id: str | None = None,
               **outcome: Any) -> dict[str, Any]:
        """``outcome``: exit_code, status, output, error, duration_ms."""
        return dict(self.t.call("POST", self.t.path(project_id, "commands", run_id, "finish"),
                                json=outcome))

    def cancel(self, run_id: int, *, error: str | None = None,
               project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("POST", self.t.path(project_id, "commands", run_id, "cancel"),
                                json={"error": error}))


class RemoteCheckpoints(RemoteService):
    def save(self, instance_id: str, state: Any, *, label: str = "",
             project_id: str | None = None,
             idempotency_key: str | None = None) -> dict[str, Any]:
        return dict(self.t.create(self.t.path(project_id, "checkpoints"), {
            "instance_id": instance_id, "state": state, "label": label}, idempotency_key))

    def get(self, checkpoint_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("GET", self.t.path(project_id, "checkpoints", checkpoint_id)))

    def latest(self, project_id: str, *, instance_id: str | None = None,
               label: str | None = None) -> dict[str, Any] | None:
        answer = self.t.call("GET", self.t.path(project_id, "checkpoints", "latest"),
                             params={"instance_id": instance_id, "label": label})
        return None if answer is None else dict(answer)

    def list(self, project_id: str, *, instance_id: str | None = None,
             label: str | None = None, after: int = 0,
             limit: int = 100) -> builtins.list[dict[str, Any]]:
        return list(self.t.call("GET", self.t.path(project_id, "checkpoints"), params={
            "instance_id": instance_id, "label": label, "after": after, "limit": limit}))


class RemoteSearch(RemoteService):
    def search(self, project_id: str, query: str, *, kinds: str | Iterable[str] | None = None,
               priority: str | None = None, content_type: str | None = None,
               namespace: str | None = None, since: Any = None, until: Any = None,
               limit: int = 20, raw: bool = False) -> builtins.list[dict[str, Any]]:
        """``since`` and ``until`` as the local service takes them: a date or datetime (sent
        in ISO form), or text (a date, or an age such as 7d)."""
        kind = None if kinds is None else [kinds] if isinstance(kinds, str) else list(kinds)
        return list(self.t.call("GET", self.t.path(project_id, "search"), params={
            "q": query, "kind": kind, "priority": priority, "content_type": content_type,
            "namespace": namespace, "since": _moment(since), "until": _moment(until),
            "limit": limit, "raw": raw}))


def _moment(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(value.isoformat())


class RemoteAuditChain(RemoteService):
    def seal(self, project_id: str | None = None, *, progress: Any = None) -> dict[str, Any]:
        """Seal the project's new audit entries (a server seals one project's chain)."""
        return dict(self.t.call("POST", self.t.path(project_id, "audit", "seal")))

    def verify(self, project_id: str | None = None, *, progress: Any = None) -> dict[str, Any]:
        """The verification of the project's chain (a server verifies one project's)."""
        return dict(self.t.call("GET", self.t.path(project_id, "audit", "verify")))
