"""The ``/v1`` routes by which a project's agents coordinate and look things up: memories,
tasks, messages, search and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ctxdb.errors import ValidationError
from ctxdb.http import models as m
from ctxdb.http.encoding import EncodedRoute
from ctxdb.http.problems import PROBLEM_RESPONSES
from ctxdb.http.routing import (
    Admin,
    IdempotencyKey,
    Reader,
    Writer,
    instance_of,
    project_naming,
)

v1 = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES, route_class=EncodedRoute)


# --- memories -----------------------------------------------------------------------------


@v1.get("/projects/{project_id}/memories", response_model=list[m.Memory])
def list_memories(caller: Reader, project_id: str, prefix: str = "", limit: int = 100,
                  after_namespace: str | None = None, after_key: str | None = None,
                  include_deleted: bool = False, include_expired: bool = False) -> Any:
    """A page in (namespace, key) order: pass the last one's as after_namespace, after_key."""
    if (after_namespace is None) != (after_key is None):
        raise ValidationError("give after_namespace and after_key together, or neither")
    after = None if after_namespace is None or after_key is None else (after_namespace,
                                                                       after_key)
    return caller.db.memories.list(caller.project(project_id), prefix, limit=limit,
                                   after=after, include_deleted=include_deleted,
                                   include_expired=include_expired)


@v1.put("/projects/{project_id}/memories/{namespace}/{key}", response_model=m.Memory)
def put_memory(caller: Writer, project_id: str, namespace: str, key: str,
               body: m.MemoryIn) -> Any:
    return caller.db.memories.put(
        caller.project(project_id), namespace, key, body.value, memory_type=body.memory_type,
        expected_version=body.expected_version, ttl_seconds=body.ttl_seconds)


@v1.get("/projects/{project_id}/memories/{namespace}/{key}", response_model=m.Memory)
def get_memory(caller: Reader, project_id: str, namespace: str, key: str,
               version: int | None = None) -> Any:
    return caller.db.memories.get(caller.project(project_id), namespace, key, version)


@v1.get("/projects/{project_id}/memories/{namespace}/{key}/history",
        response_model=list[dict[str, Any]])
def memory_history(caller: Reader, project_id: str, namespace: str, key: str) -> Any:
    return caller.db.memories.history(caller.project(project_id), namespace, key)


@v1.delete("/projects/{project_id}/memories/{namespace}/{key}", response_model=m.Memory)
def delete_memory(caller: Writer, project_id: str, namespace: str, key: str,
                  expected_version: int | None = None) -> Any:
    return caller.db.memories.delete(caller.project(project_id), namespace, key,
                                     expected_version=expected_version)


@v1.post("/projects/{project_id}/memories/{namespace}/{key}/purge",
         response_model=dict[str, Any])
def purge_memory(caller: Admin, project_id: str, namespace: str, key: str) -> Any:
    """Erase a memory and every version of it (audited): an admin's cleanup."""
    return caller.db.memories.purge(caller.project(project_id), namespace, key)


@v1.post("/projects/{project_id}/memories/sweep", response_model=m.Swept)
def sweep_memories(caller: Writer, project_id: str, limit: int = 1000) -> Any:
    """Remove up to ``limit`` expired memories of the project."""
    return {"removed": caller.db.memories.sweep_expired(caller.project(project_id),
                                                        limit=limit)}


# --- tasks --------------------------------------------------------------------------------


@v1.post("/projects/{project_id}/tasks", response_model=m.Task, status_code=201)
def create_task(caller: Writer, project_id: str, body: m.TaskIn,
                key: IdempotencyKey = None) -> Any:
    return caller.db.tasks.create(
        caller.project(project_id), body.title, description=body.description,
        priority=body.priority, parent_task_id=body.parent_task_id, depends_on=body.depends_on,
        idempotency_key=key)


@v1.get("/projects/{project_id}/tasks", response_model=list[m.Task])
def list_tasks(caller: Reader, project_id: str, status: str | None = None, after: int = 0,
               limit: int = 100, lease_owner: str | None = None,
               parent_task_id: int | None = None) -> Any:
    pid = project_naming(caller, project_id, lease_owner)
    return caller.db.tasks.list(pid, status=status, lease_owner=lease_owner,
                                parent_task_id=parent_task_id, after=after, limit=limit)


@v1.post("/projects/{project_id}/tasks/claim", response_model=m.Claim)
def claim_task(caller: Writer, project_id: str, body: m.ClaimIn) -> Any:
    pid = caller.project(project_id)
    instance_of(caller, pid, body.instance_id)
    return {"task": caller.db.tasks.claim(pid, body.instance_id, body.lease_seconds)}


@v1.get("/projects/{project_id}/tasks/{task_id}", response_model=m.Task)
def get_task(caller: Reader, project_id: str, task_id: int) -> Any:
    return caller.db.tasks.get(task_id, project_id=caller.project(project_id))


@v1.post("/projects/{project_id}/tasks/{task_id}/renew", response_model=m.Task)
def renew_task(caller: Writer, project_id: str, task_id: int, body: m.LeaseIn) -> Any:
    return caller.db.tasks.renew(task_id, body.epoch, body.lease_seconds,
                                 project_id=caller.project(project_id))


@v1.post("/projects/{project_id}/tasks/{task_id}/complete", response_model=m.Task)
def complete_task(caller: Writer, project_id: str, task_id: int, body: m.CompleteIn) -> Any:
    return caller.db.tasks.complete(task_id, body.epoch, body.result,
                                    project_id=caller.project(project_id))


@v1.post("/projects/{project_id}/tasks/{task_id}/fail", response_model=m.Task)
def fail_task(caller: Writer, project_id: str, task_id: int, body: m.FailIn) -> Any:
    return caller.db.tasks.fail(task_id, body.epoch, body.error,
                                project_id=caller.project(project_id))


@v1.post("/projects/{project_id}/tasks/{task_id}/start", response_model=m.Task)
def start_task(caller: Writer, project_id: str, task_id: int, body: m.EpochIn) -> Any:
    """The lease holder began the work (leased → running)."""
    return caller.db.tasks.start(task_id, body.epoch, project_id=caller.project(project_id))


@v1.post("/projects/{project_id}/tasks/{task_id}/release", response_model=m.Task)
def release_task(caller: Writer, project_id: str, task_id: int, body: m.EpochIn) -> Any:
    """Hand the task back to the queue before finishing it."""
    return caller.db.tasks.release(task_id, body.epoch, project_id=caller.project(project_id))


@v1.post("/projects/{project_id}/tasks/{task_id}/cancel", response_model=m.Task)
def cancel_task(caller: Writer, project_id: str, task_id: int) -> Any:
    """End an unfinished task, leased or not."""
    return caller.db.tasks.cancel(task_id, project_id=caller.project(project_id))


# --- messages and search ------------------------------------------------------------------


@v1.post("/projects/{project_id}/messages", response_model=m.Message, status_code=201)
def send_message(caller: Writer, project_id: str, body: m.MessageIn,
                 key: IdempotencyKey = None) -> Any:
    return caller.db.messages.send(caller.project(project_id), body.recipient_kind,
                                   body.recipient, body.body, subject=body.subject,
                                   sender=body.sender, idempotency_key=key)


@v1.get("/projects/{project_id}/messages/{message_id}", response_model=m.Message)
def get_message(caller: Reader, project_id: str, message_id: int) -> Any:
    return caller.db.messages.get(message_id, project_id=caller.project(project_id))


@v1.post("/projects/{project_id}/messages/inbox", response_model=list[m.Message])
def inbox(caller: Writer, project_id: str, body: m.InboxIn) -> Any:
    """Delivers (so a write): each message returned is hidden for ``visibility_seconds``."""
    instance_of(caller, project_id, body.instance_id)
    return caller.db.messages.inbox(body.instance_id, body.visibility_seconds, body.limit,
                                    project_id=caller.project(project_id))


@v1.post("/projects/{project_id}/messages/{message_id}/ack", response_model=dict[str, Any])
def ack_message(caller: Writer, project_id: str, message_id: int, body: m.AckIn) -> Any:
    instance_of(caller, project_id, body.instance_id)
    return caller.db.messages.ack(message_id, body.instance_id,
                                  project_id=caller.project(project_id))


@v1.post("/projects/{project_id}/messages/{message_id}/promote",
         response_model=dict[str, Any])
def promote_message(caller: Writer, project_id: str, message_id: int,
                    body: m.PromoteIn) -> Any:
    """Keep a message as a memory or a context item; answers the message and what it became."""
    return caller.db.messages.promote(message_id, body.to, project_id=caller.project(project_id),
                                      namespace=body.namespace, key=body.key,
                                      priority=body.priority)


@v1.get("/projects/{project_id}/search", response_model=list[m.SearchHit])
def search(caller: Reader, project_id: str, q: str,
           kind: Annotated[list[str] | None, Query()] = None, limit: int = 20,
           priority: str | None = None, content_type: str | None = None,
           namespace: str | None = None, since: str | None = None, until: str | None = None,
           raw: bool = False) -> Any:
    """``since`` and ``until``: a date, a date and time, or an age (30m, 12h, 7d); ``raw``:
    ``q`` in the engine's own syntax. ``content_type``: an item's content type, a memory's
    type or an event's role."""
    filters: dict[str, Any] = {"priority": priority, "content_type": content_type,
                               "namespace": namespace, "since": since, "until": until,
                               "limit": limit, "raw": raw}
    if kind is not None:
        filters["kinds"] = kind
    return caller.db.search.search(caller.project(project_id), q, **filters)


@v1.get("/projects/{project_id}/audit", response_model=list[dict[str, Any]])
def audit_log(caller: Reader, project_id: str, entity_id: str | None = None,
              limit: int = 100) -> Any:
    """The project's newest audit entries first (optionally of one entity)."""
    pid = caller.project(project_id)
    caller.db.projects.get(pid)
    return caller.db.audit_log(project_id=pid, entity_id=entity_id, limit=limit)
