"""The MCP server: ctxdb's tools with typed input schemas, served over stdio.

This module, ``coordination.py`` (the tools for tasks, messages, approval gates, command
runs and checkpoints) and ``continuity.py`` (the live sibling sessions) are the only ones that
import the ``mcp`` SDK (the optional extra ``ctxdb[mcp]``).
Every tool runs its synchronous :class:`~ctxdb.mcp.tools.ContextTools` method in a worker
thread, so the database work never blocks the protocol's event loop. A ctxdb error becomes
an MCP tool error (``isError: true``) carrying the error's message and code; anything else is
logged to stderr with its traceback by the SDK, and the model sees only that the tool failed.
Nothing but protocol messages is written to stdout.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from ctxdb import __version__
from ctxdb.domain.models import PRIORITY_ORDER, InstanceStatus, choices
from ctxdb.domain.vocabulary import MemoryType, Role, SearchKind
from ctxdb.errors import CtxdbError
from ctxdb.mcp.tools import ContextTools
from ctxdb.service import Ctxdb

ToolFunction = Callable[..., Awaitable[str]]

PRIORITIES = choices(PRIORITY_ORDER)
INSTANCE_STATUSES = choices(InstanceStatus)
MEMORY_TYPES = choices(MemoryType)
ROLES = choices(Role)
SEARCH_KINDS = choices(SearchKind)

INSTRUCTIONS = """\
ctxdb stores this project's context in a database so it survives /clear, compaction and \
crashes. Call get_context at the start of a task or after your context was cleared; store \
decisions, constraints and findings worth keeping with store_context (CRITICAL for what must \
always be loaded); find earlier items with search_context; before your context fills up, \
leave notes for your successor with record_handoff. Working with other agents: claim work \
with task_claim and finish it with task_complete or task_fail; read messages addressed to you \
with message_inbox and acknowledge them with message_ack; before a step a person must approve, \
call approval_request and wait for approval_status to say approved; save your progress with \
checkpoint_save and resume from checkpoint_latest."""

# Argument types: the descriptions and constraints are the input schema the model sees. The
# allowed priorities and statuses are advertised as enums but checked by ctxdb, whose errors
# say clearly what is wrong (and which also accepts lower case).
ProjectId = Annotated[str | None, Field(
    description="The project id (proj_…). Default: the project the server was started with "
    "(ctxdb mcp --project).")]
InstanceId = Annotated[str, Field(description="The agent instance id (inst_…).")]
PhaseId = Annotated[int | None, Field(description="A phase id of the project.", ge=0)]
Priority = Annotated[str, Field(
    description="CRITICAL (always loaded), HIGH, MEDIUM or LOW (loaded while the budget "
    "lasts).", json_schema_extra={"enum": PRIORITIES})]
OptionalPriority = Annotated[str | None, Field(
    description="Only items of this priority.",
    json_schema_extra={"anyOf": [{"enum": PRIORITIES, "type": "string"}, {"type": "null"}]})]

Namespace = Annotated[str, Field(
    description="A namespace path: segments of letters, digits, '_', '.' or '-' separated "
    "by ':', such as user:prefs or app:config:x.", min_length=1)]
MemoryKey = Annotated[str, Field(description="The memory's key within its namespace.",
                                 min_length=1)]
SessionId = Annotated[str, Field(description="The conversation session id (sess_…).",
                                 min_length=1)]


def _as_tool_error(exc: CtxdbError) -> ToolError:
    return ToolError(f"{exc.message} [{exc.code}]")


async def _in_thread(function: Callable[..., str], **arguments: Any) -> str:
    """Run one synchronous tool function in a worker thread; ctxdb errors become tool errors."""
    try:
        return await anyio.to_thread.run_sync(functools.partial(function, **arguments))
    except CtxdbError as exc:
        raise _as_tool_error(exc) from None


def build_server(tools: ContextTools) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer(
        "ctxdb", title="ctxdb context store", version=__version__, instructions=INSTRUCTIONS,
        log_level="WARNING")
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    writes = ToolAnnotations(read_only_hint=False, destructive_hint=False,
                             idempotent_hint=False, open_world_hint=False)

    def tool(annotations: ToolAnnotations) -> Callable[[ToolFunction], ToolFunction]:
        """Register a tool under its function's name, described by its docstring."""
        def register(function: ToolFunction) -> ToolFunction:
            server.add_tool(function, name=function.__name__,
                            description=" ".join((inspect.getdoc(function) or "").split()),
                            annotations=annotations,
                            structured_output=False)  # plain text for the model
            return function
        return register

    @tool(read_only)
    async def get_context(
        project_id: ProjectId = None,
        budget_tokens: Annotated[int | None, Field(
            description="Token budget of the pack. Default: the configured context window "
            "times the pack budget fraction.", ge=0)] = None,
        phase_id: Annotated[int | None, Field(
            description="Rank this phase's items first. Default: the current phase.",
            ge=0)] = None,
    ) -> str:
        """The project's context for you to work from: the latest handoff first (when there
        is one), then every CRITICAL item and as many HIGH, MEDIUM and LOW items as fit the
        token budget, each as "[PRIORITY] #sequence (content type): content"."""
        return await _in_thread(tools.get_context, project_id=project_id,
                                budget_tokens=budget_tokens, phase_id=phase_id)

    @tool(writes)
    async def store_context(
        content: Annotated[dict[str, Any] | str, Field(
            description="The context: a JSON object (e.g. {\"decision\": …, \"why\": …}) or "
            "plain text.")],
        priority: Priority = "HIGH",
        content_type: Annotated[str, Field(
            description="What kind of content: decision, constraint, note, code, todo, …",
            min_length=1)] = "note",
        phase_id: PhaseId = None,
        created_by: Annotated[str | None, Field(
            description="Your instance id, if you have one (must belong to the project).")
        ] = None,
        project_id: ProjectId = None,
    ) -> str:
        """Store one context item so that it is loaded back after /clear, compaction or a
        crash, by you or other agents of the project. Returns the new item's id."""
        return await _in_thread(tools.store_context, content=content, priority=priority,
                                content_type=content_type, phase_id=phase_id,
                                created_by=created_by, project_id=project_id)

    @tool(read_only)
    async def search_context(
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
        return await _in_thread(tools.search_context, query=query, priority=priority,
                                content_type=content_type, phase_id=phase_id, limit=limit,
                                full_content=full_content, project_id=project_id)

    @tool(read_only)
    async def search(
        query: Annotated[str, Field(
            description="Words to find, any form or case (records with all of them first, "
            "then with some; identifiers match by their words); \"a phrase\" in order; "
            "-word excluded; 'or' between alternatives; word* for words starting so.",
            min_length=1)],
        kinds: Annotated[list[str] | None, Field(
            description="Which records: context, memory and/or event. Default: all.",
            json_schema_extra={"items": {"enum": SEARCH_KINDS,
                                         "type": "string"}})] = None,
        content_type: Annotated[str | None, Field(
            description="Only this type: an item's content type, a memory's type or an "
            "event's role.")] = None,
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
        """Full-text search over the project's context items, memories and conversation
        events: the best matches first, each with where to find it and a snippet."""
        return await _in_thread(tools.search, query=query, kinds=kinds,
                                content_type=content_type, priority=priority,
                                namespace=namespace, since=since, until=until, limit=limit,
                                raw=raw, project_id=project_id)

    @tool(writes)
    async def record_handoff(
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
        return await _in_thread(tools.record_handoff, instance_id=instance_id,
                                summary=summary, next_steps=next_steps,
                                working_set=working_set, project_id=project_id)

    @tool(writes)
    async def heartbeat(
        instance_id: InstanceId,
        phase_id: Annotated[int | None, Field(
            description="The phase the instance is now working on.", ge=0)] = None,
        project_id: ProjectId = None,
    ) -> str:
        """Tell ctxdb this agent instance is alive (instances without heartbeats are marked
        crashed after a while); a crashed instance that beats again is active again."""
        return await _in_thread(tools.heartbeat, instance_id=instance_id, phase_id=phase_id,
                                project_id=project_id)

    @tool(read_only)
    async def list_instances(
        project_id: ProjectId = None,
        status: Annotated[str | None, Field(
            description="Only instances with this status.",
            json_schema_extra={"anyOf": [{"enum": INSTANCE_STATUSES, "type": "string"},
                                         {"type": "null"}]})] = None,
    ) -> str:
        """The project's agent instances: status, client, generation, token usage and last
        heartbeat, oldest first."""
        return await _in_thread(tools.list_instances, project_id=project_id, status=status)

    @tool(read_only)
    async def memory_get(
        namespace: Namespace,
        key: MemoryKey,
        version: Annotated[int | None, Field(
            description="A version from the memory's history. Default: the live value.",
            ge=1)] = None,
        project_id: ProjectId = None,
    ) -> str:
        """Read a memory (a JSON value kept under a namespace path and key) with its version
        number; pass that version as expected_version to memory_put to update it safely."""
        return await _in_thread(tools.memory_get, namespace=namespace, key=key,
                                version=version, project_id=project_id)

    @tool(writes)
    async def memory_put(
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
        return await _in_thread(tools.memory_put, namespace=namespace, key=key, value=value,
                                memory_type=memory_type, expected_version=expected_version,
                                ttl_seconds=ttl_seconds, project_id=project_id)

    @tool(read_only)
    async def memory_list(
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
        return await _in_thread(tools.memory_list, prefix=prefix, limit=limit,
                                after_namespace=after_namespace, after_key=after_key,
                                project_id=project_id)

    @tool(writes)
    async def session_append(
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
        return await _in_thread(tools.session_append, session_id=session_id, role=role,
                                content=content, metadata=metadata,
                                idempotency_key=idempotency_key, project_id=project_id)

    @tool(read_only)
    async def session_events(
        session_id: SessionId,
        after_sequence: Annotated[int, Field(
            description="Only events numbered after this one (the last of the previous "
            "page). Default: from the first.", ge=0)] = 0,
        limit: Annotated[int, Field(description="Most events to return.", ge=1,
                                    le=200)] = 50,
        project_id: ProjectId = None,
    ) -> str:
        """Read a conversation session's events in order, a page at a time."""
        return await _in_thread(tools.session_events, session_id=session_id,
                                after_sequence=after_sequence, limit=limit,
                                project_id=project_id)

    from ctxdb.mcp import coordination  # it imports this module's argument types

    coordination.register(tool, read_only, writes, tools)
    from ctxdb.mcp import continuity

    continuity.register(tool, read_only, tools)
    return server


def serve(db: Ctxdb, default_project: str | None = None) -> None:
    """Serve the tools over stdin/stdout until the client closes stdin."""
    server = build_server(ContextTools(db, default_project))
    anyio.run(server.run_stdio_async)
