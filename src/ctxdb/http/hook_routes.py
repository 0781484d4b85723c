"""``POST /v1/hooks``: an agent's hook event, forwarded by ``ctxdb hook`` on its machine.

The route runs the event through the same use cases as the local hook
(``db.hook_events``) and answers ``{"output": …}``, the object the hook prints (null:
nothing). What only the agent's machine knows comes with the event: the repository identity
of its working directory (``repo``; git runs there, not here). What the server does not do
for a remote agent: read a file the request names. The transcript is on the agent's
machine, so the event's ``transcript_path`` is dropped before anything runs: no transcript
ingestion, no token usage read from it, handoffs without the transcript's summary
(docs/server.md). Reading a path a caller names would also let a token read the server's
own files.

Token scope: a fleet-wide token may register a repository's project (created on first use,
as the local hook does); a project's token may touch only its own project. An event whose
repository or session belongs to another project, or whose repository has no project yet,
is refused exactly as one of a repository nobody knows, so nothing tells the caller that
another project holds it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from ctxdb.domain.agents import AgentSession, RepoIdentity
from ctxdb.domain.hook_events import HookEvent, context_output, parse_event
from ctxdb.errors import ProjectNotFoundError, ValidationError
from ctxdb.http.auth import Caller
from ctxdb.http.problems import PROBLEM_RESPONSES
from ctxdb.http.routing import Writer

v1 = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


class HookRepo(BaseModel):
    """The repository identity the agent's machine computed (``ctxdb.repo_identity``)."""

    model_config = ConfigDict(extra="forbid")
    repo_key: str
    name: str
    worktree: str | None = None
    branch: str | None = None


class HookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client: str = Field(description="claude-code, codex or gemini")
    event: dict[str, Any] = Field(description="the client's hook payload, as it came")
    repo: HookRepo | None = Field(None, description="needed by every event but SessionEnd")
    host: str | None = Field(None, description="the agent's machine, recorded on its instance")


class HookOut(BaseModel):
    output: dict[str, Any] | None = Field(
        description="what the hook prints (hookSpecificOutput), or null: nothing")


@v1.post("/hooks", response_model=HookOut)
def run_hook_event(caller: Writer, body: HookIn) -> dict[str, Any]:
    event = remote_event(body)
    if not event.event:
        return {"output": None}  # an event ctxdb does not handle, as the local hook
    repo = None if body.repo is None else RepoIdentity(**body.repo.model_dump()).checked()
    check_reach(caller, event, repo)
    text = caller.db.hook_events.handle(event, lambda: _required(repo))
    output = context_output(event, text) if text else None
    return {"output": None if output is None else json.loads(output)}


def remote_event(body: HookIn) -> HookEvent:
    """The event as the local hook parses it, less what the server must not act on: the
    transcript path (a file of the agent's machine) and the process id (of that machine); the
    machine's name is recorded instead of the server's."""
    event = parse_event(body.client, json.dumps(body.event), None)
    session = AgentSession(event.session.client, event.session.session_id,
                           transcript_path=None, cwd=event.session.cwd, hostname=body.host)
    return HookEvent(event.client, event.name, event.event, session.checked(), event.fields)


def check_reach(caller: Caller, event: HookEvent, repo: RepoIdentity | None) -> None:
    """Refuse an event a project's token may not touch (see the module docstring)."""
    if caller.fleet_wide:
        return
    mine = caller.token["project_id"]
    instance = caller.db.sessions.instance_of(event.session)
    if instance is not None and instance["project_id"] != mine:
        raise _out_of_reach()
    if repo is not None:
        project = caller.db.sessions.find_project(repo.repo_key)
        if project is None or project["project_id"] != mine:
            raise _out_of_reach()
    elif instance is None:
        raise _out_of_reach()


def _out_of_reach() -> ProjectNotFoundError:
    return ProjectNotFoundError("no project this token may use holds this repository or "
                                "session (a project's token cannot register a repository: "
                                "use a fleet-wide token, or create the project with "
                                "ctxdb project create --repo-key)")


def _required(repo: RepoIdentity | None) -> RepoIdentity:
    if repo is None:
        raise ValidationError("this event needs the repository identity: send 'repo'")
    return repo
