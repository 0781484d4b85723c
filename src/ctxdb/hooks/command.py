"""``ctxdb hook --client …`` without click: the path every agent event starts on.

A client starts one ``ctxdb`` process per event (on every prompt), and importing click and the
command tree costs more than the hook's own work. So ``ctxdb.cli.main.main`` asks
:func:`hook_arguments` first: a well-formed ``hook --client C [--deadline S]`` runs
:func:`run_hook_command` directly; anything else — ``--help``, a bad client or deadline, an
unknown option, global options before ``hook`` — returns None and goes through click, which
gives the usual help and usage errors. The click command (``ctxdb.cli.hook``) calls the same
:func:`run_hook_command`, so both paths behave alike.

This module imports nothing heavy at the top: ``main`` imports it in every ``ctxdb`` process.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

from ctxdb.hooks.invocation import INPUT_DEADLINE, print_output
from ctxdb.hooks.invocation import MIN_DEADLINE as MIN_DEADLINE  # where callers look
from ctxdb.hooks.invocation import hook_arguments as hook_arguments

if TYPE_CHECKING:
    from ctxdb.settings import Settings

_READ_BYTES = 64 * 1024


def run_hook_command(client: str, deadline: float | None,
                     load_settings: Callable[[], Settings] | None = None,
                     detach: bool = False) -> int:
    """Read the event on stdin, handle it, print the output if any. Always returns 0.

    ``load_settings`` defaults to the settings of the environment and config file (what
    ``ctxdb`` without ``--url``/``--config`` uses); it is called inside the deadline, which
    counts from here: waiting for the input is part of it. ``detach``: the caller is the
    ``ctxdb hook`` process itself, which may fork (see ``hooks.detached``); an in-process
    caller must not.
    """
    started = time.monotonic()
    wait = INPUT_DEADLINE if deadline is None else deadline
    try:
        raw = read_event(wait)
    except Exception as exc:  # the contract with the clients: exit 0, whatever happened
        from ctxdb.hooks.logfile import log_failure

        log_failure(f"{client} hook", exc)
        return 0
    return handle_input(client, deadline, raw, wait, started, load_settings, detach)


def handle_input(client: str, deadline: float | None, raw: str | None, wait: float,
                 started: float, load_settings: Callable[[], Settings] | None = None,
                 detach: bool = False) -> int:
    """Handle the event read from stdin (None: no whole event came within ``wait``
    seconds); ``started`` is when the hook began reading it. Always returns 0. The remote
    short path (``hooks.remote_entry``) hands the events it does not handle itself here."""
    from ctxdb.hooks.dispatch import run_hook
    from ctxdb.hooks.logfile import log_failure

    try:
        if raw is None:
            log_failure(f"{client} hook: bad input",
                        message=f"stdin was not closed within {wait:g} s and held no whole "
                        "JSON object; nothing was done")
            return 0
        output = run_hook(client, raw, load_settings or _default_settings, deadline,
                          started=started, detach=detach)
        if output is not None:
            print_output(output)
    except Exception as exc:  # the contract with the clients: exit 0, whatever happened
        log_failure(f"{client} hook", exc)
    return 0


def read_event(seconds: float) -> str | None:
    """The text on stdin once it is closed, or as soon as it holds a whole JSON object (a
    client may leave the pipe open); None when neither happens within ``seconds``.

    A daemon thread reads, so a pipe nobody closes cannot keep the process alive.
    """
    reader = _StdinReader()
    threading.Thread(target=reader.run, name="ctxdb-hook-stdin", daemon=True).start()
    give_up = time.monotonic() + seconds
    with reader.changed:
        while True:
            text = b"".join(reader.chunks).decode("utf-8", errors="replace")
            if reader.finished or _whole_object(text):
                return text
            remaining = give_up - time.monotonic()
            if remaining <= 0:
                return None
            reader.changed.wait(remaining)


class _StdinReader:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.finished = False
        self.changed = threading.Condition()

    def run(self) -> None:
        try:
            read = _stdin_reader()
            while chunk := read(_READ_BYTES):  # what has arrived, up to the limit
                with self.changed:
                    self.chunks.append(chunk)
                    self.changed.notify()
        except (OSError, ValueError, AttributeError):  # no stdin, or a closed one: no input
            pass
        with self.changed:
            self.finished = True
            self.changed.notify()


def _stdin_reader() -> Callable[[int], bytes]:
    """Reads of stdin's file descriptor, which hold no lock of Python's buffered stdin: a
    thread blocked in one cannot stop the interpreter from exiting. A stdin replaced by one
    without a descriptor (in-process callers) is read through its buffer."""
    try:
        descriptor = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        buffer: BinaryIO = sys.stdin.buffer
        return buffer.read
    return lambda size: os.read(descriptor, size)


def _whole_object(text: str) -> bool:
    """True when ``text`` is a complete JSON object (so no more input can belong to it)."""
    if not text.rstrip().endswith("}"):
        return False
    import json

    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


def _default_settings() -> Settings:
    from ctxdb.settings import load_settings

    return load_settings()
