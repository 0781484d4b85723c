"""A ``/v1`` route whose answer is checked and encoded in the endpoint's own worker thread.

FastAPI runs a plain ``def`` endpoint in a worker thread, then hands its result to a second
worker thread only to validate it against the response model, then encodes it on the event
loop. Each hand-off to a thread costs a lock, a wake-up and the GIL passing back and forth,
for every request. :class:`EncodedRoute` does the same validation and the same encoding (the
response model's own ``validate`` and ``serialize_json``, with the route's options) at the
end of the endpoint's call, in its thread, and returns the finished ``Response``, which
FastAPI passes through as it is: the same status, headers and bytes, one thread hand-off
fewer. Routes that stream, are ``async``, or declare no response model are left as they are.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.datastructures import DefaultPlaceholder
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from fastapi.utils import is_body_allowed_for_status_code
from starlette.requests import Request
from starlette.responses import Response


class EncodedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.dependant.call
        if (endpoint is None or self.response_field is None
                or not isinstance(self.response_class, DefaultPlaceholder)
                or not is_plain_function(endpoint)):
            return super().get_route_handler()
        original = self.dependant
        self.dependant = dataclasses.replace(original, call=self._encoding(endpoint))
        try:
            return super().get_route_handler()
        finally:
            self.dependant = original  # the declared endpoint, for the OpenAPI document

    def _encoding(self, endpoint: Callable[..., Any]) -> Callable[..., Any]:
        field = self.response_field
        assert field is not None
        status_code = self.status_code
        route = self

        @functools.wraps(endpoint)
        def encoded(**values: Any) -> Any:
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

        return encoded


def is_plain_function(call: Callable[..., Any]) -> bool:
    """A ``def`` that returns its answer (FastAPI runs it in a worker thread)."""
    target = inspect.unwrap(call)
    return inspect.isfunction(target) and not (
        inspect.iscoroutinefunction(target) or inspect.isgeneratorfunction(target)
        or inspect.isasyncgenfunction(target))
