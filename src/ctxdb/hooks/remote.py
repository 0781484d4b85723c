"""A hook event forwarded to a ctxdb server (``CTXDB_URL=http(s)://host:port``).

The agent's machine keeps what only it knows: it parses the event (so a malformed one is
refused here, as locally), computes the repository identity of the working directory (git),
and posts both to ``POST /v1/hooks`` with ``CTXDB_TOKEN``. The server runs the same use
cases the local hook runs and answers ``{"output": …}``, the object to print (or null). The
answer is read, checked and written out again with the local renderer, so that whatever
the server sends the client gets one valid output or none.

Only the standard library (``http.client``, ``json``, ``ssl`` for https) is imported on this
path: no HTTP library, no database driver. A server that is down, slow, refuses the token,
redirects or answers garbage raises :class:`RemoteHookError` (the dispatcher logs it and
prints nothing: fail open). Every wait is bounded by the ``answer_by`` instant.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ctxdb.domain.hook_events import HookEvent, context_output

if TYPE_CHECKING:
    from http.client import HTTPConnection

    from ctxdb.domain.agents import RepoIdentity
    from ctxdb.settings import Settings

ROUTE = "/v1/hooks"
MAX_ANSWER_BYTES = 1024 * 1024  # an answer holds one injection (10,000 characters)
# Events whose handling never needs the repository (the server knows the session already):
# they skip the git calls.
WITHOUT_REPO = frozenset({"SessionEnd"})


class RemoteHookError(Exception):
    """The server did not give a usable answer; the message says what happened."""


def forward(event: HookEvent, repo_of: Callable[[HookEvent], RepoIdentity],
            settings: Settings, connect_within: float, answer_by: float) -> str | None:
    """Post ``event`` to the server; the output to print (None: nothing)."""
    if not settings.token:
        raise RemoteHookError(f"CTXDB_URL names the server {settings.url} but no token is "
                              "set (CTXDB_TOKEN or token in the config file); nothing was sent")
    body = {"client": event.client, "event": event.fields,
            "repo": None if event.event in WITHOUT_REPO else _repo_body(repo_of(event))}
    status, text = _post(settings.url, settings.token, json.dumps(body).encode("utf-8"),
                         connect_within, answer_by)
    if status != 200:
        raise RemoteHookError(f"the server at {settings.url} answered {status}: "
                              f"{_detail(text)}; nothing was output")
    return _output(event, text, settings.url)


def _repo_body(repo: RepoIdentity) -> dict[str, Any]:
    return {"repo_key": repo.repo_key, "name": repo.name, "worktree": repo.worktree,
            "branch": repo.branch}


def _connection(url: str, timeout: float) -> tuple[HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme == "https":
        from http.client import HTTPSConnection

        return HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout), parts.path
    from http.client import HTTPConnection

    return HTTPConnection(parts.hostname or "", parts.port, timeout=timeout), parts.path


def _post(url: str, token: str, payload: bytes, connect_within: float,
          answer_by: float) -> tuple[int, bytes]:
    """The status and body of the server's answer; every wait ends by ``answer_by``."""
    connection, prefix = _connection(url, max(0.01, min(connect_within, _left(answer_by))))
    try:
        try:
            connection.connect()
        except OSError as exc:
            raise RemoteHookError(f"cannot connect to the server at {url}: "
                                  f"{exc.strerror or exc}") from None
        try:
            sock = connection.sock  # the response keeps it, the connection may let it go
            sock.settimeout(_left(answer_by))
            connection.request("POST", prefix.rstrip("/") + ROUTE, body=payload, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json",
                "Accept": "application/json"})
            response = connection.getresponse()
            sock.settimeout(_left(answer_by))
            return response.status, response.read(MAX_ANSWER_BYTES + 1)
        except (OSError, ValueError) as exc:  # a timeout is an OSError; http.client's too
            raise RemoteHookError(f"the server at {url} gave no answer in time or broke off: "
                                  f"{type(exc).__name__}: {exc}") from None
    finally:
        connection.close()


def _left(answer_by: float) -> float:
    left = answer_by - time.monotonic()
    if left <= 0:
        raise RemoteHookError("no time left to wait for the server")
    return left


def _detail(text: bytes) -> str:
    """The problem's code and detail when the answer is one, else the start of the text."""
    try:
        problem = json.loads(text)
        return f"{problem['code']}: {problem['detail']}"
    except (ValueError, KeyError, TypeError):
        return repr(text[:200])


def _output(event: HookEvent, text: bytes, url: str) -> str | None:
    """The answer's output, written out again by the local renderer (the same bytes a local
    hook prints); anything but the expected shape is an error."""
    if len(text) > MAX_ANSWER_BYTES:
        raise RemoteHookError(f"the server at {url} answered more than {MAX_ANSWER_BYTES} "
                              "bytes; nothing was output")
    try:
        output = json.loads(text)["output"]
        if output is None:
            return None
        specific = output["hookSpecificOutput"]
        context = specific["additionalContext"]
        if specific["hookEventName"] != event.name or not isinstance(context, str):
            raise TypeError("another event's output, or no text in it")
    except (ValueError, KeyError, TypeError) as exc:
        raise RemoteHookError(f"the server at {url} answered something that is no hook "
                              f"output ({type(exc).__name__}: {exc}): {text[:200]!r}") from None
    return context_output(event, context)
