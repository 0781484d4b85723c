"""The MCP server: ctxdb's tools with typed input schemas, over stdio (or HTTP, see
:mod:`ctxdb.mcp.http`).

The tools are module-level functions declared in ``TOOLS`` by ``knowledge.py`` (context,
search, handoffs, instances, memories, conversation events), ``coordination.py`` (tasks,
messages, approval gates, command runs, checkpoints), ``continuity.py`` (the live sibling
sessions) and ``details.py`` (whole records by id, an event's timeline); they, ``toolbox.py``
and the modules that serve them are the only ones that import the ``mcp`` SDK (the optional
extra ``ctxdb[mcp]``). Every tool runs in a worker thread, so the database work never blocks
the protocol's event loop. A ctxdb error becomes an MCP tool error (``isError: true``)
carrying the error's message and code; anything else is logged to stderr with its traceback
by the SDK, and the model sees only that the tool failed. Nothing but protocol messages is
written to stdout.

Two tool sets (``ctxdb mcp --tools``). ``default`` is small, because every session pays for
the definitions of the tools it is offered: search → timeline → get (claude-mem's shape:
compact hits with ids, then whole records), the pack, storing context, and ``call``, which
runs any other tool of the full set by name (and describes it on request), so that nothing
is out of reach. ``all`` lists every tool by itself.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool as SdkTool
from pydantic import Field

from ctxdb import __version__
from ctxdb.mcp import continuity, coordination, details, knowledge
from ctxdb.mcp.stdio import run_stdio
from ctxdb.mcp.toolbox import (
    READ_ONLY,
    WRITES,
    Declared,
    ToolsSource,
    compact_schema,
    sdk_tool,
)
from ctxdb.mcp.tools import ContextTools
from ctxdb.service import Ctxdb

log = logging.getLogger(__name__)

# Every tool of the full set, in the order a client lists them.
TOOLS: list[Declared] = [*knowledge.TOOLS, *coordination.TOOLS, *continuity.TOOLS,
                         *details.TOOLS]
# The default set, before ``call``.
DEFAULT: list[Declared] = [details.BRIEF_SEARCH, *details.TOOLS, knowledge.TOOLS[0],
                           knowledge.TOOLS[1]]

INSTRUCTIONS = """\
ctxdb stores this project's context in a database so it survives /clear, compaction and \
crashes. Call get_context at the start of a task or after your context was cleared; store \
decisions, constraints and findings worth keeping with store_context (CRITICAL for what must \
always be loaded); recall earlier work with search, then get (whole records by id) or \
timeline (an event's surroundings). Memories, tasks, messages, approval gates, command runs, \
checkpoints and handoffs have their own tools (with the default tool set: through call)."""


def call_tool(full: dict[str, SdkTool], shown: set[str]) -> SdkTool:
    """``call``: run (or describe) a tool of ``full`` that the default set does not show."""
    # The full search too: the default set shows it with its everyday arguments only.
    others = [name for name in full if name not in shown or name == "search"]

    async def call(
        context: Context,
        tool: Annotated[str, Field(description="The tool's name (search: with all its "
                                   "filters).")],
        arguments: Annotated[dict[str, Any] | None, Field(
            description="Its arguments (describe=true lists them).")] = None,
        describe: Annotated[bool, Field(
            description="Return the tool's description and input schema instead.")] = False,
    ) -> str:
        target = full.get(tool) if tool in others else None
        if target is None:
            raise ToolError(f"unknown tool {tool!r}: expected one of {', '.join(others)}")
        if describe:
            return json.dumps({"name": tool, "description": target.description,
                               "input_schema": target.parameters}, ensure_ascii=False)
        result: str = await target.run(arguments or {}, context)
        return result

    writes = any(not (full[name].annotations or READ_ONLY).read_only_hint for name in others)
    tool = SdkTool.from_function(
        call, name="call", annotations=WRITES if writes else READ_ONLY,
        description="Run another ctxdb tool by name: memories, tasks, messages, approvals, "
        "command runs, checkpoints, handoffs, instances, session events. Not sure of its "
        "arguments? Call with describe=true first.", structured_output=False)
    tool.parameters = compact_schema(tool.parameters)
    tool.parameters["properties"]["tool"]["enum"] = others
    return tool


def tool_set(tools: ToolsSource, which: str = "default", *,
             writes: bool = True) -> list[SdkTool]:
    """The tools a server offers: ``which`` set, without the writing ones unless ``writes``."""
    allowed = [declared for declared in TOOLS if writes or not declared.writes]
    full = {declared.tool_name: sdk_tool(declared, tools) for declared in allowed}
    if which == "all":
        return list(full.values())
    shown = [sdk_tool(declared, tools) for declared in DEFAULT
             if writes or not declared.writes]
    return [*shown, call_tool(full, {tool.name for tool in shown})]


def build_server(tools: ToolsSource, which: str = "default", *,
                 writes: bool = True) -> MCPServer[Any]:
    """The server with the tools of :func:`tool_set`."""
    return MCPServer("ctxdb", title="ctxdb context store", version=__version__,
                     instructions=INSTRUCTIONS, log_level="WARNING",
                     tools=tool_set(tools, which, writes=writes))


def serve(db: Ctxdb, default_project: str | None = None, no_project_hint: str = "", *,
          which: str = "default") -> None:
    """Serve the tools over stdin/stdout until the client closes stdin."""
    tools = ContextTools(db, default_project, no_project_hint)
    server = build_server(lambda: tools, which)
    log.info("MCP server on stdio: %s tools, default project %s", which,
             default_project or "none")
    anyio.run(run_stdio, server)
    log.info("MCP client closed stdin: server stopped")
