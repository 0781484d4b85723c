"""The MCP tools of progressive disclosure: ``get`` fetches whole records by the ids that
``search`` prints, ``timeline`` shows what happened before and after an event of a
conversation session or an observation of an agent session (docs/timeline.md).

A model first spends a few tokens on compact search hits (``item:12``, ``memory:ns/key``,
``event:sess_…/3``), then asks only for what it needs. An id is ``KIND:REST``; the kinds and
what ``REST`` is are in :data:`FETCHERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import Field

from ctxdb.errors import ValidationError
from ctxdb.mcp import knowledge, render
from ctxdb.mcp import render_coordination as coordination
from ctxdb.mcp.toolbox import READ_ONLY, Declared, ProjectId
from ctxdb.mcp.tools import ContextTools

MAX_IDS = 20
ID_HELP = ("item:ID, memory:NAMESPACE/KEY, event:SESSION/N, observation:ID, task:ID, "
           "gate:ID or checkpoint:ID")
TIMELINE_IDS = "event:SESSION/N or observation:ID"

Fetcher = Callable[[ContextTools, str, str], str]


def _number(text: str, record_id: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise ValidationError(f"invalid id {record_id!r}: expected {ID_HELP}")
    return int(text)


def _halves(text: str, record_id: str) -> tuple[str, str]:
    first, slash, second = text.partition("/")
    if not (first and slash and second):
        raise ValidationError(f"invalid id {record_id!r}: expected {ID_HELP}")
    return first, second


def _item(tools: ContextTools, project: str, rest: str) -> str:
    item = tools.db.context.get(_number(rest, f"item:{rest}"), project_id=project)
    return render.item_line(item, None)[2:] + f" (stored {item['created_at']})"


def _memory(tools: ContextTools, project: str, rest: str) -> str:
    namespace, key = _halves(rest, f"memory:{rest}")
    return render.memory_text(tools.db.memories.get(project, namespace, key))


def _event(tools: ContextTools, project: str, rest: str) -> str:
    session_id, number = _halves(rest, f"event:{rest}")
    sequence = _number(number, f"event:{rest}")
    events = tools.db.conversations.events(session_id, after_sequence=sequence - 1, limit=1,
                                           project_id=project)
    if not events or events[0]["sequence"] != sequence:
        raise ValidationError(f"session {session_id} has no event {sequence}")
    return render.event_text(events[0])


def _observation(tools: ContextTools, project: str, rest: str) -> str:
    observation = tools.db.observations.get(project, _number(rest, f"observation:{rest}"))
    return render.observation_text(observation)


def _task(tools: ContextTools, project: str, rest: str) -> str:
    task = tools.db.tasks.get(_number(rest, f"task:{rest}"), project_id=project)
    description = f"\nDescription: {task['description']}" if task["description"] else ""
    return coordination.task_line(task)[2:] + description


def _gate(tools: ContextTools, project: str, rest: str) -> str:
    return coordination.gate_text(
        tools.db.approvals.get(_number(rest, f"gate:{rest}"), project_id=project))


def _checkpoint(tools: ContextTools, project: str, rest: str) -> str:
    checkpoint = tools.db.checkpoints.get(_number(rest, f"checkpoint:{rest}"),
                                          project_id=project)
    return coordination.checkpoint_text(checkpoint, project)


FETCHERS: dict[str, Fetcher] = {"item": _item, "memory": _memory, "event": _event,
                                "observation": _observation, "task": _task, "gate": _gate,
                                "checkpoint": _checkpoint}


def fetch(tools: ContextTools, project: str, record_id: str) -> str:
    """One record, whole, as text; a record of another project is unknown."""
    kind, _colon, rest = record_id.partition(":")
    if kind not in FETCHERS or not rest:
        raise ValidationError(f"invalid id {record_id!r}: expected {ID_HELP}")
    return FETCHERS[kind](tools, project, rest)


def get(
    tools: ContextTools,
    ids: Annotated[list[str], Field(
        description=f"Ids from search: {ID_HELP}.", min_length=1, max_length=MAX_IDS)],
    project_id: ProjectId = None,
) -> str:
    """Fetch whole records by the ids search returned (after search, before acting on a
    hit)."""
    project = tools.project(project_id)
    return "\n\n".join(f"{record_id}: {fetch(tools, project, record_id)}"
                       for record_id in ids)


def timeline(
    tools: ContextTools,
    event_id: Annotated[str, Field(
        description=f"An id from search: {TIMELINE_IDS}.", min_length=1)],
    before: Annotated[int, Field(description="Records before it.", ge=0, le=50)] = 5,
    after: Annotated[int, Field(description="Records after it.", ge=0, le=50)] = 5,
    project_id: ProjectId = None,
) -> str:
    """What happened before and after an event of a conversation session, or an
    observation of an agent session, in order (to understand a search hit in context)."""
    project = tools.project(project_id)
    kind, _colon, rest = event_id.partition(":")
    if kind == "observation":
        return _observation_timeline(tools, project, _number(rest, event_id), before, after)
    if kind != "event":
        raise ValidationError(f"invalid id {event_id!r}: expected {TIMELINE_IDS}")
    session_id, number = _halves(rest, event_id)
    sequence = _number(number, event_id)
    first = max(sequence - before, 1)
    events = tools.db.conversations.events(session_id, after_sequence=first - 1,
                                           limit=sequence - first + after + 1,
                                           project_id=project)
    lines = [f"Events {first} to {sequence + after} of session {session_id} "
             f"(> marks event {sequence}):"]
    lines += [(">" if event["sequence"] == sequence else " ") + render.event_text(event)
              for event in events]
    return "\n".join(lines)


def _observation_timeline(tools: ContextTools, project: str, observation_id: int,
                          before: int, after: int) -> str:
    rows = tools.db.observations.around(project, observation_id, before=before, after=after)
    session = next(row["session_id"] for row in rows if row["observation_id"] == observation_id)
    lines = [f"Observations of session {session} around observation:{observation_id} "
             "(> marks it):"]
    lines += [(">" if row["observation_id"] == observation_id else " ")
              + render.observation_text(row) for row in rows]
    return "\n".join(lines)


def brief_search(
    tools: ContextTools,
    query: Annotated[str, Field(
        description="Words in any form; \"a phrase\"; -word excluded; word* a prefix.",
        min_length=1)],
    kinds: Annotated[list[str] | None, Field(
        description="context, memory, event and/or observation. Default: all.",
        json_schema_extra={"items": {"enum": knowledge.SEARCH_KINDS, "type": "string"}})] = None,
    since: Annotated[str | None, Field(
        description="Only records since: ISO-8601 or an age (12h, 7d).")] = None,
    limit: Annotated[int, Field(ge=1, le=200)] = 10,
    project_id: ProjectId = None,
) -> str:
    """Search the project's context items, memories and conversation events: one line per
    hit (id, kind, score, time, snippet), best first. Start here to recall anything; then
    get (whole records) or timeline (an event's surroundings)."""
    return knowledge.search(tools, query, kinds=kinds, since=since, limit=limit,
                            project_id=project_id)


TOOLS: list[Declared] = [Declared(get, READ_ONLY), Declared(timeline, READ_ONLY)]
# The search of the default tool set: the same search with its everyday arguments only.
BRIEF_SEARCH = Declared(brief_search, READ_ONLY, name="search")
