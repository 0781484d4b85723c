"""Running one hook event: parse, open the store, call the service, under a deadline.

The contract with the clients: exit 0 always, print nothing or one JSON object, never block
the agent. So every failure (bad input, unreachable database, a bug) is logged to the hook
log and the hook prints nothing; the database work runs in a worker thread, and when it has
not finished by the event's deadline the process leaves without waiting for it (an
uncommitted transaction is rolled back by the database).

A SessionEnd's work (on a database of its own, not through a server) is not abandoned at the
deadline: when the hook runs as a process of its own it goes on in a detached process with a
longer deadline (``hooks.detached``), and the hook exits at its deadline as usual.
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

from ctxdb.domain.hook_events import HookEvent, context_output, parse_event
from ctxdb.hooks.invocation import (
    CONNECTED_BY,
    DETACHED_DEADLINE,
    DETACHED_EVENTS,
    MIN_CONNECT_TIMEOUT,
    REMOTE_MARGIN,
)
from ctxdb.hooks.invocation import DEADLINES as DEADLINES
from ctxdb.hooks.invocation import REMOTE_DEADLINE as REMOTE_DEADLINE
from ctxdb.hooks.logfile import log_failure

if TYPE_CHECKING:
    from ctxdb.domain.agents import RepoIdentity
    from ctxdb.settings import Settings

_STARTED = time.monotonic()


def run_hook(client: str, raw: str, load_settings: Callable[[], Settings],
             deadline: float | None = None, started: float | None = None,
             detach: bool = False) -> str | None:
    """Handle one event; returns what to print (None: nothing). Never raises.

    The deadline counts from ``started`` (a ``time.monotonic()`` reading: when the hook began
    reading its input), else from now. Whatever libraries write to stderr meanwhile (the
    PostgreSQL pool logs connection failures there) goes to the hook log instead: the agent's
    terminal stays clean. ``detach``: this process is the hook's own (not an in-process
    caller's), so a SessionEnd's work may go on in a detached process past the deadline.
    """
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        output = _run(client, raw, load_settings, deadline, captured,
                      time.monotonic() if started is None else started, detach)
    if captured.getvalue():
        log_failure(f"{client} hook: stderr", message=captured.getvalue().rstrip())
    return output


def _run(client: str, raw: str, load_settings: Callable[[], Settings],
         deadline: float | None, captured: io.StringIO, started: float,
         detach: bool) -> str | None:
    try:
        event = parse_event(client, raw, os.getppid())
    except Exception as exc:
        log_failure(f"{client} hook: bad input", exc)
        return None
    if not event.event:
        return None  # an event ctxdb does not handle: nothing to do, nothing to say
    seconds = DEADLINES[event.event] if deadline is None else deadline
    if detach and event.event in DETACHED_EVENTS:
        from ctxdb.hooks.detached import can_detach

        if can_detach():
            return _run_detached(event, load_settings, seconds, deadline is not None,
                                 captured, started)
    return _within_deadline(event, load_settings, seconds, deadline is not None, captured,
                            started)


def _run_detached(event: HookEvent, load_settings: Callable[[], Settings], seconds: float,
                  explicit: bool, captured: io.StringIO, started: float) -> str | None:
    """Run the event's work in a detached process, waiting for it until the deadline (it
    prints nothing: there is nothing to wait for). Through a server (milliseconds), or when
    no process can be made, the work is done here as for any event.

    The settings are loaded here, before the fork, to tell a server from a database (the
    environment and a small file); the store is opened in the detached process only.
    """
    where = f"{event.client} {event.name} session {event.session.session_id}"
    try:
        settings = load_settings()
    except Exception as exc:
        _log_error(where, exc)
        return None

    def loaded() -> Settings:
        return settings

    if not settings.is_server:
        from ctxdb.hooks.detached import detach

        if detach(lambda: _finish_detached(event, loaded, seconds), started + seconds):
            return None
    return _within_deadline(event, loaded, seconds, explicit, captured, started)


def _finish_detached(event: HookEvent, load_settings: Callable[[], Settings],
                     seconds: float) -> None:
    """The detached process's work: the event's, under a deadline of its own."""
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        _within_deadline(event, load_settings, max(DETACHED_DEADLINE, seconds), True,
                         captured, time.monotonic(), detached=True)
    if captured.getvalue():
        log_failure(f"{event.client} hook: stderr", message=captured.getvalue().rstrip())


def _within_deadline(event: HookEvent, load_settings: Callable[[], Settings],
                     seconds: float, explicit: bool, captured: io.StringIO, started: float,
                     detached: bool = False) -> str | None:
    """The event's work in a worker thread, waited for until the deadline (then the
    process exits at once); what to print, or None."""
    client = event.client
    # What the worker shares with this thread: what it is doing (for the log) and the
    # deadline, which it shortens for a server when none was given (see REMOTE_DEADLINE).
    outcome: dict[str, Any] = {
        "doing": "starting", "started": started, "explicit": explicit, "seconds": seconds,
        "detached": detached}

    def work() -> None:
        try:
            outcome["output"] = _handle(event, load_settings, outcome)
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="ctxdb-hook", daemon=True)
    worker.start()
    while worker.is_alive() and (left := outcome["seconds"] - (time.monotonic() - started)) > 0:
        worker.join(min(left, 0.1))  # returns as soon as the worker ends
    where = f"{client} {event.name} session {event.session.session_id}"
    if worker.is_alive():
        log_failure(where, message=f"deadline of {outcome['seconds']:g} s exceeded while "
                    f"{outcome['doing']}; nothing was output"
                    + (f"\n{captured.getvalue().rstrip()}" if captured.getvalue() else ""))
        _leave_now()
    if "error" in outcome:
        _log_error(where, outcome["error"])
        return None
    output: str | None = outcome.get("output")
    return output


def _log_error(where: str, error: BaseException) -> None:
    from ctxdb.hooks.remote import RemoteHookError

    if isinstance(error, RemoteHookError):  # expected, and said in full: no traceback
        log_failure(where, message=str(error))
    else:
        log_failure(where, error)


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
    connect_within = max(MIN_CONNECT_TIMEOUT, CONNECTED_BY - (time.monotonic() - _STARTED))
    if settings.is_server:
        from ctxdb.hooks.remote import forward
        from ctxdb.hooks.remote_transcript import handoff_body, saves_handoff

        handoff, reading = None, 0.0
        if saves_handoff(event):  # read here, as a local hook reads it: not the server's time
            progress["doing"] = "reading the transcript for its handoff"
            began = time.monotonic()
            handoff = handoff_body(event)
            reading = time.monotonic() - began
        if not progress["explicit"]:  # counted from the start, like CONNECTED_BY
            progress["seconds"] = min(progress["seconds"], _STARTED + REMOTE_DEADLINE
                                      + reading - progress["started"])
        progress["doing"] = f"asking the server at {settings.url}"
        # The forward gives up (and says why) just before the dispatcher would.
        answer_by = progress["started"] + progress["seconds"] - REMOTE_MARGIN
        return forward(event, _repo, settings, connect_within, answer_by, handoff)
    if not progress["detached"]:  # a detached process costs nobody a prompt: no hurry
        settings = settings.replace(pg_connect_timeout=min(settings.pg_connect_timeout,
                                                           connect_within))
    progress["doing"] = "opening the database"
    from ctxdb.service import Ctxdb

    with Ctxdb.open(settings) as db:
        progress["doing"] = f"handling the event ({db.storage.describe()})"
        text = db.hook_events.handle(event, lambda: _repo(event))
        return context_output(event, text) if text else None


def _repo(event: HookEvent) -> RepoIdentity:
    from ctxdb.repo_identity import repo_identity

    return repo_identity(event.session.cwd or os.getcwd())
