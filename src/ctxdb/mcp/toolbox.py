"""What every MCP tool module shares: the argument types of the input schemas the model sees,
the two kinds of tool (read-only or writing), and the one declaration helper that turns a
tool function into the SDK's tool, run in a worker thread.

Each tool is a module-level synchronous function whose first parameter is the server's
:class:`~ctxdb.mcp.tools.ContextTools` and whose other parameters are the tool's typed
arguments (the input schema), its docstring the description; each tool module lists its
tools in ``TOOLS`` as :class:`Declared` entries, which :func:`sdk_tool` turns into tools.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool as SdkTool
from mcp.types import ToolAnnotations
from pydantic import Field

from ctxdb.domain.models import PRIORITY_ORDER, choices
from ctxdb.errors import CtxdbError
from ctxdb.mcp.tools import ContextTools

log = logging.getLogger(__name__)

ToolFunction = Callable[..., str]
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                         open_world_hint=False)


@dataclass(frozen=True)
class Declared:
    """A tool as declared: its function, how it acts (only reads, or writes: never
    destructive, never outside ctxdb) and, when it differs from the function's, its name."""

    function: ToolFunction
    hints: ToolAnnotations
    name: str | None = None
    waits: bool = False  # may wait long (for a person): runs beside the other tools

    @property
    def tool_name(self) -> str:
        return self.name or self.function.__name__

    @property
    def writes(self) -> bool:
        return not self.hints.read_only_hint

PRIORITIES = choices(PRIORITY_ORDER)

# Argument types: the descriptions and constraints are the input schema the model sees. The
# allowed priorities and statuses are advertised as enums but checked by ctxdb, whose errors
# say clearly what is wrong (and which also accepts lower case).
ProjectId = Annotated[str | None, Field(
    description="The project id (proj_…). Default: the server's project.")]
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
    log.debug("%s answered as a tool error [%s]", type(exc).__name__, exc.code, exc_info=exc)
    return ToolError(f"{exc.message} [{exc.code}]")


async def in_thread(function: Callable[..., str], **arguments: Any) -> str:
    """Run one synchronous tool function in a worker thread; ctxdb errors become tool errors."""
    return await _in_thread(function, arguments)


async def _in_thread(function: Callable[..., str], arguments: dict[str, Any],
                     limiter: anyio.CapacityLimiter | None = None) -> str:
    try:
        return await anyio.to_thread.run_sync(functools.partial(function, **arguments),
                                              limiter=limiter)
    except CtxdbError as exc:
        raise _as_tool_error(exc) from None


# Tools that wait (approval_status with wait_seconds) sleep in their thread for up to a
# minute. In the shared pool of worker threads (40) enough of them would leave none for any
# other tool; so each wait gets a thread of its own, beside that pool, and at most
# MAX_WAITS wait at once in a process: one more is refused at once, saying so.
MAX_WAITS = 32
_WAIT_SLOTS = threading.BoundedSemaphore(MAX_WAITS)


async def in_wait_thread(function: Callable[..., str], **arguments: Any) -> str:
    """Run a tool that may wait in a thread outside the shared pool (see MAX_WAITS)."""
    if not _WAIT_SLOTS.acquire(blocking=False):
        raise ToolError(f"too many waiting calls at once (the limit is {MAX_WAITS}): call "
                        "again later, or without waiting (wait_seconds=0) [too_many_waits]")
    try:
        return await _in_thread(function, arguments, anyio.CapacityLimiter(1))
    finally:
        _WAIT_SLOTS.release()


# Where a tool finds the ContextTools of its call: one for the life of a stdio server, the
# request's own over HTTP (``ctxdb.http.mcp_endpoint``).
ToolsSource = Callable[[], ContextTools]


def sdk_tool(declared: Declared, tools: ToolsSource) -> SdkTool:
    """The SDK's tool of ``declared``, called with ``tools()``: its input schema is built from
    the function's arguments after that one (made compact, see :func:`compact_schema`), its
    description is the docstring on one line, and each call runs in a worker thread."""
    function = declared.function
    signature = inspect.signature(function, eval_str=True)

    run = in_wait_thread if declared.waits else in_thread

    async def call(**arguments: Any) -> str:
        return await run(function, tools=tools(), **arguments)

    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=list(signature.parameters.values())[1:])
    tool = SdkTool.from_function(
        call, name=declared.tool_name, annotations=declared.hints,
        description=" ".join((inspect.getdoc(function) or "").split()),
        structured_output=False)  # plain text for the model
    tool.parameters = compact_schema(tool.parameters)
    return tool


def compact_schema(schema: Any) -> Any:
    """The input schema without what costs the model tokens and tells it nothing: the titles
    pydantic derives from the argument names, and the ``null`` alternative and ``null``
    default of optional arguments (leaving one out is how a model says "none"; the
    arguments are still validated by the full model, which accepts ``null``)."""
    if isinstance(schema, list):
        return [compact_schema(entry) for entry in schema]
    if not isinstance(schema, dict):
        return schema
    compact = {key: compact_schema(value) if key != "properties" else
               {name: compact_schema(sub) for name, sub in value.items()}
               for key, value in schema.items()
               if not (key == "title" and isinstance(value, str))
               and not (key == "default" and value is None)}
    choices_ = compact.get("anyOf")
    if isinstance(choices_, list) and len(choices_) == 2 and {"type": "null"} in choices_:
        compact.pop("anyOf")
        # What the argument declared itself (an enum of an array's items) wins over the
        # plain alternative pydantic derived from its type.
        for key, value in next(entry for entry in choices_ if entry != {"type": "null"}).items():
            compact.setdefault(key, value)
    return compact
