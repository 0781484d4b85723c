"""The one HTTP request a remote agent's hook makes: ``POST /v1/hooks`` to a ctxdb server.

One HTTP/1.1 request on a socket of its own (``Connection: close``), written and read here:
``http.client`` would import the email package and ssl on every event, and ``socket.py``
builds enums of all its constants on import, so a plain (http) request uses the C module
``_socket``; ``socket`` and ``ssl`` are imported for https only. Every wait, name lookup
included, ends by the ``answer_by`` instant; a server that is down, slow, or answers no HTTP
raises :class:`RemoteHookError`, whose message says what happened.

Both remote paths post with it: ``hooks.remote`` (every event) and ``hooks.remote_entry``
(the short path of the common events), so it imports only C modules and ``time``.
"""

from __future__ import annotations

import _socket
import time

TYPE_CHECKING = False  # typing's own import costs every prompt more than this module
if TYPE_CHECKING:
    from typing import Any

ROUTE = "/v1/hooks"
MAX_ANSWER_BYTES = 1024 * 1024  # an answer holds one injection (10,000 characters)
# Events whose request carries no repository: their handling never needs it (the server
# knows the session already), so they skip reading git's files.
WITHOUT_REPO = frozenset({"SessionEnd"})

# (scheme, host, port, path prefix), as database_url.server_address gives it
Address = tuple[str, str, int, str]


class RemoteHookError(Exception):
    """The server did not give a usable answer; the message says what happened."""


def post(address: Address, url: str, token: str, payload: bytes, connect_within: float,
         answer_by: float) -> tuple[int, bytes]:
    """The status and body of the server's answer to ``payload``; every wait ends by
    ``answer_by``, the connection's within ``connect_within`` seconds too."""
    scheme, host, port, prefix = address
    within = max(0.01, min(connect_within, _left(answer_by)))
    try:
        sock = _connect(host, port, within, plain=scheme != "https")
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


def _connect(host: str, port: int, within: float, plain: bool) -> Any:
    """A connected socket, each address of the name tried in turn, as
    ``socket.create_connection`` would make it. A ``plain`` one (http) is a ``_socket``
    socket; TLS wraps ``socket.socket`` objects only."""
    make: Any = _socket.socket
    if not plain:
        import socket

        make = socket.socket
    failure = OSError(f"no address found for {host!r}")
    for family, kind, proto, _, target in _addresses(host, port, within):
        sock = make(family, kind, proto)
        try:
            sock.settimeout(within)
            sock.connect(target)
            return sock
        except OSError as exc:
            failure = exc
            sock.close()
    raise failure


def _addresses(host: str, port: int, within: float) -> list[Any]:
    """``getaddrinfo`` of the server's name, given up after ``within`` seconds (a name
    server that does not answer would otherwise hold the hook for its own timeouts)."""
    # An ASCII name goes to getaddrinfo as bytes: as str it would load the IDNA codec.
    name: Any = host.encode("ascii") if host.isascii() else host
    try:  # an address written as such needs no lookup and no thread
        return list(_socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM, 0,
                                        _socket.AI_NUMERICHOST))
    except (OSError, UnicodeError):
        pass
    import threading  # only for a name to look up

    found: dict[str, Any] = {}

    def look_up() -> None:
        try:
            found["addresses"] = list(_socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            found["error"] = exc

    lookup = threading.Thread(target=look_up, name="ctxdb-hook-lookup", daemon=True)
    lookup.start()
    lookup.join(within)
    if "error" in found:
        raise found["error"]
    if "addresses" not in found:
        raise TimeoutError(f"the name {host!r} was not looked up within {within:.2f} s")
    addresses: list[Any] = found["addresses"]
    return addresses


def _read_all(sock: Any, answer_by: float) -> bytes:
    """Everything the server sends until it closes, within ``answer_by`` and the size cap."""
    chunks: list[bytes] = []
    size = 0
    while chunk := sock.recv(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES + 64 * 1024:
            break  # more than any answer: the caller refuses it
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


def refusal(status: int, text: bytes, url: str) -> RemoteHookError:
    """The error of an answer other than 200: the problem's code and detail when it is one,
    else the start of the text."""
    import json  # an error's path only

    try:
        problem = json.loads(text)
        detail = f"{problem['code']}: {problem['detail']}"
    except (ValueError, KeyError, TypeError):
        detail = repr(text[:200])
    return RemoteHookError(f"the server at {url} answered {status}: {detail}; nothing was "
                           "output")
