"""A ``/v1`` route whose token check, endpoint and answer run in ONE worker thread.

FastAPI runs a plain ``def`` endpoint in a worker thread, then hands its result to a second
worker thread only to validate it against the response model, then encodes it on the event
loop. Each hand-off to a thread costs a lock, a wake-up and the GIL passing back and forth,
for every request. :class:`EncodedRoute` does the same validation and the same encoding (the
response model's own ``validate`` and ``serialize_json``, with the route's options) at the
end of the endpoint's call, in its thread, and returns the finished ``Response``, which
FastAPI passes through as it is: the same status, headers and bytes, one thread hand-off
fewer. The one hand-off left is :func:`ctxdb.http.threads.in_worker`'s, lighter than
anyio's that FastAPI would make (FastAPI sees an ``async`` endpoint that awaits it).

The token check (:class:`ctxdb.http.auth.Need`, a database read) was a hand-off of its own,
before the request's parameters were checked. It now runs in the endpoint's thread too,
first, before the endpoint: FastAPI's dependency only notes the check to make
(:class:`PendingCaller`, no I/O). Which error a request gets is unchanged: when the
parameters or body are invalid, the 400 handler makes the noted check first
(:func:`checked_first`), so a refused token still answers 401/403/404 before a bad body's
400, as when the check ran before the parameters. Routes that stream, are ``async``, or
declare no response model are left as they are.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.concurrency import run_in_threadpool
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from fastapi.utils import is_body_allowed_for_status_code
from starlette.requests import Request
from starlette.responses import Response

from ctxdb.http.auth import Caller, Need
from ctxdb.http.threads import in_worker

try:  # the direct path uses parts of FastAPI and Starlette that are not their public API
    from ctxdb.http.direct import direct_app
except ImportError:  # pragma: no cover - a release that moved them: FastAPI's handler only
    direct_app = None  # type: ignore[assignment]

PENDING_KEY = "ctxdb.pending_caller"


class PendingCaller:
    """A request's token check, noted by the dependency and made in the endpoint's thread."""

    __slots__ = ("need", "request")

    def __init__(self, need: Need, request: Request) -> None:
        self.need = need
        self.request = request

    def check(self) -> Caller:
        return self.need(self.request)


def _pending(need: Need) -> Callable[..., Any]:
    async def pending_caller(request: Request) -> PendingCaller:
        pending = PendingCaller(need, request)
        request.scope[PENDING_KEY] = pending
        return pending

    return pending_caller


async def checked_first(request: Request) -> None:
    """The token check a route noted but has not made (its parameters were refused before
    its endpoint ran): made now, so that its refusal answers first, as it always did."""
    pending = request.scope.pop(PENDING_KEY, None)
    if pending is not None:
        await run_in_threadpool(pending.check)


class EncodedRoute(APIRoute):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._running: tuple[Dependant, dict[str, Need]] | None = None
        super().__init__(*args, **kwargs)
        if self._running is not None and direct_app is not None:
            # its everyday requests skip FastAPI's handler
            dependant, needs = self._running
            self.app = direct_app(self, dependant, {
                name: functools.partial(PendingCaller, need) for name, need in needs.items()},
                self.app) or self.app

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.dependant.call
        if (endpoint is None or self.response_field is None
                or not isinstance(self.response_class, DefaultPlaceholder)
                or not is_plain_function(endpoint)):
            return super().get_route_handler()
        original = self.dependant
        needs = {sub.name: sub.call for sub in original.dependencies
                 if isinstance(sub.call, Need) and sub.name is not None}
        self.dependant = dataclasses.replace(
            original, call=self._encoding(endpoint, list(needs)),
            dependencies=[_deferred(sub) for sub in original.dependencies])
        self._running = (self.dependant, needs)
        try:
            return super().get_route_handler()
        finally:
            self.dependant = original  # the declared endpoint, for the OpenAPI document

    def _encoding(self, endpoint: Callable[..., Any],
                  deferred: list[str]) -> Callable[..., Any]:
        field = self.response_field
        assert field is not None
        status_code = self.status_code
        route = self

        def encoded(**values: Any) -> Any:
            for name in deferred:
                pending = values[name]
                pending.request.scope.pop(PENDING_KEY, None)
                values[name] = pending.check()
            result = endpoint(**values)
            if isinstance(result, Response):
                return result
            value, errors = field.validate(result, {}, loc=("response",))
            if errors:
                raise ResponseValidationError(errors=errors, body=result)
            content = field.serialize_json(
                value, include=route.response_model_include,
                exclude=route.response_model_exclude, by_alias=route.response_model_by_alias,
                exclude_unset=route.response_model_exclude_unset,
                exclude_defaults=route.response_model_exclude_defaults,
                exclude_none=route.response_model_exclude_none)
            response = Response(content, status_code=200 if status_code is None else status_code,
                                media_type="application/json")
            if not is_body_allowed_for_status_code(response.status_code):
                response.body = b""
            return response

        @functools.wraps(endpoint)
        async def in_thread(**values: Any) -> Any:
            return await in_worker(functools.partial(encoded, **values))

        return in_thread


def _deferred(sub: Dependant) -> Dependant:
    """A route's named token check, noted instead of made (see the module docstring)."""
    if not isinstance(sub.call, Need) or sub.name is None:
        return sub
    return dataclasses.replace(sub, call=_pending(sub.call))


def is_plain_function(call: Callable[..., Any]) -> bool:
    """A ``def`` that returns its answer (FastAPI runs it in a worker thread)."""
    target = inspect.unwrap(call)
    return inspect.isfunction(target) and not (
        inspect.iscoroutinefunction(target) or inspect.isgeneratorfunction(target)
        or inspect.isasyncgenfunction(target))
