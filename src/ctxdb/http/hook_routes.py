"""``POST /v1/hooks``: an agent's hook event, forwarded by ``ctxdb hook`` on its machine.

The route runs the event through the same use cases as the local hook
(``db.hook_events``) and answers ``{"output": …}``, the object the hook prints (null:
nothing). What only the agent's machine knows comes with the event: the repository identity
of its working directory (``repo``; git runs there, not here), and the part of its
transcript the event needs (``transcript``: the bytes appended since the offset the server
answered last, or the file's last block; ``ctxdb.hooks.remote_transcript``). Those bytes are
read as the file would be, under the path the agent named (``ctxdb.transcripts.uploaded``),
and the answer says how far the server has read that transcript (``transcript_offset``). An
event that saves a handoff sends the handoff itself (``handoff``), read on the agent's machine
from the whole transcript and its subagents' with the local hook's code.
What the server never does: open a file the request names. The event's ``transcript_path``
is dropped before anything runs, so a token cannot make the server read its own files.

Token scope: a fleet-wide token may register a repository's project (created on first use,
as the local hook does); a project's token may touch only its own project. An event whose
repository or session belongs to another project, or whose repository has no project yet,
is refused exactly as one of a repository nobody knows, so nothing tells the caller that
another project holds it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from ctxdb.domain.agents import AgentSession, RepoIdentity
from ctxdb.domain.hook_events import HookEvent, context_output, parse_event
from ctxdb.errors import ValidationError
from ctxdb.http.auth import Caller
from ctxdb.http.encoding import EncodedRoute
from ctxdb.http.problems import PROBLEM_RESPONSES
from ctxdb.http.routing import Writer
from ctxdb.service.usecases.session_start import out_of_reach
from ctxdb.transcripts.decisions import MAX_DECISION_CHARS, MAX_DECISIONS
from ctxdb.transcripts.handoff import (
    MAX_EARLIER_REQUESTS,
    MAX_LIST_ITEMS,
    MAX_TEXT_CHARS,
    Handoff,
)
from ctxdb.transcripts.models import Compaction, Todo
from ctxdb.transcripts.uploaded import MAX_UPLOAD_BYTES, UploadedTranscript

MAX_SUBAGENT_FILES = 100

v1 = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES, route_class=EncodedRoute)


class HookRepo(BaseModel):
    """The repository identity the agent's machine computed (``ctxdb.repo_identity``)."""

    model_config = ConfigDict(extra="forbid")
    repo_key: str
    name: str
    worktree: str | None = None
    branch: str | None = None


class HookTranscript(BaseModel):
    """Bytes ``[offset, offset + len(data))`` of the agent's transcript file ``path`` (of
    ``size`` bytes), complete lines, then ``skipped`` bytes of one over-long line left out."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(max_length=4096, description="the file on the agent's machine (a name)")
    offset: int = Field(ge=0)
    size: int = Field(ge=0)
    data: str = Field(max_length=4 * (MAX_UPLOAD_BYTES // 3 + 1),
                      description=f"base64, at most {MAX_UPLOAD_BYTES} bytes")
    skipped: int = Field(0, ge=0)


TextOf = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
Name = Annotated[str, Field(max_length=1000)]


class HookCompaction(BaseModel):
    """The transcript's latest compaction boundary."""

    model_config = ConfigDict(extra="forbid")
    uuid: Name | None = None
    timestamp: Name | None = None
    trigger: Name | None = None
    pre_tokens: int | None = Field(None, ge=0)
    offset: int = Field(ge=0)


class HookTodo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: TextOf
    status: Name


class HookHandoff(BaseModel):
    """The handoff of the transcript since its last compaction, read on the agent's machine
    with the local hook's code (``ctxdb.transcripts.handoff``), bounded as that code bounds
    it. It is what a write token could store through ``POST …/handoffs`` anyway; the server
    renders and stores it as a local hook does."""

    model_config = ConfigDict(extra="forbid")
    session_id: Name | None = None
    compaction: HookCompaction | None = None
    latest_request: TextOf | None = None
    earlier_requests: list[TextOf] = Field(default_factory=list,
                                           max_length=MAX_EARLIER_REQUESTS)
    open_todos: list[HookTodo] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    files_edited: list[TextOf] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    decisions: list[Annotated[str, Field(max_length=MAX_DECISION_CHARS)]] = Field(
        default_factory=list, max_length=MAX_DECISIONS)
    last_assistant_text: TextOf | None = None
    context_tokens: int | None = Field(None, ge=0)

    def handoff(self) -> Handoff:
        compaction = self.compaction
        return Handoff(
            session_id=self.session_id,
            compaction=None if compaction is None else Compaction(**compaction.model_dump()),
            latest_request=self.latest_request, earlier_requests=list(self.earlier_requests),
            open_todos=[Todo(todo.content, todo.status) for todo in self.open_todos],
            files_edited=list(self.files_edited), decisions=list(self.decisions),
            last_assistant_text=self.last_assistant_text, context_tokens=self.context_tokens)


class HookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client: str = Field(description="claude-code, codex or gemini")
    event: dict[str, Any] = Field(description="the client's hook payload, as it came")
    repo: HookRepo | None = Field(None, description="needed by every event but SessionEnd")
    host: str | None = Field(None, description="the agent's machine, recorded on its instance")
    transcript: HookTranscript | None = Field(
        None, description="the part of the session's transcript the event needs")
    subagents: list[HookTranscript] = Field(
        default_factory=list, max_length=MAX_SUBAGENT_FILES,
        description="with transcript: the new bytes of its <session>/subagents/*.jsonl")
    handoff: HookHandoff | None = Field(
        None, description="with transcript, for PreCompact, SessionEnd and SessionStart "
                          "compact: the handoff the agent's machine read from the whole "
                          "transcript and its subagents' (a handoff is made from it)")


class HookOut(BaseModel):
    output: dict[str, Any] | None = Field(
        description="what the hook prints (hookSpecificOutput), or null: nothing")
    transcript_offset: int | None = Field(
        None, description="how far the server has read the transcript sent (where the "
                          "agent's next bytes start); only when a transcript was sent")
    subagent_offsets: dict[str, int] | None = Field(
        None, description="the same for each subagent transcript sent")


@v1.post("/hooks", response_model=HookOut, response_model_exclude_unset=True)
def run_hook_event(caller: Writer, body: HookIn) -> dict[str, Any]:
    event = remote_event(body)
    if not event.event:
        return {"output": None}  # an event ctxdb does not handle, as the local hook
    repo = None if body.repo is None else RepoIdentity(**body.repo.model_dump()).checked()
    if not _start_judges_reach(event, repo):
        check_reach(caller, event, repo)
    text = caller.db.hook_events.handle(
        event, lambda: _required(repo),
        within=None if caller.fleet_wide else str(caller.token["project_id"]))
    output = context_output(event, text) if text else None
    answer = {"output": None if output is None else json.loads(output)}
    offset = _offset(caller, event, event.session.uploaded)
    if offset is not None:
        answer["transcript_offset"] = offset
    if event.session.uploaded_subagents:
        answer["subagent_offsets"] = {
            upload.name: offset for upload in event.session.uploaded_subagents
            if (offset := _offset(caller, event, upload)) is not None}
    return answer


def remote_event(body: HookIn) -> HookEvent:
    """The event as the local hook parses it, less what the server must not act on: the
    transcript path (a file of the agent's machine) and the process id (of that machine); the
    machine's name is recorded instead of the server's."""
    event = parse_event(body.client, json.dumps(body.event), None)
    session = AgentSession(event.session.client, event.session.session_id,
                           transcript_path=None, cwd=event.session.cwd, hostname=body.host,
                           uploaded=uploaded(body.transcript, body.handoff),
                           uploaded_subagents=subagents_uploaded(body))
    return HookEvent(event.client, event.name, event.event, session.checked(), event.fields)


def _start_judges_reach(event: HookEvent, repo: RepoIdentity | None) -> bool:
    """Whether the event is a session start that judges the caller's reach itself, in its own
    transaction, before it reads or writes anything else (``session_start.reached_rows``):
    a new session's (startup) with its repository. That saves the start-up wave of a fleet
    the round trip of check_reach; the other events are judged by it first."""
    return event.event == "SessionStart" and repo is not None \
        and (event.text("source") or "startup") == "startup"


def check_reach(caller: Caller, event: HookEvent, repo: RepoIdentity | None) -> None:
    """Refuse an event a project's token may not touch (see the module docstring)."""
    if caller.fleet_wide:
        return
    mine = caller.token["project_id"]
    instance_project, repo_project = caller.db.sessions.projects_reached(
        event.session, None if repo is None else repo.repo_key)
    if instance_project is not None and instance_project != mine:
        raise out_of_reach()
    if repo is not None:
        if repo_project != mine:
            raise out_of_reach()
    elif instance_project is None:
        raise out_of_reach()


def _required(repo: RepoIdentity | None) -> RepoIdentity:
    if repo is None:
        raise ValidationError("this event needs the repository identity: send 'repo'")
    return repo


def uploaded(sent: HookTranscript | None,
             handoff: HookHandoff | None = None) -> UploadedTranscript | None:
    """The transcript bytes sent, checked: a name, never a file of this machine to open;
    with the handoff the agent's machine read from it, if sent."""
    if sent is None:
        if handoff is not None:
            raise ValidationError("a handoff is sent with its transcript (its name) only")
        return None
    upload = _upload(sent)
    return upload if handoff is None else upload._replace(handoff=handoff.handoff())


def _upload(sent: HookTranscript) -> UploadedTranscript:
    if not os.path.isabs(sent.path):
        raise ValidationError("transcript.path must be the absolute path of the file on the "
                              f"agent's machine, got {sent.path[:200]!r}")
    try:
        data = base64.b64decode(sent.data, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("transcript.data is not base64") from None
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError(f"transcript.data holds {len(data)} bytes, more than the "
                              f"{MAX_UPLOAD_BYTES} one event may carry")
    if data and not data.endswith(b"\n"):
        raise ValidationError("transcript.data must be complete lines (end with a newline)")
    upload = UploadedTranscript(sent.path, sent.offset, data, sent.size, sent.skipped)
    if upload.end > upload.size:
        raise ValidationError(f"transcript: offset {sent.offset} plus the bytes sent and "
                              f"skipped ({upload.end - sent.offset}) exceed size {sent.size}")
    return upload


def subagents_uploaded(body: HookIn) -> tuple[UploadedTranscript, ...]:
    """The subagent transcripts sent: files of ``<session>/subagents/`` next to the session's
    transcript (``<session>.jsonl``), within one upload's bytes in all."""
    if not body.subagents:
        return ()
    if body.transcript is None:
        raise ValidationError("subagents are sent with the session's transcript only")
    folder = os.path.join(os.path.splitext(body.transcript.path)[0], "subagents")
    uploads = tuple(_upload(sent) for sent in body.subagents)
    for upload in uploads:
        if os.path.dirname(upload.name) != folder or not upload.name.endswith(".jsonl"):
            raise ValidationError(f"a subagent transcript must be a .jsonl file of {folder}, "
                                  f"got {upload.name[:200]!r}")
    if sum(len(upload.data) for upload in uploads) > MAX_UPLOAD_BYTES:
        raise ValidationError(f"the subagent transcripts sent hold more than {MAX_UPLOAD_BYTES} "
                              "bytes in all")
    return uploads


def _offset(caller: Caller, event: HookEvent, upload: UploadedTranscript | None) -> int | None:
    """The stored offset of a transcript the event sent, if it is this session's."""
    if upload is None:
        return None
    row = caller.db.transcripts.get(upload.name)
    if row is None:
        return 0
    return int(row["byte_offset"]) if row["session_id"] == event.session.session_id else None
