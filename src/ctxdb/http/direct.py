"""The everyday request of an :class:`ctxdb.http.encoding.EncodedRoute`, answered without
FastAPI's general request handler.

FastAPI's handler serves every kind of route: per request it opens two ``AsyncExitStack``
(for dependencies with ``yield``), reads the telemetry context, parses the content type with
``email.message``, and solves the dependencies generically (a cache, a ``Response`` for
headers a dependency may set, each dependency's kind looked up again). A ``/v1`` route needs
none of that: its one dependency is the token check the endpoint's thread makes
(:class:`ctxdb.http.encoding.PendingCaller`, made here directly), and its parameters and
body are checked by FastAPI's own functions (``request_params_to_args``,
``request_body_to_args``), so what is accepted and how it is converted are FastAPI's.

Only the plain case is answered here: a body (if any) sent as ``application/json`` that
parses, and parameters that are valid. Anything else (another content type, broken JSON, a
parameter or body refused, dependency overrides in force) goes to FastAPI's own handler with
the body as it came, so every error answers exactly as before (the 400's wording, the token
check made first: :func:`ctxdb.http.encoding.checked_first`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import params
from fastapi._compat import Undefined
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.routing import APIRoute
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Prepare = Callable[[Request], Any]  # a dependency's value, made without I/O
_NOT_JSON = object()


def direct_app(route: APIRoute, dependant: Dependant, dependencies: dict[str, Prepare],
               general: ASGIApp) -> ASGIApp | None:
    """The ASGI app of ``route`` (``dependant``: its endpoint as it runs, whose named
    dependencies are made by ``dependencies``), falling back to ``general`` (FastAPI's app of
    the same route); None when the route is not of the plain kind."""
    if not _plain(route, dependant, dependencies):
        return None
    call = dependant.call
    assert call is not None
    body_params, embed = dependant.body_params, route._embed_body_fields
    params = [(fields, source) for fields, source in (
        (dependant.path_params, _path), (dependant.query_params, _query),
        (dependant.header_params, _headers)) if fields]

    async def values_of(request: Request, body: Any) -> dict[str, Any] | None:
        """The endpoint's arguments; None when one is refused (FastAPI says how)."""
        values: dict[str, Any] = {}
        for fields, source in params:
            found, errors = request_params_to_args(fields, source(request))
            if errors:
                return None
            values.update(found)
        if body_params:
            found, errors = await request_body_to_args(
                body_fields=body_params, received_body=body, embed_body_fields=embed)
            if errors:
                return None
            values.update(found)
        if dependant.request_param_name:
            values[dependant.request_param_name] = request
        for name, prepare in dependencies.items():
            values[name] = prepare(request)
        return values

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        overrides = route.dependency_overrides_provider
        if overrides is not None and getattr(overrides, "dependency_overrides", None):
            await general(scope, receive, send)
            return
        body: Any = Undefined  # without a body parameter, FastAPI reads no body either
        raw = b"" if body_params else None
        if body_params:
            raw = await _body(receive)
            body = _json(scope, raw)
        request = Request(scope, receive, send)
        values = None if body is _NOT_JSON else await values_of(request, body)
        if values is None:
            await general(scope, receive if raw is None else _replayed(raw, receive), send)
            return

        async def respond(scope: Scope, receive: Receive, send: Send) -> None:
            response = await call(**values)
            await response(scope, receive, send)

        await wrap_app_handling_exceptions(respond, request)(scope, receive, send)

    return app


def _plain(route: APIRoute, dependant: Dependant, dependencies: dict[str, Prepare]) -> bool:
    """Whether every argument of the route's endpoint is one this module makes as FastAPI
    would: path, query and header parameters, one JSON body, the request, and the named
    dependencies it was given (each with no dependency of its own)."""
    if dependant.call is None or getattr(route, "max_body_size", None) is not None \
            or not hasattr(route, "_embed_body_fields"):  # a FastAPI release without it
        return False
    if {sub.name for sub in dependant.dependencies} != set(dependencies) or any(
            sub.dependencies for sub in dependant.dependencies):
        return False
    if dependant.body_params and (route.body_field is None
                                  or isinstance(route.body_field.field_info, params.Form)):
        return False
    return not (dependant.cookie_params or dependant.security_scopes_param_name
                or dependant.background_tasks_param_name or dependant.response_param_name
                or dependant.websocket_param_name or dependant.http_connection_param_name)


async def _body(receive: Receive) -> bytes | None:
    """The request's body, read as ``Request.body`` would (without its stream and its
    context manager); None when the client went away first or the body was refused as too
    large (``ctxdb.http.limits``): FastAPI's handler then meets the same end."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return None


def _json(scope: Scope, raw: bytes | None) -> Any:
    """The body parsed as JSON (none sent: FastAPI's "missing"), or ``_NOT_JSON`` when it is
    not sent as ``application/json``, does not parse, or was not read."""
    if raw is None:
        return _NOT_JSON
    if not raw:
        return Undefined
    if _content_type(scope) != b"application/json":
        return _NOT_JSON
    try:
        return json.loads(raw)
    except ValueError:
        return _NOT_JSON


def _content_type(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value)
    return None


def _replayed(raw: bytes | None, receive: Receive) -> Receive:
    """``receive`` for FastAPI's handler after this one read the body: the body again, then
    what the client sends next (a disconnect)."""
    if raw is None:
        return receive
    replay: list[Message] = [{"type": "http.request", "body": raw, "more_body": False}]

    async def replayed() -> Message:
        return replay.pop() if replay else await receive()

    return replayed


def _path(request: Request) -> Any:
    return request.path_params


def _query(request: Request) -> Any:
    return request.query_params


def _headers(request: Request) -> Any:
    return request.headers
