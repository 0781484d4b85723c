"""The ASGI application of ``ctxdb serve``: ``/healthz``, ``/readyz``, the REST API ``/v1``,
MCP over streamable HTTP at ``/mcp``, and the dashboard at ``/ui`` (``/`` leads there).

Every ``/v1`` route names the scope it needs (``READ``/``WRITE``/``ADMIN`` from
:mod:`ctxdb.http.auth`) and reaches a project only through ``Caller.project``; records named
by id are looked up within that project, so another project's id answers exactly like an
unknown one. Endpoints are plain ``def``: FastAPI runs them in its worker threads, where the
synchronous services run unchanged. The routes are declared by resource in
:mod:`ctxdb.http.project_routes`, :mod:`ctxdb.http.coordination_routes`,
:mod:`ctxdb.http.session_routes` and :mod:`ctxdb.http.workflow_routes`, with what they share
in :mod:`ctxdb.http.routing`; the change feed (Server-Sent Events) in
:mod:`ctxdb.http.event_routes`, remote agents' hook events in :mod:`ctxdb.http.hook_routes`.
"""

from __future__ import annotations

import functools
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from ctxdb import __version__
from ctxdb.errors import CtxdbError, ValidationError
from ctxdb.http import (
    coordination_routes,
    event_routes,
    hook_routes,
    project_routes,
    session_routes,
    workflow_routes,
)
from ctxdb.http import models as m
from ctxdb.http.auth import READ
from ctxdb.http.encoding import checked_first
from ctxdb.http.limits import BodyLimit
from ctxdb.http.problems import PROBLEM_RESPONSES, problem, problem_media_type, problem_of
from ctxdb.http.route_order import hot_first, paths_in_order
from ctxdb.service import Ctxdb
from ctxdb.web.app import create_dashboard

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
MCP_METHODS = ["GET", "POST", "DELETE"]


def readiness(db: Ctxdb) -> tuple[bool, str]:
    """Whether the database answers and its schema is the one this ctxdb needs."""
    try:
        migrator = db.migrator()
        current, latest = migrator.current_version(), migrator.latest_version
    except CtxdbError as exc:
        return False, f"{exc.code}: {exc.message}"
    if current != latest:
        return False, f"schema version {current}, this ctxdb needs {latest} (ctxdb db upgrade)"
    return True, f"schema version {current}"


def mcp_route() -> Route:
    """``/mcp``: MCP over streamable HTTP (:mod:`ctxdb.http.mcp_endpoint`); where the MCP SDK
    is not installed, a route that says so."""
    try:
        from ctxdb.http.mcp_endpoint import McpEndpoint
    except ImportError as exc:
        if (exc.name or "").startswith("ctxdb"):
            raise  # a bug in ctxdb itself, not a missing extra
        return Route("/mcp", _without_mcp_sdk, methods=MCP_METHODS)
    return Route("/mcp", McpEndpoint(), methods=MCP_METHODS)


def _without_mcp_sdk(request: Request) -> Response:
    return problem(501, "mcp_not_installed", "this server cannot speak MCP: the MCP SDK is "
                   "not installed here (pip install '.[mcp]' in a clone of ctxdb)")


def create_app(db: Ctxdb, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The application over an open store (the caller closes it)."""
    app = FastAPI(title="ctxdb", version=__version__,
                  description="The HTTP API of ctxdb serve (docs/server.md).")
    app.state.db = db

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = paths_in_order(problem_media_type(FastAPI.openapi(app)),
                                                declared)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/healthz", response_model=m.Health)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers. The only route without a token."""
        return {"status": "ok", "detail": ""}

    @app.get("/readyz", response_model=m.Health, dependencies=[Depends(READ)],
             responses={503: {"model": m.Health}, "4XX": PROBLEM_RESPONSES["4XX"]})
    def readyz() -> Response:
        ready, detail = readiness(db)
        return JSONResponse({"status": "ready" if ready else "unavailable", "detail": detail},
                            status_code=200 if ready else 503)

    # The /v1 routes join the app's own list (not a nested router), so that the app's
    # routes are one flat list: the auth test enumerates it.
    for routes in (project_routes, coordination_routes, session_routes, workflow_routes,
                   event_routes, hook_routes):
        app.router.routes.extend(routes.v1.routes)
    app.router.routes.append(mcp_route())
    # The dashboard (docs/dashboard.md): an application of its own, signed in by cookie.
    # Its pages follow the change feed through the same stream code as /v1/events, tied to
    # this app so that the server's shutdown ends their streams too.
    feed = functools.partial(event_routes.feed_response, app, named=False)
    app.mount("/ui", create_dashboard(db, feed), name="dashboard")
    app.router.add_route("/", lambda request: RedirectResponse("/ui/"), include_in_schema=False)

    # Each request is resolved against this list in order: the agents' routes go first, where
    # that leaves every request's route unchanged (ctxdb.http.route_order).
    declared = list(app.router.routes)
    app.router.routes[:] = hot_first(declared)
    _answer_errors(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


def _answer_errors(app: FastAPI) -> None:
    """Every error as application/problem+json (docs/api.md)."""

    @app.exception_handler(CtxdbError)
    async def ctxdb_error(request: Request, exc: CtxdbError) -> Response:
        return problem_of(exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        try:
            await checked_first(request)
        except CtxdbError as refused:
            return problem_of(refused)
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"])
        return problem(400, ValidationError.code, f"{where}: {first['msg']}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "route_not_found", 405: "method_not_allowed"}.get(exc.status_code, "http")
        return problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # A bug, not an error ctxdb meant: the answer says so without internals, and the
        # exception goes on to the server's log with its traceback.
        return problem(500, "internal_error", "unexpected server error (a bug: the server's "
                       "log has the details)")
