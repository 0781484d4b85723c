"""The remote services of a project's own records: projects, phases, instances, token usage
and handoffs, context, memories. Each method takes the arguments of the local service of the
same name (``ctxdb.service``) and answers as it does; ``actor`` is not taken, since the server
names the token in the audit log (it is accepted, and left unused, where the CLI passes it,
so that code written for ``ctxdb.open()`` runs unchanged). Methods that name a record by id
alone (a phase, an item) reach it within the connection's project, or the ``project_id``
given. A method the HTTP API does not offer raises :class:`ctxdb.errors.LocalOnlyError`."""

from __future__ import annotations

import builtins
import re
from typing import Any

from ctxdb.client.transport import Transport, segment
from ctxdb.domain.agents import RepoIdentity
from ctxdb.domain.models import DEFAULT_CONTENT_TYPE
from ctxdb.errors import LocalOnlyError


def not_offered(what: str, url: str) -> LocalOnlyError:
    """What asking a server for a service or method of a local database only raises."""
    return LocalOnlyError(
        f"{what} is not offered by the ctxdb server at {url}: run it where the database is "
        f"(on the server host, with CTXDB_URL naming the SQLite file or postgresql://…)",
        feature=what, url=url)


class RemoteService:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    def __getattr__(self, name: str) -> Any:
        # Only reached for a name the class lacks: a method of the local service alone.
        if name.startswith("_") or name == "t":
            raise AttributeError(name)
        service = re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__.removeprefix("Remote"))
        raise not_offered(f"{service.lower()}.{name}", self.t.url)


class RemoteProjects(RemoteService):
    def create(self, name: str, description: str = "", total_story_points: int = 0,
               metadata: dict[str, Any] | None = None, repo_key: str | None = None,
               actor: str | None = None, *,
               idempotency_key: str | None = None) -> dict[str, Any]:
        return dict(self.t.create("/v1/projects", {
            "name": name, "description": description, "total_story_points": total_story_points,
            "metadata": metadata, "repo_key": repo_key}, idempotency_key))

    def get(self, project_id: str) -> dict[str, Any]:
        return dict(self.t.call("GET", self.t.path(project_id)))

    def list(self, include_archived: bool = False) -> builtins.list[dict[str, Any]]:
        return list(self.t.call("GET", "/v1/projects",
                                params={"include_archived": include_archived}))

    def update(self, project_id: str, *, name: str | None = None,
               description: str | None = None, total_story_points: int | None = None,
               completed_story_points: int | None = None,
               metadata: dict[str, Any] | None = None,
               actor: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("PATCH", self.t.path(project_id), json={
            "name": name, "description": description, "total_story_points": total_story_points,
            "completed_story_points": completed_story_points, "metadata": metadata}))

    def archive(self, project_id: str, actor: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("POST", self.t.path(project_id, "archive")))

    def summary(self) -> builtins.list[dict[str, Any]]:
        """The summary rows of every project the token sees."""
        return [row for project in self.list()
                for row in self.t.call("GET", self.t.path(project["project_id"], "summary"))]


class RemotePhases(RemoteService):
    def create(self, project_id: str, phase_number: int, name: str, story_points: int = 0,
               description: str = "", *, idempotency_key: str | None = None) -> dict[str, Any]:
        return dict(self.t.create(self.t.path(project_id, "phases"), {
            "phase_number": phase_number, "name": name, "story_points": story_points,
            "description": description}, idempotency_key))

    def get(self, phase_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("GET", self.t.path(project_id, "phases", phase_id)))

    def list(self, project_id: str) -> builtins.list[dict[str, Any]]:
        return list(self.t.call("GET", self.t.path(project_id, "phases")))

    def current(self, project_id: str) -> dict[str, Any] | None:
        answer = self.t.call("GET", self.t.path(project_id, "phases", "current"))
        return None if answer is None else dict(answer)

    def start(self, phase_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        return self._change(phase_id, "start", project_id, None)

    def complete(self, phase_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        return self._change(phase_id, "complete", project_id, None)

    def block(self, phase_id: int, reason: str = "", *,
              project_id: str | None = None) -> dict[str, Any]:
        return self._change(phase_id, "block", project_id, {"reason": reason})

    def _change(self, phase_id: int, verb: str, project_id: str | None,
                body: Any) -> dict[str, Any]:
        return dict(self.t.call("POST", self.t.path(project_id, "phases", phase_id, verb),
                                json=body))


class RemoteInstances(RemoteService):
    def launch(self, project_id: str, phase_id: int | None = None, *,
               actor: str | None = None, idempotency_key: str | None = None,
               **fields: Any) -> dict[str, Any]:
        body = {"phase_id": phase_id, **fields}
        return dict(self.t.create(self.t.path(project_id, "instances"),
                                  {k: v for k, v in body.items() if v is not None},
                                  idempotency_key))

    def get(self, instance_id: str, *, project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("GET", self.t.path(project_id, "instances", instance_id)))

    def list(self, project_id: str | None = None,
             status: str | None = None) -> builtins.list[dict[str, Any]]:
        return list(self.t.call("GET", self.t.path(project_id, "instances"),
                                params={"status": status}))

    def heartbeat(self, instance_id: str, phase_id: int | None = None, *,
                  project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("POST", self.t.path(project_id, "instances", instance_id,
                                                     "heartbeat"), json={"phase_id": phase_id}))

    def end(self, instance_id: str, *, actor: str | None = None,
            project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("POST", self.t.path(project_id, "instances", instance_id,
                                                     "end")))

    def reap_stale(self, project_id: str | None = None) -> builtins.list[dict[str, Any]]:
        """Mark the project's silent instances crashed (a server reaps one project's)."""
        return list(self.t.call("POST", self.t.path(project_id, "instances", "reap")))


class RemoteTokens(RemoteService):
    """An instance's token usage and its handoffs (``db.tokens`` locally)."""

    def update_usage(self, instance_id: str, token_count: int, actor: str | None = None, *,
                     project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("PUT", self.t.path(project_id, "instances", instance_id,
                                                    "usage"), json={"tokens": token_count}))

    def all_usage(self, project_id: str | None = None) -> dict[str, Any]:
        """Every live instance's usage (a server reports one project's)."""
        return dict(self.t.call("GET", self.t.path(project_id, "usage")))

    def check_usage(self, instance_id: str, *,
                    project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("GET", self.t.path(project_id, "instances", instance_id,
                                                    "usage")))

    def clear_and_reload(self, instance_id: str, *, summary: str = "",
                         next_steps: list[Any] | None = None,
                         working_set: dict[str, Any] | None = None,
                         budget_tokens: int | None = None, actor: str | None = None,
                         project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("POST", self.t.path(project_id, "instances", instance_id,
                                                     "reload"), json={
            "summary": summary, "next_steps": next_steps, "working_set": working_set,
            "budget_tokens": budget_tokens}))

    def auto_manage(self, instance_id: str, threshold: float | None = None, *,
                    summary: str = "", next_steps: list[Any] | None = None,
                    working_set: dict[str, Any] | None = None,
                    budget_tokens: int | None = None, actor: str | None = None,
                    project_id: str | None = None) -> dict[str, Any] | None:
        answer = self.t.call("POST", self.t.path(project_id, "instances", instance_id, "auto"),
                             json={"threshold": threshold, "summary": summary,
                                   "next_steps": next_steps, "working_set": working_set,
                                   "budget_tokens": budget_tokens})
        return None if answer is None else dict(answer)

    def record_handoff(self, instance_id: str, *, summary: str = "",
                       next_steps: list[Any] | None = None,
                       working_set: dict[str, Any] | None = None,
                       project_id: str | None = None,
                       idempotency_key: str | None = None) -> dict[str, Any]:
        return dict(self.t.create(self.t.path(project_id, "handoffs"), {
            "instance_id": instance_id, "summary": summary, "next_steps": next_steps,
            "working_set": working_set}, idempotency_key))

    def handoffs(self, instance_id: str, project_id: str | None = None, *,
                 before_id: int | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The instance's handoffs, newest first (``before_id``: the next, older page)."""
        return list(self.t.call("GET", self.t.path(project_id, "instances", instance_id,
                                                    "handoffs"),
                                params={"before_id": before_id, "limit": limit}))

    def latest_handoff(self, *, instance_id: str | None = None,
                       project_id: str | None = None) -> dict[str, Any] | None:
        answer = self.t.call("GET", self.t.path(project_id, "handoffs", "latest"),
                             params={"instance_id": instance_id})
        return None if answer is None else dict(answer)


class RemoteSessions(RemoteService):
    """The agent sessions' project lookup (``db.sessions``); the hook events themselves go
    through ``POST /v1/hooks`` (``ctxdb hook``)."""

    def find_project(self, repo_key: str) -> dict[str, Any] | None:
        """The project of a repository among those the token sees, or None (also when
        another project holds it: the server does not say)."""
        found = self.t.call("GET", "/v1/projects", params={"repo_key": repo_key})
        return dict(found[0]) if found else None


class RemoteContinuity(RemoteService):
    """What a new session is given (``db.continuity``); settling stopped sessions happens on
    the server, with every read of the project."""

    def new_session(self, project_id: str, client: str,
                    repo: RepoIdentity | None = None) -> dict[str, Any]:
        where = {} if repo is None else {"repo_key": repo.repo_key, "repo_name": repo.name,
                                         "worktree": repo.worktree, "branch": repo.branch}
        return dict(self.t.call("GET", self.t.path(project_id, "new-session"),
                                params={"client": client, **where}))


class RemoteContext(RemoteService):
    def store(self, project_id: str, content: Any, priority: str = "HIGH",
              content_type: str = DEFAULT_CONTENT_TYPE, phase_id: int | None = None, *,
              metadata: dict[str, Any] | None = None, created_by: str | None = None,
              token_count: int | None = None, actor: str | None = None,
              idempotency_key: str | None = None) -> dict[str, Any]:
        return dict(self.t.create(self.t.path(project_id, "context"), {
            "content": content, "priority": priority, "content_type": content_type,
            "phase_id": phase_id, "metadata": metadata, "token_count": token_count,
            "created_by": created_by}, idempotency_key))

    def get(self, item_id: int, project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("GET", self.t.path(project_id, "context", item_id)))

    def supersede(self, item_id: int, content: Any, *, priority: str | None = None,
                  content_type: str | None = None, metadata: dict[str, Any] | None = None,
                  token_count: int | None = None, idempotency_key: str | None = None,
                  actor: str | None = None, project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.create(self.t.path(project_id, "context", item_id, "supersede"), {
            "content": content, "priority": priority, "content_type": content_type,
            "metadata": metadata, "token_count": token_count}, idempotency_key))

    def delete(self, item_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("DELETE", self.t.path(project_id, "context", item_id)))

    def page(self, project_id: str, priority: str, after_sequence: int = 0,
             limit: int = 100) -> dict[str, Any]:
        return dict(self.t.call("GET", self.t.path(project_id, "context"), params={
            "priority": priority, "after_sequence": after_sequence, "limit": limit}))

    def full(self, project_id: str, phase_id: int | None = None) -> dict[str, Any]:
        return dict(self.t.call("GET", self.t.path(project_id, "context", "full"),
                                params={"phase_id": phase_id}))

    def pack(self, project_id: str, budget_tokens: int, phase_id: int | None = None, *,
             partial_critical: bool = False) -> dict[str, Any]:
        """The pack in its JSON form (``ctxdb.domain.pack_formats.pack_payload``): items in
        pack order, counts and the manifest."""
        return dict(self.t.call("GET", self.t.path(project_id, "pack"), params={
            "budget_tokens": budget_tokens, "phase_id": phase_id,
            "partial_critical": partial_critical}))


class RemoteMemories(RemoteService):
    def put(self, project_id: str, namespace: str, key: str, value: Any, *,
            memory_type: str | None = None, expected_version: int | None = None,
            ttl_seconds: int | None = None) -> dict[str, Any]:
        return dict(self.t.call("PUT", self._path(project_id, namespace, key), json={
            "value": value, "memory_type": memory_type, "expected_version": expected_version,
            "ttl_seconds": ttl_seconds}))

    def get(self, project_id: str, namespace: str, key: str,
            version: int | None = None) -> dict[str, Any]:
        return dict(self.t.call("GET", self._path(project_id, namespace, key),
                                params={"version": version}))

    def history(self, project_id: str, namespace: str, key: str) -> builtins.list[dict[str, Any]]:
        return list(self.t.call("GET", self._path(project_id, namespace, key) + "/history"))

    def list(self, project_id: str, prefix: str = "", *, limit: int = 100,
             after: tuple[str, str] | None = None, include_deleted: bool = False,
             include_expired: bool = False) -> builtins.list[dict[str, Any]]:
        namespace, key = after or (None, None)
        return list(self.t.call("GET", self.t.path(project_id, "memories"), params={
            "prefix": prefix, "limit": limit, "after_namespace": namespace, "after_key": key,
            "include_deleted": include_deleted, "include_expired": include_expired}))

    def delete(self, project_id: str, namespace: str, key: str, *,
               expected_version: int | None = None) -> dict[str, Any]:
        return dict(self.t.call("DELETE", self._path(project_id, namespace, key),
                                params={"expected_version": expected_version}))

    def purge(self, project_id: str, namespace: str, key: str, *,
              actor: str | None = None) -> dict[str, Any]:
        return dict(self.t.call("POST", self._path(project_id, namespace, key) + "/purge"))

    def sweep_expired(self, project_id: str | None = None, *, limit: int = 1000,
                      actor: str | None = None) -> int:
        """Remove up to ``limit`` expired memories (a server sweeps one project's)."""
        answer = self.t.call("POST", self.t.path(project_id, "memories", "sweep"),
                             params={"limit": limit})
        return int(answer["removed"])

    def _path(self, project_id: str, namespace: str, key: str) -> str:
        return f"{self.t.path(project_id, 'memories')}/{segment(namespace)}/{segment(key)}"


class RemoteRetention(RemoteService):
    """The archived context items (``db.retention``); ``collect`` (``ctxdb gc``) runs where
    the database is."""

    def archived(self, project_id: str, *, after_item_id: int = 0,
                 limit: int = 100) -> builtins.list[dict[str, Any]]:
        return list(self.t.call("GET", self.t.path(project_id, "context", "archived"),
                                params={"after_item_id": after_item_id, "limit": limit}))

    def unarchive(self, item_id: int, *, project_id: str | None = None,
                  actor: str | None = None) -> builtins.list[dict[str, Any]]:
        return list(self.t.call("POST", self.t.path(project_id, "context", item_id,
                                                     "unarchive")))
