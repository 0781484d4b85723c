"""The remote hook's short path: a common event forwarded to a ctxdb server with nothing
imported but C modules and a few of ctxdb's own modules of constants.

A client starts one hook process per event, on every prompt, and a process forwarding to a
server (``CTXDB_URL=http(s)://…``) spends most of its time importing the modules it shares
with the local hook: ``json`` (with ``re`` and ``enum``), ``typing`` (the events and settings
are named tuples), the exception tree, the settings and their checks, ``threading``
(docs/benchmarks.md). This path imports none of them. It handles an event here when all of
this holds, and otherwise hands the event (read or not) to the full path
(``hooks.command``), which gives the same outcome it always gave:

- the settings are ``CTXDB_URL`` (a server URL of the plain form :func:`server_address`
  reads) and ``CTXDB_TOKEN`` from the environment, with no config file and no other setting
  but ``actor`` set (the full path loads and checks any other: a wrong one is its error);
- stdin has a file descriptor (a POSIX process, not an in-process caller);
- the event is a JSON object within the limits of all JSON, with a ``hook_event_name`` the
  client's vocabulary knows and a ``session_id`` (anything else is the full path's typed
  error in the log);
- it needs no handoff and no ingestion (SessionStart other than after a compaction,
  UserPromptSubmit, and the others when they come without a transcript), and the repository
  is read from git's and ctxdb's files without running git (its key cached).

It sends the body the full path sends (the same members from the same values, written by the
same C encoder ``json.dumps`` uses) and prints the same output, and it keeps the same
contract: exit 0, one valid output or none, every failure logged, nothing waited for beyond
the same deadlines (the socket's timeouts bound every wait, so no worker thread is needed).
tests/test_remote_entry.py runs both paths on the same events.
"""

from __future__ import annotations

import os
import sys
import time

STARTED = time.monotonic()  # the hook's start, as close to the process's as a module gets

import _json  # noqa: E402 (the C half of json: json itself imports re)

from ctxdb.domain.client_rules import (  # noqa: E402
    CONTEXT_EVENTS,
    MAX_UPLOAD_BYTES,
    event_role,
    injection_limit,
)
from ctxdb.domain.json_limits import bounded_int, json_depth_over  # noqa: E402
from ctxdb.hooks.invocation import (  # noqa: E402
    CONNECTED_BY,
    DEADLINES,
    INPUT_DEADLINE,
    MIN_CONNECT_TIMEOUT,
    REMOTE_DEADLINE,
    REMOTE_MARGIN,
    print_output,
)
from ctxdb.hooks.remote_http import (  # noqa: E402
    MAX_ANSWER_BYTES,
    WITHOUT_REPO,
    Address,
    RemoteHookError,
    post,
    refusal,
)
from ctxdb.hooks.transcript_pieces import INGESTING, tail_body, tail_bytes  # noqa: E402
from ctxdb.settings_names import CONFIG_ENV, ENV_PREFIX, SETTING_NAMES, config_file  # noqa: E402

TYPE_CHECKING = False  # typing's own import costs more than this module's work
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# Settings the short path takes from the environment: the server and the token, and one no
# value of which is wrong (and which only the server's own settings use).
SHORT_PATH_SETTINGS = frozenset({"url", "token", "actor"})
_READ_BYTES = 64 * 1024
_JSON_WHITESPACE = " \t\n\r"
_HOST_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                             "0123456789._~%-")
_ADDRESS_CHARACTERS = frozenset("0123456789ABCDEFabcdef:.")


class _Decoding:
    """What ``_json.make_scanner`` reads of a ``json.JSONDecoder``: the settings
    ``json.loads(text, parse_int=bounded_int)`` (``domain.validation.load_json``) uses."""

    def __init__(self) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = None
        self.parse_float = float
        self.parse_int = bounded_int
        self.parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                               "NaN": float("nan")}.__getitem__
        self.memo: dict[str, str] = {}


def _not_serializable(value: object) -> object:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


_scan = _json.make_scanner(_Decoding())  # type: ignore[arg-type]  # (any such object)
# json.dumps(value) as json's one-shot encoder calls the C encoder: ensure_ascii, the default
# separators, circular references checked, NaN allowed.
_encode = _json.make_encoder({}, _not_serializable, _json.encode_basestring_ascii, None,
                             ": ", ", ", False, False, True)


class _FullPath(Exception):
    """The event is the full path's (hooks.command): handed over with what was read."""


def run(client: str, deadline: float | None) -> int:
    """Run the hook for ``client``: here when the short path applies, else the full path.
    Always returns 0."""
    server = server_settings(os.environ)
    descriptor = _stdin_descriptor()
    if server is None or descriptor is None:
        from ctxdb.hooks.command import run_hook_command

        return run_hook_command(client, deadline)
    started = time.monotonic()
    wait = INPUT_DEADLINE if deadline is None else deadline
    try:
        raw = read_event(descriptor, wait)
    except Exception as exc:  # the contract with the clients: exit 0, whatever happened
        _log(f"{client} hook", exc)
        return 0
    try:
        output = _forward(client, deadline, raw, server, started)
    except _FullPath:
        from ctxdb.hooks.command import handle_input

        return handle_input(client, deadline, raw, wait, started)
    if output is not None:
        print_output(output)
    return 0


def leave(code: int) -> None:
    """End the process with ``code`` once the output is flushed, skipping the interpreter's
    teardown: with the event handled nothing is left to finalize (no file or socket open, no
    thread but an abandoned one), and tearing down the modules costs a remote hook about a
    fifth of its own work (docs/benchmarks.md)."""
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 (contextlib would be one more import)
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)


def server_settings(env: Mapping[str, str]) -> tuple[str, str, Address] | None:
    """``(url, token, address)`` when the settings are ``CTXDB_URL`` naming a server and
    ``CTXDB_TOKEN``, nothing the full path must load and check; else None."""
    if os.name != "posix":  # select() reads pipes on POSIX only
        return None
    for name in SETTING_NAMES:
        if name not in SHORT_PATH_SETTINGS and env.get(ENV_PREFIX + name.upper()):
            return None
    url, token = env.get("CTXDB_URL", ""), env.get("CTXDB_TOKEN", "")
    if not url or not token or env.get(CONFIG_ENV) or os.path.exists(config_file(env)):
        return None
    address = server_address(url)
    # load_settings keeps the URL without its trailing slashes: the full path's
    return None if address is None else (url.rstrip("/"), token, address)


def server_address(url: str) -> Address | None:
    """``database_url.server_address(url)`` for the plain forms of a server URL, read by
    hand (the pattern there would import ``re``): ``http(s)://host[:port][/path]`` in ASCII,
    the host a name or an IPv4 address or an IPv6 one in brackets; None for any other text,
    whose meaning (or error) the full path gives."""
    if not url.isascii():
        return None
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in ("http", "https"):
        return None
    authority, slash, path = rest.partition("/")
    path = slash + path
    if "?" in path or "#" in path:
        return None
    if authority.startswith("["):
        host, bracket, port = authority[1:].partition("]")
        if not bracket or not host or not _ADDRESS_CHARACTERS.issuperset(host):
            return None
    else:
        host, colon, port = authority.partition(":")
        port = colon + port
        if not host or not _HOST_CHARACTERS.issuperset(host):
            return None
    if port:
        digits = port[1:]
        if port[0] != ":" or not 1 <= len(digits) <= 5 or not digits.isdigit() \
                or not 0 < int(digits) < 65536:
            return None
        number = int(digits)
    else:
        number = 443 if scheme == "https" else 80
    return scheme, host, number, path.rstrip("/")


def _stdin_descriptor() -> int | None:
    try:
        return sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # an in-process caller's stdin
        return None


def read_event(descriptor: int, seconds: float) -> str | None:
    """The text on stdin once it is closed, or as soon as it holds a whole JSON object (a
    client may leave the pipe open); None when neither happens within ``seconds``: what
    ``hooks.command.read_event`` gives, waiting with ``select`` rather than a thread."""
    import select

    chunks: list[bytes] = []
    give_up = time.monotonic() + seconds
    while True:
        text = b"".join(chunks).decode("utf-8", errors="replace")
        if chunks and _whole_object(text):
            return text
        remaining = give_up - time.monotonic()
        if remaining <= 0:
            return None
        try:
            if not select.select([descriptor], [], [], remaining)[0]:
                continue
            chunk = os.read(descriptor, _READ_BYTES)
        except (OSError, ValueError):  # a closed stdin: no more input
            return text
        if not chunk:
            return text
        chunks.append(chunk)


def _whole_object(text: str) -> bool:
    if not text.rstrip().endswith("}"):
        return False
    try:
        return isinstance(loads(text), dict)
    except (ValueError, RecursionError):
        return False


def loads(text: str) -> object:
    """``json.loads(text, parse_int=bounded_int)``; ValueError for any text it refuses (its
    message is json's to give: the full path reads such text again)."""
    if text.startswith("\ufeff"):
        raise ValueError("a byte order mark")
    start = len(text) - len(text.lstrip(_JSON_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("no JSON value") from None
    if len(text[end:].lstrip(_JSON_WHITESPACE)):
        raise ValueError("extra data")
    return value


def _forward(client: str, deadline: float | None, raw: str | None,
             server: tuple[str, str, Address], started: float) -> str | None:
    """The output of the event in ``raw`` as the server answers it; :class:`_FullPath` for
    an event this path does not handle. Failures are logged (fail open: None)."""
    if raw is None:
        raise _FullPath
    data = _event_data(raw)
    name, session_id = data["hook_event_name"], data["session_id"]
    role = event_role(client, name)
    transcript_path = _optional_text(data, "transcript_path")
    tail = tail_bytes(role, client, _text(data, "source"), _text(data, "trigger"))
    if not role or role in INGESTING or (transcript_path and tail == MAX_UPLOAD_BYTES):
        # unknown to ctxdb, an ingestion (it keeps the server's offsets), or a handoff to read
        raise _FullPath
    repo = None
    if role not in WITHOUT_REPO:
        from ctxdb.repo_identity import known_identity

        known = known_identity(_optional_text(data, "cwd") or os.getcwd())
        if known is None:
            raise _FullPath  # git must be asked (under the full path's deadline)
        repo = dict(zip(("repo_key", "name", "worktree", "branch"), known, strict=True))
    where = f"{client} {name} session {session_id}"
    try:
        return _post_event(client, name, role, deadline, raw, data, repo, transcript_path,
                           tail, server, started)
    except RemoteHookError as exc:  # expected, and said in full: no traceback
        _log(where, message=str(exc))
    except Exception as exc:
        _log(where, exc)
    return None


def _event_data(raw: str) -> dict[str, Any]:
    """The event's object when ``domain.hook_events.parse_event`` would accept it, else
    :class:`_FullPath` (which gives the typed error)."""
    try:
        data = loads(raw)
    except (ValueError, RecursionError):
        raise _FullPath from None
    if not isinstance(data, dict) or json_depth_over(data) \
            or not _optional_text(data, "hook_event_name") \
            or not _optional_text(data, "session_id"):
        raise _FullPath
    return data


def _post_event(client: str, name: str, role: str, deadline: float | None, raw: str,
                data: dict[str, Any], repo: dict[str, Any] | None,
                transcript_path: str | None, tail: int | None,
                server: tuple[str, str, Address], started: float) -> str | None:
    """What ``hooks.remote.forward`` sends and prints for an event of the short path, under
    the deadlines ``hooks.dispatch`` gives it."""
    import _socket

    url, token, address = server
    seconds = DEADLINES[role] if deadline is None else deadline
    if deadline is None:  # a server that does not answer costs about a second, as there
        seconds = min(seconds, STARTED + REMOTE_DEADLINE - started)
    answer_by = started + seconds - REMOTE_MARGIN
    connect_within = max(MIN_CONNECT_TIMEOUT, CONNECTED_BY - (time.monotonic() - STARTED))
    body: dict[str, Any] = {"client": client, "event": data, "host": _socket.gethostname(),
                            "repo": repo}
    transcript = None
    if transcript_path and tail is not None:
        transcript = tail_body(os.path.abspath(transcript_path), tail)
    if transcript is not None:
        body["transcript"] = transcript
    status, text = post(address, url, token, "".join(_encode(body, 0)).encode("utf-8"),
                        connect_within, answer_by)
    if status != 200:
        raise refusal(status, text, url)
    return _output(client, name, role, raw, text, url)


def _output(client: str, name: str, role: str, raw: str, text: bytes,
            url: str) -> str | None:
    """The answer's output, written again as ``domain.hook_events.context_output`` writes it;
    any answer but the expected shape goes to ``hooks.remote``'s reading, which says what
    is wrong with it."""
    try:
        context = _context(name, text)
    except (ValueError, KeyError, TypeError, RecursionError):
        from ctxdb.domain.hook_events import parse_event
        from ctxdb.hooks.remote import checked_output

        return checked_output(parse_event(client, raw), text, url)
    if context is None or not context or role not in CONTEXT_EVENTS:
        return None
    limit = injection_limit(client)
    if len(context) >= limit:
        context = context[: limit - 2] + "…"
    return ('{"hookSpecificOutput": {"hookEventName": '
            f'{_json.encode_basestring_ascii(name)}, "additionalContext": '
            f'{_json.encode_basestring_ascii(context)}}}}}')


def _context(name: str, text: bytes) -> str | None:
    """The injected text of a well-formed answer (None: no output); any other answer
    raises."""
    if len(text) > MAX_ANSWER_BYTES or text[:1] in (b"\xef", b"\xfe", b"\xff") \
            or b"\x00" in text[:4]:  # too long, or not UTF-8 as json.loads detects it
        raise ValueError(text[:4])
    answer = loads(text.decode("utf-8", "surrogatepass"))
    if not isinstance(answer, dict):
        raise TypeError(answer)
    output = answer["output"]
    if output is None:
        return None
    specific = output["hookSpecificOutput"]
    context = specific["additionalContext"]
    if specific["hookEventName"] != name or not isinstance(context, str):
        raise TypeError(specific)
    return context


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _log(where: str, exc: BaseException | None = None, message: str = "") -> None:
    from ctxdb.hooks.logfile import log_failure  # a failure's path only

    log_failure(where, exc, message)
