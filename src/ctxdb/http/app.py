"""The ASGI application of ``ctxdb serve``: ``/healthz``, ``/readyz`` and the REST API ``/v1``.

Every ``/v1`` route names the scope it needs (``READ``/``WRITE``/``ADMIN`` from
:mod:`ctxdb.http.auth`) and reaches a project only through ``Caller.project``; records named
by id are looked up within that project, so another project's id answers exactly like an
unknown one. Endpoints are plain ``def``: FastAPI runs them in its worker threads, where the
synchronous services run unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ctxdb import __version__
from ctxdb.domain.pack_formats import pack_payload
from ctxdb.errors import (
    ConflictError,
    ContextItemNotFoundError,
    CtxdbError,
    InstanceNotFoundError,
    PhaseNotFoundError,
    ValidationError,
)
from ctxdb.http import models as m
from ctxdb.http.auth import FLEET_ADMIN, READ, WRITE, Caller
from ctxdb.http.limits import BodyLimit
from ctxdb.http.problems import problem, problem_of
from ctxdb.service import Ctxdb

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
Reader = Annotated[Caller, Depends(READ)]
Writer = Annotated[Caller, Depends(WRITE)]
FleetAdmin = Annotated[Caller, Depends(FLEET_ADMIN)]

v1 = APIRouter(prefix="/v1")


def no_idempotency(key: str | None, what: str) -> None:
    """A create whose service keeps no idempotency key refuses one rather than ignore it: a
    client must not believe a retry is safe when it is not."""
    if key is not None:
        raise ValidationError(f"Idempotency-Key is not supported on {what} yet (docs/server.md)")


def item_of(caller: Caller, project_id: str, item_id: int) -> dict[str, Any]:
    item = caller.db.context.get(item_id)
    if item["project_id"] != caller.project(project_id):
        raise ContextItemNotFoundError(f"unknown context item {item_id}", item_id=item_id)
    return item


def instance_of(caller: Caller, project_id: str, instance_id: str) -> dict[str, Any]:
    instance = caller.db.instances.get(instance_id)
    if instance["project_id"] != caller.project(project_id):
        raise InstanceNotFoundError(f"unknown instance {instance_id!r}",
                                    instance_id=instance_id)
    return instance


def taken_elsewhere(caller: Caller, project_id: str, instance_id: str) -> None:
    """An instance id a client chose that another project already holds: refused without
    naming that project (ids are global, so only that the id is taken can be said)."""
    try:
        instance = caller.db.instances.get(instance_id)
    except InstanceNotFoundError:
        return
    if instance["project_id"] != project_id:
        raise ConflictError(f"instance id {instance_id!r} is taken: launch with another id, "
                            f"or none to get a new one", instance_id=instance_id)


# --- projects and phases ------------------------------------------------------------------


@v1.get("/projects", response_model=list[m.Project])
def list_projects(caller: Reader) -> list[dict[str, Any]]:
    projects = caller.db.projects.list()
    mine = caller.token["project_id"]
    return [p for p in projects if caller.fleet_wide or p["project_id"] == mine]


@v1.post("/projects", response_model=m.Project, status_code=201)
def create_project(caller: FleetAdmin, body: m.ProjectIn, key: IdempotencyKey = None) -> Any:
    no_idempotency(key, "projects")
    return caller.db.projects.create(body.name, body.description, body.total_story_points)


@v1.get("/projects/{project_id}", response_model=m.Project)
def get_project(caller: Reader, project_id: str) -> Any:
    return caller.db.projects.get(caller.project(project_id))


@v1.get("/projects/{project_id}/summary", response_model=list[dict[str, Any]])
def project_summary(caller: Reader, project_id: str) -> Any:
    pid = caller.project(project_id)
    caller.db.projects.get(pid)
    return [row for row in caller.db.projects.summary() if row["project_id"] == pid]


@v1.get("/projects/{project_id}/phases", response_model=list[m.Phase])
def list_phases(caller: Reader, project_id: str) -> Any:
    return caller.db.phases.list(caller.project(project_id))


@v1.post("/projects/{project_id}/phases", response_model=m.Phase, status_code=201)
def create_phase(caller: Writer, project_id: str, body: m.PhaseIn,
                 key: IdempotencyKey = None) -> Any:
    no_idempotency(key, "phases")
    return caller.db.phases.create(caller.project(project_id), body.phase_number, body.name,
                                   body.story_points, body.description)


def phase_of(caller: Caller, project_id: str, phase_id: int) -> dict[str, Any]:
    phase = caller.db.phases.get(phase_id)
    if phase["project_id"] != caller.project(project_id):
        raise PhaseNotFoundError(f"unknown phase {phase_id}", phase_id=phase_id)
    return phase


@v1.get("/projects/{project_id}/phases/{phase_id}", response_model=m.Phase)
def get_phase(caller: Reader, project_id: str, phase_id: int) -> Any:
    return phase_of(caller, project_id, phase_id)


@v1.post("/projects/{project_id}/phases/{phase_id}/start", response_model=m.Phase)
def start_phase(caller: Writer, project_id: str, phase_id: int) -> Any:
    phase_of(caller, project_id, phase_id)
    return caller.db.phases.start(phase_id)


@v1.post("/projects/{project_id}/phases/{phase_id}/complete", response_model=m.Phase)
def complete_phase(caller: Writer, project_id: str, phase_id: int) -> Any:
    phase_of(caller, project_id, phase_id)
    return caller.db.phases.complete(phase_id)


@v1.post("/projects/{project_id}/phases/{phase_id}/block", response_model=m.Phase)
def block_phase(caller: Writer, project_id: str, phase_id: int, body: m.BlockIn) -> Any:
    phase_of(caller, project_id, phase_id)
    return caller.db.phases.block(phase_id, body.reason)


# --- instances ----------------------------------------------------------------------------


@v1.post("/projects/{project_id}/instances", response_model=m.Instance, status_code=201)
def launch_instance(caller: Writer, project_id: str, body: m.InstanceIn,
                    key: IdempotencyKey = None) -> Any:
    no_idempotency(key, "instances (send instance_id: launching it again revives it)")
    pid = caller.project(project_id)
    if body.instance_id is not None:
        taken_elsewhere(caller, pid, body.instance_id)
    fields = body.model_dump(exclude_none=True)
    phase_id = fields.pop("phase_id", None)
    return caller.db.instances.launch(pid, phase_id, **fields)


@v1.get("/projects/{project_id}/instances", response_model=list[m.Instance])
def list_instances(caller: Reader, project_id: str, status: str | None = None) -> Any:
    return caller.db.instances.list(caller.project(project_id), status)


@v1.get("/projects/{project_id}/instances/{instance_id}", response_model=m.Instance)
def get_instance(caller: Reader, project_id: str, instance_id: str) -> Any:
    return instance_of(caller, project_id, instance_id)


@v1.post("/projects/{project_id}/instances/{instance_id}/heartbeat", response_model=m.Instance)
def heartbeat(caller: Writer, project_id: str, instance_id: str, body: m.HeartbeatIn) -> Any:
    # Checked here first: the service's own project check names the instance's project.
    instance_of(caller, project_id, instance_id)
    return caller.db.instances.heartbeat(instance_id, body.phase_id,
                                         project_id=caller.project(project_id))


@v1.post("/projects/{project_id}/instances/{instance_id}/end", response_model=m.Instance)
def end_instance(caller: Writer, project_id: str, instance_id: str) -> Any:
    instance_of(caller, project_id, instance_id)
    return caller.db.instances.end(instance_id)


@v1.put("/projects/{project_id}/instances/{instance_id}/usage", response_model=m.Usage)
def set_usage(caller: Writer, project_id: str, instance_id: str, body: m.UsageIn) -> Any:
    instance_of(caller, project_id, instance_id)
    return caller.db.tokens.update_usage(instance_id, body.tokens)


@v1.post("/projects/{project_id}/instances/{instance_id}/reload",
         response_model=dict[str, Any])
def clear_and_reload(caller: Writer, project_id: str, instance_id: str,
                     body: m.ReloadIn) -> Any:
    instance_of(caller, project_id, instance_id)
    return caller.db.tokens.clear_and_reload(
        instance_id, summary=body.summary, next_steps=body.next_steps,
        working_set=body.working_set, budget_tokens=body.budget_tokens)


@v1.post("/projects/{project_id}/handoffs", response_model=m.Handoff, status_code=201)
def record_handoff(caller: Writer, project_id: str, body: m.HandoffIn,
                   key: IdempotencyKey = None) -> Any:
    no_idempotency(key, "handoffs")
    instance_of(caller, project_id, body.instance_id)
    return caller.db.tokens.record_handoff(
        body.instance_id, summary=body.summary, next_steps=body.next_steps,
        working_set=body.working_set, project_id=caller.project(project_id))


@v1.get("/projects/{project_id}/handoffs/latest", response_model=m.Handoff | None)
def latest_handoff(caller: Reader, project_id: str) -> Any:
    pid = caller.project(project_id)
    caller.db.projects.get(pid)
    return caller.db.tokens.latest_handoff(project_id=pid)


# --- context ------------------------------------------------------------------------------


@v1.post("/projects/{project_id}/context", response_model=m.ContextItem, status_code=201)
def store_context(caller: Writer, project_id: str, body: m.ContextIn,
                  key: IdempotencyKey = None) -> Any:
    return caller.db.context.store(
        caller.project(project_id), body.content, body.priority, body.content_type,
        body.phase_id, metadata=body.metadata, token_count=body.token_count,
        idempotency_key=key)


@v1.get("/projects/{project_id}/context", response_model=m.ContextPage)
def page_context(caller: Reader, project_id: str, priority: str,
                 after_sequence: int = 0, limit: Annotated[int, Query()] = 100) -> Any:
    return caller.db.context.page(caller.project(project_id), priority, after_sequence, limit)


@v1.get("/projects/{project_id}/context/full", response_model=dict[str, list[m.ContextItem]])
def full_context(caller: Reader, project_id: str, phase_id: int | None = None) -> Any:
    return caller.db.context.full(caller.project(project_id), phase_id)


@v1.get("/projects/{project_id}/context/{item_id}", response_model=m.ContextItem)
def get_context(caller: Reader, project_id: str, item_id: int) -> Any:
    return item_of(caller, project_id, item_id)


@v1.post("/projects/{project_id}/context/{item_id}/supersede", response_model=m.ContextItem,
         status_code=201)
def supersede_context(caller: Writer, project_id: str, item_id: int,
                      body: m.SupersedeIn) -> Any:
    item_of(caller, project_id, item_id)
    return caller.db.context.supersede(
        item_id, body.content, priority=body.priority, content_type=body.content_type,
        metadata=body.metadata, token_count=body.token_count)


@v1.delete("/projects/{project_id}/context/{item_id}", response_model=m.ContextItem)
def delete_context(caller: Writer, project_id: str, item_id: int) -> Any:
    item_of(caller, project_id, item_id)
    return caller.db.context.delete(item_id)


@v1.get("/projects/{project_id}/pack", response_model=m.Pack)
def pack(caller: Reader, project_id: str, budget_tokens: int,
         phase_id: int | None = None) -> Any:
    pid = caller.project(project_id)
    return pack_payload(pid, caller.db.context.pack(pid, budget_tokens, phase_id))


# --- memories -----------------------------------------------------------------------------


@v1.get("/projects/{project_id}/memories", response_model=list[m.Memory])
def list_memories(caller: Reader, project_id: str, prefix: str = "",
                  limit: int = 100) -> Any:
    return caller.db.memories.list(caller.project(project_id), prefix, limit=limit)


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


# --- tasks --------------------------------------------------------------------------------


@v1.post("/projects/{project_id}/tasks", response_model=m.Task, status_code=201)
def create_task(caller: Writer, project_id: str, body: m.TaskIn,
                key: IdempotencyKey = None) -> Any:
    no_idempotency(key, "tasks")
    return caller.db.tasks.create(
        caller.project(project_id), body.title, description=body.description,
        priority=body.priority, parent_task_id=body.parent_task_id, depends_on=body.depends_on)


@v1.get("/projects/{project_id}/tasks", response_model=list[m.Task])
def list_tasks(caller: Reader, project_id: str, status: str | None = None, after: int = 0,
               limit: int = 100) -> Any:
    return caller.db.tasks.list(caller.project(project_id), status=status, after=after,
                                limit=limit)


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


# --- messages and search ------------------------------------------------------------------


@v1.post("/projects/{project_id}/messages", response_model=m.Message, status_code=201)
def send_message(caller: Writer, project_id: str, body: m.MessageIn,
                 key: IdempotencyKey = None) -> Any:
    no_idempotency(key, "messages")
    return caller.db.messages.send(caller.project(project_id), body.recipient_kind,
                                   body.recipient, body.body, subject=body.subject,
                                   sender=body.sender)


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


@v1.get("/projects/{project_id}/search", response_model=list[m.SearchHit])
def search(caller: Reader, project_id: str, q: str,
           kind: Annotated[list[str] | None, Query()] = None, limit: int = 20) -> Any:
    pid = caller.project(project_id)
    if kind is None:
        return caller.db.search.search(pid, q, limit=limit)
    return caller.db.search.search(pid, q, kinds=kind, limit=limit)


@v1.get("/projects/{project_id}/audit", response_model=list[dict[str, Any]])
def audit_log(caller: Reader, project_id: str, entity_id: str | None = None,
              limit: int = 100) -> Any:
    """The project's newest audit entries first (optionally of one entity)."""
    pid = caller.project(project_id)
    caller.db.projects.get(pid)
    return caller.db.audit_log(project_id=pid, entity_id=entity_id, limit=limit)


# --- the application ----------------------------------------------------------------------


def readiness(db: Ctxdb) -> tuple[bool, str]:
    """Whether the database answers and its schema is the one this ctxdb needs."""
    try:
        migrator = db.migrator()
        current, latest = migrator.current_version(), migrator.latest_version
    except CtxdbError as exc:
        return False, f"{exc.code}: {exc.message}"
    if current != latest:
        return False, f"schema version {current}, this ctxdb needs {latest} (ctxdb db upgrade)"
    return True, f"schema version {current}"


def create_app(db: Ctxdb, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The application over an open store (the caller closes it)."""
    app = FastAPI(title="ctxdb", version=__version__,
                  description="The HTTP API of ctxdb serve (docs/server.md).")
    app.state.db = db

    @app.get("/healthz", response_model=m.Health)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers. The only route without a token."""
        return {"status": "ok", "detail": ""}

    @app.get("/readyz", response_model=m.Health, dependencies=[Depends(READ)],
             responses={503: {"model": m.Health}})
    def readyz() -> Response:
        ready, detail = readiness(db)
        return JSONResponse({"status": "ready" if ready else "unavailable", "detail": detail},
                            status_code=200 if ready else 503)

    # The /v1 routes join the app's own list (not a nested router), so that the app's
    # routes are one flat list: the auth test enumerates it.
    app.router.routes.extend(v1.routes)

    @app.exception_handler(CtxdbError)
    async def ctxdb_error(request: Request, exc: CtxdbError) -> Response:
        return problem_of(exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"])
        return problem(400, ValidationError.code, f"{where}: {first['msg']}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "route_not_found", 405: "method_not_allowed"}.get(exc.status_code, "http")
        return problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # A bug, not an error ctxdb meant: the answer says so without internals, and the
        # exception goes on to the server's log with its traceback.
        return problem(500, "internal_error", "unexpected server error (a bug: the server's "
                       "log has the details)")

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app
