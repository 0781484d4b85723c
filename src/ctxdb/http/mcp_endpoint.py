"""``/mcp``: ctxdb's MCP tools over the SDK's streamable HTTP transport, behind the same bearer
tokens as ``/v1``.

Every request is authenticated like a ``/v1`` request (:data:`ctxdb.http.auth.READ`): no
token, a wrong, revoked or expired one is a 401 problem before the MCP layer sees anything.
The token decides the session: its project is the default project of every tool and the only
one a tool reaches (another project's id is answered as unknown), its scope decides the
tools (a read token is offered, and can call, only the tools that do not write), and the
audit rows name it. A fleet-wide token reaches every project; its tools need ``project_id``.

The transport runs stateless (each POST is answered on its own, as JSON), so that any replica
answers any request and no session lives in one process. Building the tool set costs a few
hundred milliseconds (the SDK derives a model per tool), so it is built once per scope, and
each request's tools come from a context variable holding the request's store and project.
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
from ctxdb.errors import CtxdbError
from ctxdb.http.auth import READ, Caller
from ctxdb.http.problems import problem_of
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
        self.servers: dict[bool, MCPServer[Any]] = {}

    async def server(self, writes: bool) -> MCPServer[Any]:
        if writes not in self.servers:  # built in a thread: it takes a while
            self.servers[writes] = await anyio.to_thread.run_sync(
                lambda: build_server(request_tools, writes=writes))
        return self.servers[writes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            caller = await anyio.to_thread.run_sync(READ, Request(scope))
        except CtxdbError as exc:
            await problem_of(exc)(scope, receive, send)
            return
        project = caller.token["project_id"]
        tools = ContextTools(caller.db, project, FLEET_HINT, only_default=project is not None)
        server = await self.server(writes=_writes(caller))
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


def _writes(caller: Caller) -> bool:
    return allows(TokenScope(caller.token["scope"]), TokenScope.WRITE)
