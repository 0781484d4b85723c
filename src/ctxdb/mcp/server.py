"""The MCP server: ctxdb's tools with typed input schemas, served over stdio.

The tools are module-level functions listed in ``TOOLS`` by ``knowledge.py`` (context, search,
handoffs, instances, memories, conversation events), ``coordination.py`` (tasks, messages,
approval gates, command runs, checkpoints) and ``continuity.py`` (the live sibling sessions);
they, ``toolbox.py`` and this module are the only ones that import the ``mcp`` SDK (the
optional extra ``ctxdb[mcp]``). Every tool runs its synchronous
:class:`~ctxdb.mcp.tools.ContextTools` method in a worker thread, so the database work never
blocks the protocol's event loop. A ctxdb error becomes
an MCP tool error (``isError: true``) carrying the error's message and code; anything else is
logged to stderr with its traceback by the SDK, and the model sees only that the tool failed.
Nothing but protocol messages is written to stdout.
"""

from __future__ import annotations

import inspect
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

from ctxdb import __version__
from ctxdb.mcp import continuity, coordination, knowledge
from ctxdb.mcp.toolbox import Tool, ToolFunction
from ctxdb.mcp.tools import ContextTools
from ctxdb.service import Ctxdb

# Every tool, in the order a client lists them.
TOOLS: list[Tool] = [*knowledge.TOOLS, *coordination.TOOLS, *continuity.TOOLS]

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


def bound(function: ToolFunction, tools: ContextTools) -> ToolFunction:
    """The tool as the server calls it: ``function`` with its first argument, ``tools``, given.

    Its signature is the function's without that parameter, with the annotations evaluated,
    so the SDK builds the input schema from the tool's own arguments only.
    """
    signature = inspect.signature(function, eval_str=True)

    async def call(**arguments: Any) -> str:
        return await function(tools, **arguments)

    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=list(signature.parameters.values())[1:])
    call.__name__ = function.__name__
    call.__doc__ = function.__doc__
    return call


def build_server(tools: ContextTools) -> MCPServer[Any]:
    """The server with every tool of :data:`TOOLS`, named after its function and described by
    its docstring."""
    server: MCPServer[Any] = MCPServer(
        "ctxdb", title="ctxdb context store", version=__version__, instructions=INSTRUCTIONS,
        log_level="WARNING")
    for function, hints in TOOLS:
        server.add_tool(bound(function, tools), name=function.__name__,
                        description=" ".join((inspect.getdoc(function) or "").split()),
                        annotations=hints,
                        structured_output=False)  # plain text for the model
    return server


def serve(db: Ctxdb, default_project: str | None = None) -> None:
    """Serve the tools over stdin/stdout until the client closes stdin."""
    server = build_server(ContextTools(db, default_project))
    anyio.run(server.run_stdio_async)
