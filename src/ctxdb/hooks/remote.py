"""A hook event forwarded to a ctxdb server (``CTXDB_URL=http(s)://host:port``).

The agent's machine keeps what only it knows: it parses the event (so a malformed one is
refused here, as locally), computes the repository identity of the working directory (git),
and posts both to ``POST /v1/hooks`` with ``CTXDB_TOKEN``. The server runs the same use
cases the local hook runs and answers ``{"output": …}``, the object to print (or null). The
answer is read, checked and written out again with the local renderer, so that whatever
the server sends the client gets one valid output or none.

Only the standard library (``_socket``, ``json``, ``base64``; ``socket`` and ``ssl`` for https
only) is imported here: no HTTP library, no database driver. A server that is down, slow,
refuses the token, redirects or answers garbage raises :class:`RemoteHookError` (the
dispatcher logs it and prints nothing: fail open). Every wait is bounded by the
``answer_by`` instant.
"""

from __future__ import annotations

import _socket  # the C module: socket.py builds enums of all its constants on import
import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ctxdb.database_url import server_address
from ctxdb.domain.hook_events import HookEvent, context_output
from ctxdb.hooks.remote_transcript import (
    INGESTING,
    note_offset,
    subagent_bodies,
    transcript_body,
)
from ctxdb.settings import default_data_dir

if TYPE_CHECKING:
    from ctxdb.domain.agents import RepoIdentity
    from ctxdb.settings import Settings

ROUTE = "/v1/hooks"
MAX_ANSWER_BYTES = 1024 * 1024  # an answer holds one injection (10,000 characters)
# The part of the transcript the event needs goes with it (remote_transcript.py).
# Events whose handling never needs the repository (the server knows the session already):
# they skip the git calls.
WITHOUT_REPO = frozenset({"SessionEnd"})


class RemoteHookError(Exception):
    """The server did not give a usable answer; the message says what happened."""


def forward(event: HookEvent, repo_of: Callable[[HookEvent], RepoIdentity],
            settings: Settings, connect_within: float, answer_by: float,
            handoff: dict[str, Any] | None = None) -> str | None:
    """Post ``event`` to the server; the output to print (None: nothing). ``handoff``: the
    one :func:`ctxdb.hooks.remote_transcript.handoff_body` read, for an event that saves one
    (read before, so that the time it took is not the server's)."""
    if not settings.token:
        raise RemoteHookError(f"CTXDB_URL names the server {settings.url} but no token is "
                              "set (CTXDB_TOKEN or token in the config file); nothing was sent")
    body: dict[str, Any] = {
        "client": event.client, "event": event.fields, "host": _socket.gethostname(),
        "repo": None if event.event in WITHOUT_REPO else _repo_body(repo_of(event))}
    # Only ingesting events send from (and keep) the offset the server answered last.
    state_dir = default_data_dir(os.environ) if event.event in INGESTING else None
    transcript = transcript_body(event, settings.url, state_dir, handoff is not None)
    subagents: list[dict[str, Any]] = []
    if transcript is not None:
        body["transcript"] = transcript
        if handoff is not None:
            body["handoff"] = handoff
        if state_dir is not None:
            subagents = subagent_bodies(event, settings.url, state_dir, transcript)
        if subagents:
            body["subagents"] = subagents
    status, text = _post(settings.url, settings.token, json.dumps(body).encode("utf-8"),
                         connect_within, answer_by)
    if status != 200:
        raise RemoteHookError(f"the server at {settings.url} answered {status}: "
                              f"{_detail(text)}; nothing was output")
    output = _output(event, text, settings.url)
    # The offset answered is where the next ingesting event starts, so only those events
    # keep it (a prompt's tail starts elsewhere, and keeping it would cost every prompt a file
    # write, hashlib and pathlib); _output checked the answer is a JSON object.
    if transcript is not None and state_dir is not None:
        answer = json.loads(text)
        note_offset(state_dir, settings.url, transcript["path"],
                    answer.get("transcript_offset"))
        offsets = answer.get("subagent_offsets")
        for sent in subagents if isinstance(offsets, dict) else []:
            note_offset(state_dir, settings.url, sent["path"], offsets.get(sent["path"]))
    return output


def _repo_body(repo: RepoIdentity) -> dict[str, Any]:
    return {"repo_key": repo.repo_key, "name": repo.name, "worktree": repo.worktree,
            "branch": repo.branch}


def _post(url: str, token: str, payload: bytes, connect_within: float,
          answer_by: float) -> tuple[int, bytes]:
    """The status and body of the server's answer; every wait ends by ``answer_by``.

    One HTTP/1.1 request on a socket of its own (``Connection: close``), written and read
    here: http.client would import the email package and ssl on every event."""
    scheme, host, port, prefix = server_address(url)
    # An ASCII name goes to getaddrinfo as bytes: as str it would load the IDNA codec.
    address: Any = (host.encode("ascii") if host.isascii() else host, port)
    within = max(0.01, min(connect_within, _left(answer_by)))
    try:
        sock = _connect(address, within, plain=scheme != "https")
    except OSError as exc:
        raise RemoteHookError(f"cannot connect to the server at {url}: "
                              f"{exc.strerror or exc}") from None
    try:
        if scheme == "https":
            import ssl  # only for https

            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        sock.settimeout(_left(answer_by))
        netloc = f"[{host}]" if ":" in host else host
        sock.sendall(f"POST {prefix}{ROUTE} HTTP/1.1\r\nHost: {netloc}:{port}\r\n"
                     f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                     f"Accept: application/json\r\nContent-Length: {len(payload)}\r\n"
                     "Connection: close\r\n\r\n".encode("latin-1") + payload)
        return _response(_read_all(sock, answer_by), url)
    except OSError as exc:  # a timeout, a reset, a TLS failure
        raise RemoteHookError(f"the server at {url} gave no answer in time or broke off: "
                              f"{type(exc).__name__}: {exc}") from None
    finally:
        sock.close()


def _connect(address: tuple[Any, int], within: float, plain: bool) -> Any:
    """A connected socket, each address of the name tried in turn. A ``plain`` one (http)
    is made with ``_socket`` as ``socket.create_connection`` would make it, without the cost
    of importing :mod:`socket`; TLS wraps ``socket.socket`` objects only."""
    if not plain:
        import socket

        return socket.create_connection(address, within)
    failure = OSError(f"no address found for {address[0]!r}")
    for family, kind, proto, _, target in _socket.getaddrinfo(*address, 0,
                                                              _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(within)
            sock.connect(target)
            return sock
        except OSError as exc:
            failure = exc
            sock.close()
    raise failure


def _read_all(sock: Any, answer_by: float) -> bytes:
    """Everything the server sends until it closes, within ``answer_by`` and the size cap."""
    chunks: list[bytes] = []
    size = 0
    while chunk := sock.recv(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES + 64 * 1024:
            break  # more than any answer: _output refuses it
        sock.settimeout(_left(answer_by))
    return b"".join(chunks)


def _response(raw: bytes, url: str) -> tuple[int, bytes]:
    """``(status, body)`` of an HTTP/1.x response (a chunked body is joined)."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if not separator or len(parts) < 2 or not parts[0].startswith("HTTP/1.") \
            or not parts[1].isdigit():
        raise RemoteHookError(f"the server at {url} answered something that is no HTTP "
                              f"response: {raw[:200]!r}")
    headers = {name.strip().lower(): value.strip()
               for name, _, value in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunked(body, url)
    elif headers.get("content-length", "").isdigit():
        body = body[: int(headers["content-length"])]
    return int(parts[1]), body


def _unchunked(body: bytes, url: str) -> bytes:
    joined: list[bytes] = []
    while True:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            raise RemoteHookError(f"the server at {url} sent a broken chunked body") from None
        if size == 0:
            return b"".join(joined)
        joined.append(rest[:size])
        body = rest[size + 2:]


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
