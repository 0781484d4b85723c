"""``ctxdb mcp`` over stdin/stdout: the SDK's stdio transport, with every line the client
sends checked first (:mod:`ctxdb.mcp.wire`).

The SDK drops a malformed request without answering it, so its client would wait forever;
here such a line is answered with its JSON-RPC error through the SDK's own outgoing stream
(so that answers never interleave on stdout) and never reaches the SDK, while every other
line goes on unchanged.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any, cast

import anyio
from anyio.abc import ObjectSendStream
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import ErrorData, JSONRPCError

from ctxdb.mcp.wire import refusal

log = logging.getLogger(__name__)


class CheckedLines:
    """The client's lines as the SDK's transport reads them (an async iterator), with the
    lines it would drop answered instead of passed on."""

    def __init__(self, source: AsyncIterator[str]) -> None:
        self.source = source
        self.replies: ObjectSendStream[SessionMessage] | None = None
        self.ready = anyio.Event()

    def answer_through(self, replies: ObjectSendStream[SessionMessage]) -> None:
        self.replies = replies
        self.ready.set()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        async for line in self.source:
            refused = refusal(line)
            if refused is None:
                yield line
            elif refused.answered:
                await self.ready.wait()
                assert self.replies is not None
                reply = JSONRPCError(jsonrpc="2.0", id=refused.request_id,
                                     error=ErrorData(code=refused.code, message=refused.message))
                with anyio.CancelScope(shield=True):
                    await self.replies.send(SessionMessage(reply))
            else:
                log.warning("ignored a notification: %s", refused.message)


async def run_stdio(server: MCPServer[Any], stdin: AsyncIterator[str] | None = None,
                    stdout: Any = None) -> None:
    """Serve ``server`` over stdin/stdout until the client closes stdin. ``stdin`` (lines)
    and ``stdout`` (an object with async ``write`` and ``flush``) replace the process's, for
    a client in the same process (the tests)."""
    if stdin is None:
        stdin = cast(AsyncIterator[str], anyio.wrap_file(
            io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")))
    lines = CheckedLines(stdin)
    # The SDK iterates whatever it is given as stdin line by line; CheckedLines is that.
    async with stdio_server(stdin=cast(Any, lines), stdout=stdout) as (read_stream,
                                                                      write_stream):
        lines.answer_through(write_stream)
        # MCPServer.run_stdio_async opens its own transport, with no way to give it this
        # stdin, so this is its body: the SDK's low-level server (the extra pins SDK 2.x).
        lowlevel = server._lowlevel_server
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
