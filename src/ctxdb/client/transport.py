"""The HTTP side of :func:`ctxdb.connect`: requests to a ``ctxdb serve`` and its problems
turned back into the typed errors the local library raises.

An error answer is ``application/problem+json`` with the error's stable ``code``; the class
raised is the :mod:`ctxdb.errors` class of that code (the server's status table maps classes
to statuses; codes map back one to one), with the problem's details. A code this version
does not know becomes the nearest class by status, so a newer server still gives a typed
error.

Creates carry an ``Idempotency-Key`` (the caller's, else a new one), so the transport sends
a create again after a lost answer without risk of a second record; other requests are sent
again only when the connection failed before anything was sent.
"""

from __future__ import annotations

import secrets
import time
from functools import cache
from typing import Any
from urllib.parse import quote

import httpx

from ctxdb import errors

ATTEMPTS = 3
BACKOFF_SECONDS = 0.2
PROBLEM_FIELDS = frozenset({"type", "title", "status", "code", "detail", "message"})
# A code this client does not know (a newer server's): the nearest class by status.
CLASS_BY_STATUS: dict[int, type[errors.CtxdbError]] = {
    400: errors.ValidationError, 401: errors.AuthenticationError,
    403: errors.PermissionDeniedError, 404: errors.NotFoundError, 409: errors.ConflictError,
    413: errors.ContentTooLargeError, 422: errors.LimitExceededError,
    503: errors.StorageError,
}


@cache
def error_classes() -> dict[str, type[errors.CtxdbError]]:
    """Every error class of ``ctxdb.errors`` by its code."""
    found: dict[str, type[errors.CtxdbError]] = {}
    pending: list[type[errors.CtxdbError]] = [errors.CtxdbError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def error_of(answer: httpx.Response) -> errors.CtxdbError:
    """The typed error a problem+json answer describes."""
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code", ""))
    cls = error_classes().get(code) or CLASS_BY_STATUS.get(answer.status_code,
                                                            errors.CtxdbError)
    detail = str(body.get("detail") or f"HTTP {answer.status_code} from the server")
    details = {k: v for k, v in body.items() if k not in PROBLEM_FIELDS}
    error = cls(detail, **details)
    error.details.setdefault("status", answer.status_code)
    return error


def segment(value: object) -> str:
    """One path segment: ids and memory keys may hold any character."""
    return quote(str(value), safe="")


class Transport:
    """One HTTP connection pool to a server, with the token of every request."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0,
                 project_id: str | None = None,
                 http_transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.default_project = project_id
        self.http = httpx.Client(base_url=self.url, timeout=timeout, transport=http_transport,
                                 headers={"Authorization": f"Bearer {token}"})

    def project(self, project_id: str | None) -> str:
        """``project_id``, else the connection's project (given to ``connect``, or the only
        project the token sees)."""
        if project_id is not None:
            return project_id
        if self.default_project is None:
            visible = self.call("GET", "/v1/projects")
            if len(visible) != 1:
                raise errors.ValidationError(
                    f"this token sees {len(visible)} projects: pass project_id (or "
                    f"ctxdb.connect(..., project_id=...)); from the ctxdb command, --project "
                    f"where it takes one, else a token of the one project")
            self.default_project = str(visible[0]["project_id"])
        return self.default_project

    def path(self, project_id: str | None, *parts: object) -> str:
        return "/v1/projects/" + "/".join(segment(p) for p in (self.project(project_id),
                                                               *parts))

    def call(self, method: str, path: str, *, json: Any = None,
             params: dict[str, Any] | None = None) -> Any:
        """The decoded answer of a request that is not a create."""
        return self._send(method, path, json, params, key=None)

    def create(self, path: str, body: Any, key: str | None) -> Any:
        """A POST that creates: sent with an idempotency key, so it may be sent again."""
        return self._send("POST", path, body, None, key=key or f"ctxdb-{secrets.token_hex(16)}")

    def _send(self, method: str, path: str, body: Any, params: dict[str, Any] | None,
              key: str | None) -> Any:
        headers = {} if key is None else {"Idempotency-Key": key}
        query = None if params is None else {k: v for k, v in params.items() if v is not None}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                answer = self.http.request(method, path, json=body, params=query,
                                           headers=headers)
                break
            except httpx.TransportError as exc:
                # Not sent at all (the connection failed): safe to send again. Sent, with no
                # answer: safe only for a create, whose key makes a retry get the first answer.
                retryable = isinstance(exc, httpx.ConnectError) or key is not None
                if not retryable or attempt == ATTEMPTS:
                    raise errors.DatabaseUnavailableError(
                        f"the ctxdb server at {self.url} did not answer: {exc}",
                        url=self.url) from exc
                time.sleep(BACKOFF_SECONDS * attempt)
        if answer.status_code >= 400:
            raise error_of(answer)
        return answer.json()

    def close(self) -> None:
        self.http.close()
