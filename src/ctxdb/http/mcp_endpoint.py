"""``/mcp``: ctxdb's MCP tools over the SDK's streamable HTTP transport, behind the same bearer
tokens as ``/v1``.

Every request is authenticated like a ``/v1`` request (:data:`ctxdb.http.auth.READ`): no
token, a wrong, revoked or expired one is a 401 problem before the MCP layer sees anything.
The token decides the session: its project is the default project of every tool and the only
one a tool reaches (another project's id is answered as unknown), its scope decides the
tools (a read token is offered, and can call, only the tools that do not write), and the
audit rows name it. A fleet-wide token reaches every project; its tools need ``project_id``.

The tool set is the lean default one (``ctxdb mcp``'s), or every tool listed by itself with
``/mcp?tools=all`` (what ``ctxdb mcp --tools all`` serves over stdio): a client chooses it by
the URL it is given. The transport runs stateless (each POST is answered on its own, as
JSON), so that any replica answers any request and no session lives in one process. Building
a tool set costs a few hundred milliseconds (the SDK derives a model per tool), so each is
built once per scope and tool set, and each request's tools come from a context variable
holding the request's store and project.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from ctxdb.domain.access import allows
from ctxdb.domain.vocabulary import TokenScope
from ctxdb.errors import CtxdbError, ValidationError
from ctxdb.http.auth import READ, Caller
from ctxdb.http.problems import problem_of
from ctxdb.mcp import TOOL_SETS
from ctxdb.mcp.server import build_server
from ctxdb.mcp.tools import ContextTools

FLEET_HINT = " (this server's token is fleet-wide: name the project)"
_TOOLS: ContextVar[ContextTools] = ContextVar("ctxdb_mcp_tools")
# Bearer tokens are not sent by a browser on its own, which is what DNS rebinding abuses; and a
# server behind any host name must answer it, so the SDK's Host header check stays off.
OPEN_HOSTS = TransportSecuritySettings(enable_dns_rebinding_protection=False)


def request_tools() -> ContextTools:
    return _TOOLS.get()


class McpEndpoint:
    """The ASGI app mounted at ``/mcp``."""

    def __init__(self) -> None:
        self.servers: dict[tuple[bool, str], MCPServer[Any]] = {}

    async def server(self, writes: bool, which: str) -> MCPServer[Any]:
        if (writes, which) not in self.servers:  # built in a thread: it takes a while
            self.servers[writes, which] = await anyio.to_thread.run_sync(
                lambda: build_server(request_tools, which, writes=writes))
        return self.servers[writes, which]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        try:
            caller = await anyio.to_thread.run_sync(READ, request)
            which = tool_set_of(request)
        except CtxdbError as exc:
            await problem_of(exc)(scope, receive, send)
            return
        project = caller.token["project_id"]
        tools = ContextTools(caller.db, project, FLEET_HINT, only_default=project is not None)
        server = await self.server(_writes(caller), which)
        # A session manager serves one run; stateless, a run per request costs little.
        server.streamable_http_app(stateless_http=True, json_response=True,
                                   transport_security=OPEN_HOSTS)
        manager = server.session_manager
        token = _TOOLS.set(tools)
        try:
            async with manager.run():
                await manager.handle_request({**scope, "path": "/mcp"}, receive, send)
        finally:
            _TOOLS.reset(token)


def tool_set_of(request: Request) -> str:
    """The tool set the URL asks for: ``?tools=default`` (or none) or ``?tools=all``."""
    which = request.query_params.get("tools", "default")
    if which not in TOOL_SETS:
        raise ValidationError(f"tools must be one of {', '.join(TOOL_SETS)}, got {which!r}",
                              field="tools")
    return which


def _writes(caller: Caller) -> bool:
    return allows(TokenScope(caller.token["scope"]), TokenScope.WRITE)
