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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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


def run_hook(client: str, raw: str, load_settings: Callable[[], Settings],
             deadline: float | None = None) -> str | None:
    """Handle one event; returns what to print (None: nothing). Never raises.

    Whatever libraries write to stderr meanwhile (the PostgreSQL pool logs connection
    failures there) goes to the hook log instead: the agent's terminal stays clean.
    """
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        output = _run(client, raw, load_settings, deadline, captured)
    if captured.getvalue():
        log_failure(f"{client} hook: stderr", message=captured.getvalue().rstrip())
    return output


def _run(client: str, raw: str, load_settings: Callable[[], Settings],
         deadline: float | None, captured: io.StringIO) -> str | None:
    try:
        event = parse_event(client, raw, os.getppid())
    except Exception as exc:
        log_failure(f"{client} hook: bad input", exc)
        return None
    if not event.event:
        return None  # an event ctxdb does not handle: nothing to do, nothing to say
    seconds = DEADLINES[event.event] if deadline is None else deadline
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["output"] = _handle(event, load_settings)
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="ctxdb-hook", daemon=True)
    worker.start()
    worker.join(seconds)
    where = f"{client} {event.name} session {event.session.session_id}"
    if worker.is_alive():
        log_failure(where, message=f"deadline of {seconds:g} s exceeded; nothing was output"
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


def _handle(event: HookEvent, load_settings: Callable[[], Settings]) -> str | None:
    from ctxdb.service import Ctxdb

    with Ctxdb.open(load_settings()) as db:
        handler = HANDLERS[event.event]
        return handler(db, event)


def _repo(event: HookEvent) -> Any:
    from ctxdb.hooks.repo import repo_identity

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
                              session_id=event.session.session_id)
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
