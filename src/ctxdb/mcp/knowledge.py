"""The MCP tools for a project's knowledge: context items and their search, handoffs,
instances and heartbeats, memories, and the events of conversation sessions.

Each is a module-level function of the server's :class:`~ctxdb.mcp.tools.ContextTools` and its
typed arguments (the input schema the model sees), run in a worker thread; :data:`TOOLS` lists
them for ``server.build_server``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from ctxdb.domain.models import DEFAULT_CONTENT_TYPE, InstanceStatus, choices
from ctxdb.domain.pack_formats import pack_as_text, pack_payload
from ctxdb.domain.vocabulary import MemoryType, Role, SearchKind
from ctxdb.mcp import render
from ctxdb.mcp.toolbox import (
    READ_ONLY,
    WRITES,
    Declared,
    InstanceId,
    MemoryKey,
    Namespace,
    OptionalPriority,
    PhaseId,
    Priority,
    ProjectId,
    SessionId,
)
from ctxdb.mcp.tools import ContextTools

INSTANCE_STATUSES = choices(InstanceStatus)
MEMORY_TYPES = choices(MemoryType)
ROLES = choices(Role)
SEARCH_KINDS = choices(SearchKind)


def get_context(
    tools: ContextTools,
    project_id: ProjectId = None,
    budget_tokens: Annotated[int | None, Field(
        description="Token budget of the pack. Default: the configured context window "
        "times the pack budget fraction.", ge=0)] = None,
    phase_id: Annotated[int | None, Field(
        description="Rank this phase's items first. Default: the current phase.",
        ge=0)] = None,
) -> str:
    """The project's context for you to work from (call it at the start of a task or after
    /clear): the latest handoff first (when there is one), then every CRITICAL item and as
    many HIGH, MEDIUM and LOW items as fit the token budget, each as "[PRIORITY] #sequence
    (content type): content"."""
    project = tools.project(project_id)
    settings = tools.db.settings
    budget = budget_tokens if budget_tokens is not None else int(
        settings.context_window * settings.pack_budget_fraction)
    pack = tools.db.context.pack(project, budget, phase_id)
    handoff = tools.db.tokens.latest_handoff(project_id=project)
    text = pack_as_text(pack_payload(project, pack))
    return text if handoff is None else f"{render.handoff_text(handoff)}\n\n{text}"


def store_context(
    tools: ContextTools,
    content: Annotated[dict[str, Any] | str, Field(
        description="The context: a JSON object (e.g. {\"decision\": …, \"why\": …}) or "
        "plain text.")],
    priority: Priority = "HIGH",
    content_type: Annotated[str, Field(
        description="What kind of content: decision, constraint, note, code, todo, …",
        min_length=1)] = DEFAULT_CONTENT_TYPE,
    phase_id: PhaseId = None,
    created_by: Annotated[str | None, Field(
        description="Your instance id, if you have one (must belong to the project).")
    ] = None,
    project_id: ProjectId = None,
) -> str:
    """Store a decision, constraint or finding worth keeping: it is loaded back after
    /clear, compaction or a crash, for you and the project's other agents. Returns its id."""
    item = tools.db.context.store(tools.project(project_id), content, priority, content_type,
                                 phase_id, created_by=created_by)
    return render.stored_text(item)


def search_context(
    tools: ContextTools,
    query: Annotated[str | None, Field(
        description="Words to find (all of them, any case; \"a phrase\", -excluded, "
        "or, prefix*). Omit to list items by the other filters.")] = None,
    priority: OptionalPriority = None,
    content_type: Annotated[str | None, Field(
        description="Only items of this content type.")] = None,
    phase_id: Annotated[int | None, Field(
        description="Only items stored in this phase.", ge=0)] = None,
    limit: Annotated[int, Field(description="Most items to return.", ge=1, le=200)] = 20,
    full_content: Annotated[bool, Field(
        description="Show each item's whole content instead of a preview.")] = False,
    project_id: ProjectId = None,
) -> str:
    """Find or list the project's live context items, newest first, filtered by words
    (looked up in the full-text index), priority, content type and phase. To search
    memories and conversation events too, ranked by relevance, use search."""
    project = tools.project(project_id)
    result = tools.db.context.search(project, query, priority=priority,
                                    content_type=content_type, phase_id=phase_id,
                                    limit=limit)
    return render.search_text(project, query, result, full_content)


def search(
    tools: ContextTools,
    query: Annotated[str, Field(
        description="Words to find, any form or case (records with all of them first, "
        "then with some; identifiers match by their words); \"a phrase\" in order; "
        "-word excluded; 'or' between alternatives; word* for words starting so.",
        min_length=1)],
    kinds: Annotated[list[str] | None, Field(
        description="Which records: context, memory, event and/or observation. Default: all.",
        json_schema_extra={"items": {"enum": SEARCH_KINDS,
                                     "type": "string"}})] = None,
    content_type: Annotated[str | None, Field(
        description="Only this type: an item's content type, a memory's type, an "
        "event's role or an observation's kind.")] = None,
    priority: OptionalPriority = None,
    namespace: Annotated[str | None, Field(
        description="Only memories in this namespace path or below it.")] = None,
    since: Annotated[str | None, Field(
        description="Only records written at or after this time: ISO-8601 or an age "
        "such as 12h or 7d.")] = None,
    until: Annotated[str | None, Field(
        description="Only records written before this time.")] = None,
    limit: Annotated[int, Field(description="Most hits to return.", ge=1, le=200)] = 10,
    raw: Annotated[bool, Field(
        description="The query is in the engine's own syntax (SQLite FTS5 or "
        "PostgreSQL to_tsquery).")] = False,
    project_id: ProjectId = None,
) -> str:
    """Full-text search over the project's context items, memories, conversation events
    and agent-session observations: the best matches first, each with where to find it and
    a snippet."""
    project = tools.project(project_id)
    hits = tools.db.search.search(project, query, kinds=kinds or tuple(SearchKind),
                                 content_type=content_type, priority=priority,
                                 namespace=namespace, since=since, until=until,
                                 limit=limit, raw=raw)
    return render.search_hits_text(project, query, hits, limit)


def record_handoff(
    tools: ContextTools,
    instance_id: InstanceId,
    summary: Annotated[str, Field(
        description="What was done and where things stand.")] = "",
    next_steps: Annotated[list[str] | None, Field(
        description="What to do next, in order.")] = None,
    working_set: Annotated[dict[str, Any] | None, Field(
        description="What the work touches, e.g. {\"files\": [\"src/app.py\"]}.")] = None,
    project_id: ProjectId = None,
) -> str:
    """Leave a handoff for whoever continues this instance's work (you after /clear or
    compaction, or another agent); get_context shows the latest one first. Your token
    usage is not changed. Give at least a summary or next steps."""
    handoff = tools.db.tokens.record_handoff(instance_id, summary=summary,
                                            next_steps=next_steps, working_set=working_set,
                                            project_id=tools.scope(project_id))
    return render.handoff_recorded_text(handoff)


def heartbeat(
    tools: ContextTools,
    instance_id: InstanceId,
    phase_id: Annotated[int | None, Field(
        description="The phase the instance is now working on.", ge=0)] = None,
    project_id: ProjectId = None,
) -> str:
    """Tell ctxdb this agent instance is alive (instances without heartbeats are marked
    crashed after a while); a crashed instance that beats again is active again."""
    return render.heartbeat_text(tools.db.instances.heartbeat(
        instance_id, phase_id, project_id=tools.scope(project_id)))


def list_instances(
    tools: ContextTools,
    project_id: ProjectId = None,
    status: Annotated[str | None, Field(
        description="Only instances with this status.",
        json_schema_extra={"anyOf": [{"enum": INSTANCE_STATUSES, "type": "string"},
                                     {"type": "null"}]})] = None,
) -> str:
    """The project's agent instances: status, client, generation, token usage and last
    heartbeat, oldest first."""
    project = tools.project(project_id)
    return render.instances_text(project, tools.db.instances.list(project, status), status)


def memory_get(
    tools: ContextTools,
    namespace: Namespace,
    key: MemoryKey,
    version: Annotated[int | None, Field(
        description="A version from the memory's history. Default: the live value.",
        ge=1)] = None,
    project_id: ProjectId = None,
) -> str:
    """Read a memory (a JSON value kept under a namespace path and key) with its version
    number; pass that version as expected_version to memory_put to update it safely."""
    memory = tools.db.memories.get(tools.project(project_id), namespace, key, version)
    if version is None:
        return render.memory_text(memory)
    return render.memory_version_text(memory)


def memory_put(
    tools: ContextTools,
    namespace: Namespace,
    key: MemoryKey,
    value: Annotated[Any, Field(description="The value: any JSON (object, list, text, "
                                "number, true/false or null).")],
    memory_type: Annotated[str | None, Field(
        description="semantic (facts), episodic (events; expire after 90 days by "
        "default) or procedural (how-tos). Default: the memory's current type, semantic "
        "for a new one.",
        json_schema_extra={"anyOf": [{"enum": MEMORY_TYPES, "type": "string"},
                                     {"type": "null"}]})] = None,
    expected_version: Annotated[int | None, Field(
        description="Write only if the memory is still at this version (0: only if it "
        "does not exist); a stale version fails and names the current one. Omit to "
        "overwrite unconditionally.", ge=0)] = None,
    ttl_seconds: Annotated[int | None, Field(
        description="Seconds until the memory expires. Default: the type's policy.",
        ge=1)] = None,
    project_id: ProjectId = None,
) -> str:
    """Write a memory as a new version (earlier versions stay in its history). Use
    expected_version for read-modify-write, so that a concurrent writer is never
    silently overwritten."""
    memory = tools.db.memories.put(tools.project(project_id), namespace, key, value,
                                  memory_type=memory_type,
                                  expected_version=expected_version,
                                  ttl_seconds=ttl_seconds)
    return render.memory_stored_text(memory)


def memory_list(
    tools: ContextTools,
    prefix: Annotated[str, Field(
        description="A namespace path: lists memories in it and below it ('user' finds "
        "user and user:prefs). Default: all.")] = "",
    limit: Annotated[int, Field(description="Most memories to return.", ge=1,
                                le=200)] = 50,
    after_namespace: Annotated[str | None, Field(
        description="Continue after this memory's namespace (from the previous page)."
    )] = None,
    after_key: Annotated[str | None, Field(
        description="Continue after this memory's key (from the previous page).")] = None,
    project_id: ProjectId = None,
) -> str:
    """List the project's live memories in (namespace, key) order, with their versions
    and a preview of each value."""
    project = tools.project(project_id)
    after = None
    if after_namespace is not None or after_key is not None:
        after = (after_namespace or "", after_key or "")
    memories = tools.db.memories.list(project, prefix, limit=limit, after=after)
    return render.memories_text(project, prefix, memories, limit)


def session_append(
    tools: ContextTools,
    session_id: SessionId,
    role: Annotated[str, Field(description="Who speaks: user, assistant, system or tool.",
                               json_schema_extra={"enum": ROLES})],
    content: Annotated[Any, Field(description="The message: any JSON (text, object, "
                                  "list, number, true/false or null).")],
    metadata: Annotated[dict[str, Any] | None, Field(
        description="Metadata of the event (a JSON object).")] = None,
    idempotency_key: Annotated[str | None, Field(
        description="A key of your choice: appending again with it returns the first "
        "event instead of adding another (safe retries).", min_length=1)] = None,
    project_id: ProjectId = None,
) -> str:
    """Append an event (a message) to an open conversation session; it gets the next
    number of the session's event log."""
    event = tools.db.conversations.append(session_id, role, content, metadata=metadata,
                                         idempotency_key=idempotency_key,
                                         project_id=tools.scope(project_id))
    return render.event_appended_text(event)


def session_events(
    tools: ContextTools,
    session_id: SessionId,
    after_sequence: Annotated[int, Field(
        description="Only events numbered after this one (the last of the previous "
        "page). Default: from the first.", ge=0)] = 0,
    limit: Annotated[int, Field(description="Most events to return.", ge=1,
                                le=200)] = 50,
    project_id: ProjectId = None,
) -> str:
    """Read a conversation session's events in order, a page at a time."""
    events = tools.db.conversations.events(session_id, after_sequence=after_sequence,
                                          limit=limit, project_id=tools.scope(project_id))
    return render.session_events_text(session_id, events, after_sequence, limit)


TOOLS: list[Declared] = [
    Declared(get_context, READ_ONLY),
    Declared(store_context, WRITES),
    Declared(search_context, READ_ONLY),
    Declared(search, READ_ONLY),
    Declared(record_handoff, WRITES),
    Declared(heartbeat, WRITES),
    Declared(list_instances, READ_ONLY),
    Declared(memory_get, READ_ONLY),
    Declared(memory_put, WRITES),
    Declared(memory_list, READ_ONLY),
    Declared(session_append, WRITES),
    Declared(session_events, READ_ONLY),
]
