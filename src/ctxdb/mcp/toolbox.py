"""What every MCP tool module shares: the argument types of the input schemas the model sees,
the two kinds of tool (read-only or writing), and the call of a tool in a worker thread.

Each tool is a module-level ``async def`` whose first parameter is the server's
:class:`~ctxdb.mcp.tools.ContextTools` and whose other parameters are the tool's arguments;
each tool module lists its tools in ``TOOLS``, which ``server.build_server`` registers.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from ctxdb.domain.models import PRIORITY_ORDER, choices
from ctxdb.errors import CtxdbError

ToolFunction = Callable[..., Awaitable[str]]
# A tool and how it acts: only reads, or writes (never destructive, never outside ctxdb).
Tool = tuple[ToolFunction, ToolAnnotations]
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                         open_world_hint=False)

PRIORITIES = choices(PRIORITY_ORDER)

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


async def in_thread(function: Callable[..., str], **arguments: Any) -> str:
    """Run one synchronous tool function in a worker thread; ctxdb errors become tool errors."""
    try:
        return await anyio.to_thread.run_sync(functools.partial(function, **arguments))
    except CtxdbError as exc:
        raise _as_tool_error(exc) from None
