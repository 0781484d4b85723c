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

import math
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from ctxdb.settings import Settings

MIN_DEADLINE = 0.05  # seconds; the click option's lower bound too
# Seconds for the event to arrive on stdin when no --deadline is given. The clients write it
# at once; one that leaves stdin open after a whole event is served as soon as it is there.
INPUT_DEADLINE = 1.0
_OPTIONS = ("--client", "--deadline")
_READ_BYTES = 64 * 1024


def hook_arguments(argv: list[str]) -> tuple[str, float | None] | None:
    """``(client, deadline)`` when ``argv`` is exactly a valid ``hook`` invocation, else None.

    Accepts only what click would accept with the same meaning (``--opt value`` or
    ``--opt=value``, each option at most once), so the fast path never changes an outcome.
    """
    if not argv or argv[0] != "hook":
        return None
    from ctxdb.domain.agents import CLIENTS  # imported only on the hook path

    values: dict[str, str] = {}
    rest = iter(argv[1:])
    for argument in rest:
        name, equals, value = argument.partition("=")
        if name not in _OPTIONS or name in values:
            return None
        if not equals:
            value = next(rest, "")
            if not value or value.startswith("-"):
                return None
        values[name] = value
    client = values.get("--client")
    if client not in CLIENTS:
        return None
    if "--deadline" not in values:
        return client, None
    deadline = _deadline(values["--deadline"])
    return None if deadline is None else (client, deadline)


def _deadline(text: str) -> float | None:
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= MIN_DEADLINE else None


def run_hook_command(client: str, deadline: float | None,
                     load_settings: Callable[[], Settings] | None = None) -> int:
    """Read the event on stdin, handle it, print the output if any. Always returns 0.

    ``load_settings`` defaults to the settings of the environment and config file (what
    ``ctxdb`` without ``--url``/``--config`` uses); it is called inside the deadline, which
    counts from here: waiting for the input is part of it.
    """
    from ctxdb.hooks.dispatch import run_hook
    from ctxdb.hooks.logfile import log_failure

    started = time.monotonic()
    try:
        wait = INPUT_DEADLINE if deadline is None else deadline
        raw = read_event(wait)
        if raw is None:
            log_failure(f"{client} hook: bad input",
                        message=f"stdin was not closed within {wait:g} s and held no whole "
                        "JSON object; nothing was done")
            return 0
        output = run_hook(client, raw, load_settings or _default_settings, deadline,
                          started=started)
        if output is not None:
            _print(output)
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


def _print(output: str) -> None:
    """Write the output as UTF-8 bytes, whatever encoding ``sys.stdout`` was given."""
    try:
        sys.stdout.buffer.write((output + "\n").encode("utf-8", errors="backslashreplace"))
        sys.stdout.buffer.flush()
    except (OSError, ValueError, AttributeError):  # the client stopped reading (or gave
        pass  # no stdout): nothing more to tell it


def _default_settings() -> Settings:
    from ctxdb.settings import load_settings

    return load_settings()
