"""Running one hook event: parse, open the store, call the service, under a deadline.

The contract with the clients: exit 0 always, print nothing or one JSON object, never block
the agent. So every failure (bad input, unreachable database, a bug) is logged to the hook
log and the hook prints nothing; the database work runs in a worker thread, and when it has
not finished by the event's deadline the process leaves without waiting for it (an
uncommitted transaction is rolled back by the database).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ctxdb.domain.agents import AUTO_PRE_COMPACT_EVERY_TURN
from ctxdb.hooks.logfile import log_failure
from ctxdb.hooks.payload import HookEvent, context_output, parse_event

if TYPE_CHECKING:
    from ctxdb.service import Ctxdb
    from ctxdb.settings import Settings

# Seconds of database work allowed per event, well inside the clients' timeouts (all
# SessionEnd hooks share 1.5 s; UserPromptSubmit has 30 s, the others 60 s by default).
DEADLINES = {
    "SessionStart": 10.0,
    "UserPromptSubmit": 5.0,
    "PreCompact": 25.0,
    "PostCompact": 25.0,
    "Stop": 25.0,
    "SubagentStop": 25.0,
    "SessionEnd": 1.0,
}
# A server that does not answer must not cost every prompt its whole deadline: the hook
# logs why and exits within about a second of its start, whatever its imports took on a busy
# machine. So its PostgreSQL connection must be made within CONNECTED_BY seconds of this
# module's import (less if pg_connect_timeout says so), but is given at least
# MIN_CONNECT_TIMEOUT. A server slower to connect would slow every prompt anyway.
CONNECTED_BY = 0.6
MIN_CONNECT_TIMEOUT = 0.2
_STARTED = time.monotonic()


def run_hook(client: str, raw: str, load_settings: Callable[[], Settings],
             deadline: float | None = None, started: float | None = None) -> str | None:
    """Handle one event; returns what to print (None: nothing). Never raises.

    The deadline counts from ``started`` (a ``time.monotonic()`` reading: when the hook began
    reading its input), else from now. Whatever libraries write to stderr meanwhile (the
    PostgreSQL pool logs connection failures there) goes to the hook log instead: the agent's
    terminal stays clean.
    """
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        output = _run(client, raw, load_settings, deadline, captured,
                      time.monotonic() if started is None else started)
    if captured.getvalue():
        log_failure(f"{client} hook: stderr", message=captured.getvalue().rstrip())
    return output


def _run(client: str, raw: str, load_settings: Callable[[], Settings],
         deadline: float | None, captured: io.StringIO, started: float) -> str | None:
    try:
        event = parse_event(client, raw, os.getppid())
    except Exception as exc:
        log_failure(f"{client} hook: bad input", exc)
        return None
    if not event.event:
        return None  # an event ctxdb does not handle: nothing to do, nothing to say
    seconds = DEADLINES[event.event] if deadline is None else deadline
    outcome: dict[str, Any] = {"doing": "starting"}

    def work() -> None:
        try:
            outcome["output"] = _handle(event, load_settings, outcome)
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="ctxdb-hook", daemon=True)
    worker.start()
    worker.join(max(0.0, seconds - (time.monotonic() - started)))
    where = f"{client} {event.name} session {event.session.session_id}"
    if worker.is_alive():
        log_failure(where, message=f"deadline of {seconds:g} s exceeded while "
                    f"{outcome['doing']}; nothing was output"
                    + (f"\n{captured.getvalue().rstrip()}" if captured.getvalue() else ""))
        _leave_now()
    if "error" in outcome:
        log_failure(where, outcome["error"])
        return None
    output: str | None = outcome.get("output")
    return output


def _leave_now() -> None:
    """Exit 0 at once, abandoning the worker thread (and its open transaction)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _handle(event: HookEvent, load_settings: Callable[[], Settings],
            progress: dict[str, Any]) -> str | None:
    """Handle the event; ``progress["doing"]`` says what for the log, should time run out."""
    progress["doing"] = "loading the settings"
    settings = load_settings()
    left = CONNECTED_BY - (time.monotonic() - _STARTED)
    settings = settings.replace(pg_connect_timeout=min(
        settings.pg_connect_timeout, max(MIN_CONNECT_TIMEOUT, left)))
    progress["doing"] = "opening the database"
    from ctxdb.service import Ctxdb

    with Ctxdb.open(settings) as db:
        progress["doing"] = f"handling the event ({db.storage.describe()})"
        handler = HANDLERS[event.event]
        return handler(db, event)


def _repo(event: HookEvent) -> Any:
    from ctxdb.repo_identity import repo_identity

    return repo_identity(event.session.cwd or os.getcwd())


def _session_start(db: Ctxdb, event: HookEvent) -> str | None:
    source = event.text("source") or "startup"
    tokens = event.fields.get("context_tokens")
    result = db.sessions.start(
        event.session, source, _repo(event),
        context_tokens=tokens if isinstance(tokens, int) and not isinstance(tokens, bool)
        else None,
    )
    return context_output(event, result["text"])


def _prompt(db: Ctxdb, event: HookEvent) -> str | None:
    from ctxdb.errors import InstanceNotFoundError

    try:
        db.sessions.prompt(event.session)
    except InstanceNotFoundError:  # installed mid-session: register it now
        db.sessions.prompt(event.session, _repo(event))
    return None


def _pre_compact(db: Ctxdb, event: HookEvent) -> str | None:
    if event.client in AUTO_PRE_COMPACT_EVERY_TURN and event.text("trigger") == "auto":
        # Fired on every turn, compression or not: a handoff per turn would bury the real
        # ones. The session's handoff is made from its transcript when it stops.
        return None
    db.sessions.save_before_compaction(
        event.session, event.text("trigger"), event.text("custom_instructions"),
        _repo(event))
    db.continuity.settle_for_session(event.session)
    return None  # PreCompact cannot add context: the reload is SessionStart(compact)


def _post_compact(db: Ctxdb, event: HookEvent) -> str | None:
    _ingest(db, event)
    summary = event.text("compact_summary")
    if summary:
        db.sessions.record_compact_summary(event.session, summary)
    return None


def _ingest(db: Ctxdb, event: HookEvent) -> str | None:
    if event.session.transcript_path:
        db.transcripts.ingest(event.session.transcript_path,
                              session_id=event.session.session_id, client=event.client)
    # Sessions of the project that stopped without a handoff get one (crash detection does
    # not wait for a command); one indexed read when there are none.
    db.continuity.settle_for_session(event.session)
    return None


def _session_end(db: Ctxdb, event: HookEvent) -> str | None:
    db.sessions.end(event.session, event.text("reason"))
    return None


HANDLERS: dict[str, Callable[[Ctxdb, HookEvent], str | None]] = {
    "SessionStart": _session_start,
    "UserPromptSubmit": _prompt,
    "PreCompact": _pre_compact,
    "PostCompact": _post_compact,
    "Stop": _ingest,
    "SubagentStop": _ingest,
    "SessionEnd": _session_end,
}
