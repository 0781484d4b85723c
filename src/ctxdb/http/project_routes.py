"""The ``/v1`` routes of a project's own records: the project and its phases, instances,
handoffs and context (the routes are declared in ``app.py``'s order)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ctxdb.domain.agents import RepoIdentity
from ctxdb.domain.pack_formats import pack_payload
from ctxdb.errors import PhaseNotFoundError, ValidationError
from ctxdb.http import models as m
from ctxdb.http.auth import Caller
from ctxdb.http.encoding import EncodedRoute
from ctxdb.http.problems import PROBLEM_RESPONSES
from ctxdb.http.routing import (
    Admin,
    FleetAdmin,
    IdempotencyKey,
    Reader,
    Writer,
    instance_of,
    item_of,
    project_naming,
    taken_elsewhere,
)

v1 = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES, route_class=EncodedRoute)


# --- projects and phases ------------------------------------------------------------------


@v1.get("/projects", response_model=list[m.Project])
def list_projects(caller: Reader, include_archived: bool = False,
                  repo_key: str | None = None) -> list[dict[str, Any]]:
    """With ``repo_key``: the project of that repository (archived or not, as a hook finds
    it), when this token may see it, else none; a repository of another project answers as
    one nobody knows."""
    if repo_key is not None:
        found = caller.db.sessions.find_project(repo_key)
        projects = [] if found is None else [found]
    else:
        projects = caller.db.projects.list(include_archived)
    mine = caller.token["project_id"]
    return [p for p in projects if caller.fleet_wide or p["project_id"] == mine]


@v1.post("/projects", response_model=m.Project, status_code=201)
def create_project(caller: FleetAdmin, body: m.ProjectIn, key: IdempotencyKey = None) -> Any:
    return caller.db.projects.create(body.name, body.description, body.total_story_points,
                                     body.metadata, body.repo_key, idempotency_key=key)


@v1.get("/projects/{project_id}", response_model=m.Project)
def get_project(caller: Reader, project_id: str) -> Any:
    return caller.db.projects.get(caller.project(project_id))


@v1.patch("/projects/{project_id}", response_model=m.Project)
def update_project(caller: Writer, project_id: str, body: m.ProjectUpdateIn) -> Any:
    return caller.db.projects.update(caller.project(project_id), **body.model_dump())


@v1.post("/projects/{project_id}/archive", response_model=m.Project)
def archive_project(caller: Admin, project_id: str) -> Any:
    """Kept with all its data; it leaves listings and the project limit."""
    return caller.db.projects.archive(caller.project(project_id))


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
    return caller.db.phases.create(caller.project(project_id), body.phase_number, body.name,
                                   body.story_points, body.description, idempotency_key=key)


def phase_of(caller: Caller, project_id: str, phase_id: int) -> dict[str, Any]:
    phase = caller.db.phases.get(phase_id)
    if phase["project_id"] != caller.project(project_id):
        raise PhaseNotFoundError(f"unknown phase {phase_id}", phase_id=phase_id)
    return phase


# Before /phases/{phase_id}, which would take "current" for an id.
@v1.get("/projects/{project_id}/phases/current", response_model=m.Phase | None)
def current_phase(caller: Reader, project_id: str) -> Any:
    """The active phase with the highest number, or null."""
    return caller.db.phases.current(caller.project(project_id))


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
    pid = caller.project(project_id)
    if body.instance_id is not None:
        taken_elsewhere(caller, pid, body.instance_id)
    fields = body.model_dump(exclude_none=True)
    phase_id = fields.pop("phase_id", None)
    return caller.db.instances.launch(pid, phase_id, idempotency_key=key, **fields)


@v1.get("/projects/{project_id}/instances", response_model=list[m.Instance])
def list_instances(caller: Reader, project_id: str, status: str | None = None) -> Any:
    return caller.db.instances.list(caller.project(project_id), status)


@v1.post("/projects/{project_id}/instances/reap", response_model=list[m.Instance])
def reap_instances(caller: Writer, project_id: str) -> Any:
    """Mark the project's instances silent for longer than ``stale_after`` as crashed."""
    return caller.db.instances.reap_stale(caller.project(project_id))


@v1.get("/projects/{project_id}/usage", response_model=dict[str, Any])
def all_usage(caller: Reader, project_id: str) -> Any:
    """The usage of each live instance of the project, with totals."""
    return caller.db.tokens.all_usage(caller.project(project_id))


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


@v1.get("/projects/{project_id}/instances/{instance_id}/usage", response_model=m.Usage)
def get_usage(caller: Reader, project_id: str, instance_id: str) -> Any:
    instance_of(caller, project_id, instance_id)
    return caller.db.tokens.check_usage(instance_id)


@v1.post("/projects/{project_id}/instances/{instance_id}/reload",
         response_model=dict[str, Any])
def clear_and_reload(caller: Writer, project_id: str, instance_id: str,
                     body: m.ReloadIn) -> Any:
    instance_of(caller, project_id, instance_id)
    return caller.db.tokens.clear_and_reload(
        instance_id, summary=body.summary, next_steps=body.next_steps,
        working_set=body.working_set, budget_tokens=body.budget_tokens)


@v1.post("/projects/{project_id}/instances/{instance_id}/auto",
         response_model=dict[str, Any] | None)
def auto_reload(caller: Writer, project_id: str, instance_id: str,
                body: m.AutoReloadIn) -> Any:
    """Clear and reload only when usage has reached the threshold; null when it has not."""
    instance_of(caller, project_id, instance_id)
    return caller.db.tokens.auto_manage(
        instance_id, body.threshold, summary=body.summary, next_steps=body.next_steps,
        working_set=body.working_set, budget_tokens=body.budget_tokens)


@v1.post("/projects/{project_id}/handoffs", response_model=m.Handoff, status_code=201)
def record_handoff(caller: Writer, project_id: str, body: m.HandoffIn,
                   key: IdempotencyKey = None) -> Any:
    instance_of(caller, project_id, body.instance_id)
    return caller.db.tokens.record_handoff(
        body.instance_id, summary=body.summary, next_steps=body.next_steps,
        working_set=body.working_set, project_id=caller.project(project_id),
        idempotency_key=key)


@v1.get("/projects/{project_id}/handoffs/latest", response_model=m.Handoff | None)
def latest_handoff(caller: Reader, project_id: str, instance_id: str | None = None) -> Any:
    """The newest handoff of the instance (when given), else of the project."""
    pid = project_naming(caller, project_id, instance_id)
    caller.db.projects.get(pid)
    return caller.db.tokens.latest_handoff(instance_id=instance_id, project_id=pid)


@v1.get("/projects/{project_id}/instances/{instance_id}/handoffs",
        response_model=list[m.Handoff])
def list_handoffs(caller: Reader, project_id: str, instance_id: str,
                  before_id: int | None = None, limit: int = 20) -> Any:
    """The instance's handoffs, newest first; ``before_id`` pages on to older ones."""
    instance_of(caller, project_id, instance_id)
    return caller.db.tokens.handoffs(instance_id, caller.project(project_id),
                                     before_id=before_id, limit=limit)


# --- context ------------------------------------------------------------------------------


@v1.post("/projects/{project_id}/context", response_model=m.ContextItem, status_code=201)
def store_context(caller: Writer, project_id: str, body: m.ContextIn,
                  key: IdempotencyKey = None) -> Any:
    return caller.db.context.store(
        project_naming(caller, project_id, body.created_by), body.content, body.priority,
        body.content_type, body.phase_id, metadata=body.metadata, token_count=body.token_count,
        created_by=body.created_by, idempotency_key=key)


@v1.get("/projects/{project_id}/context", response_model=m.ContextPage)
def page_context(caller: Reader, project_id: str, priority: str,
                 after_sequence: int = 0, limit: Annotated[int, Query()] = 100) -> Any:
    return caller.db.context.page(caller.project(project_id), priority, after_sequence, limit)


@v1.get("/projects/{project_id}/context/full", response_model=dict[str, list[m.ContextItem]])
def full_context(caller: Reader, project_id: str, phase_id: int | None = None) -> Any:
    return caller.db.context.full(caller.project(project_id), phase_id)


# Before /context/{item_id}, which would take "archived" for an id.
@v1.get("/projects/{project_id}/context/archived", response_model=list[m.ContextItem])
def archived_context(caller: Reader, project_id: str, after_item_id: int = 0,
                     limit: int = 100) -> Any:
    """A page of the items ``ctxdb gc`` moved out, in id order after ``after_item_id``."""
    return caller.db.retention.archived(caller.project(project_id),
                                        after_item_id=after_item_id, limit=limit)


@v1.post("/projects/{project_id}/context/{item_id}/unarchive",
         response_model=list[m.ContextItem])
def unarchive_context(caller: Writer, project_id: str, item_id: int) -> Any:
    """The item back, unchanged, with the archived items that superseded it."""
    return caller.db.retention.unarchive(item_id, project_id=caller.project(project_id))


@v1.get("/projects/{project_id}/context/{item_id}", response_model=m.ContextItem)
def get_context(caller: Reader, project_id: str, item_id: int) -> Any:
    return item_of(caller, project_id, item_id)


@v1.post("/projects/{project_id}/context/{item_id}/supersede", response_model=m.ContextItem,
         status_code=201)
def supersede_context(caller: Writer, project_id: str, item_id: int,
                      body: m.SupersedeIn, key: IdempotencyKey = None) -> Any:
    """With ``Idempotency-Key``, a retry gets the first replacement."""
    item_of(caller, project_id, item_id)
    return caller.db.context.supersede(
        item_id, body.content, priority=body.priority, content_type=body.content_type,
        metadata=body.metadata, token_count=body.token_count, idempotency_key=key)


@v1.delete("/projects/{project_id}/context/{item_id}", response_model=m.ContextItem)
def delete_context(caller: Writer, project_id: str, item_id: int) -> Any:
    item_of(caller, project_id, item_id)
    return caller.db.context.delete(item_id)


@v1.get("/projects/{project_id}/pack", response_model=m.Pack)
def pack(caller: Reader, project_id: str, budget_tokens: int, phase_id: int | None = None,
         partial_critical: bool = False) -> Any:
    """With ``partial_critical``, CRITICAL items over the budget are left out and named (as a
    reload's pack does) instead of refused."""
    pid = caller.project(project_id)
    return pack_payload(pid, caller.db.context.pack(pid, budget_tokens, phase_id,
                                                    partial_critical=partial_critical))


@v1.get("/projects/{project_id}/new-session", response_model=m.NewSession)
def new_session(caller: Reader, project_id: str, client: str = "claude-code",
                repo_key: str | None = None, repo_name: str | None = None,
                worktree: str | None = None, branch: str | None = None) -> Any:
    """Exactly what a new ``client`` session of the repository (``repo_key``, ``repo_name``,
    ``worktree`` and ``branch`` as its machine computes them; the handoffs of its own
    worktree and branch come first) would be given now: ``ctxdb context --as-new-session``.
    As every read of a project, sessions that stopped without a handoff get theirs first."""
    pid = caller.project(project_id)
    repo = None
    if repo_key is not None:
        repo = RepoIdentity(repo_key, repo_name or "repository", worktree, branch)
    elif (repo_name, worktree, branch) != (None, None, None):
        raise ValidationError("repo_name, worktree and branch describe a repository: "
                              "give its repo_key too")
    return caller.db.continuity.new_session(pid, client, repo)
