"""Running a command for ``ctxdb command run``: output captured within a bound, timings.

The command's standard output and standard error are read together through one pipe (in the
order the command wrote them, as a terminal shows them), optionally echoed as they arrive,
and kept within ``limit`` bytes: the first and the last half, with a line saying how much was
left out between them. The command runs in its own process group with stdin closed (agents
run commands non-interactively), so a timeout or Ctrl-C stops it and whatever it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 65536
GRACE_SECONDS = 2.0  # between SIGTERM and SIGKILL when a command must stop
READER_JOIN_SECONDS = 5.0  # a daemon the command left behind may hold the pipe open

# The exit statuses a shell and timeout(1) use when the command could not run or ran out of
# time; `ctxdb command run` exits with them too.
EXIT_TIMED_OUT = 124
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127


class BoundedCapture:
    """The first and the last ``limit // 2`` bytes of a stream, and how many were dropped."""

    def __init__(self, limit: int) -> None:
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def feed(self, chunk: bytes) -> None:
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail += chunk
        excess = len(self.tail) - self.tail_limit
        if excess > 0:
            self.dropped += excess
            del self.tail[:excess]

    def text(self) -> str:
        """The kept output as text (undecodable bytes and NULs replaced: the databases keep
        text, and PostgreSQL's cannot hold NUL)."""
        if not self.dropped:
            return _decode(bytes(self.head + self.tail))
        return (f"{_decode(bytes(self.head))}\n… [{self.dropped} bytes of output left out] …\n"
                f"{_decode(bytes(self.tail))}")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


@dataclass
class Outcome:
    """How a command ended. ``exit_code`` is the process's (negative: killed by that signal),
    ``None`` (and no duration) when it could not be started; ``status_code`` is what
    ``ctxdb`` exits with."""

    exit_code: int | None
    status_code: int
    output: str
    error: str | None
    duration_ms: int | None
    interrupted: bool = False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's process group, then SIGKILL it if it does not go."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            process.wait(GRACE_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


def _read(stream: BinaryIO, capture: BoundedCapture, echo: BinaryIO | None) -> None:
    while chunk := os.read(stream.fileno(), CHUNK):
        capture.feed(chunk)
        if echo is not None:
            echo.write(chunk)
            echo.flush()


def _status_code(returncode: int) -> int:
    """A shell's convention: 128 + N for a command killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def execute(argv: Sequence[str], *, cwd: str | None, timeout: float | None, limit: int,
            echo: BinaryIO | None, on_start: Callable[[], object] = lambda: None) -> Outcome:
    """Run ``argv`` to its end (or ``timeout`` seconds); see the module's docstring.
    ``on_start`` is called once the process exists; if it fails, the process is stopped."""
    started = time.monotonic()
    try:
        process = subprocess.Popen(list(argv), cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    except FileNotFoundError:
        return Outcome(None, EXIT_NOT_FOUND, "", f"command not found: {argv[0]}", None)
    except PermissionError:
        return Outcome(None, EXIT_NOT_EXECUTABLE, "", f"permission denied: {argv[0]}", None)
    except OSError as exc:
        return Outcome(None, EXIT_NOT_EXECUTABLE, "", f"cannot run {argv[0]}: {exc}", None)
    try:
        on_start()
    except BaseException:
        _stop(process)
        raise
    capture = BoundedCapture(limit)
    assert process.stdout is not None
    reader = threading.Thread(target=_read, args=(process.stdout, capture, echo), daemon=True)
    reader.start()
    error: str | None = None
    interrupted = False
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
        error = f"timed out after {timeout:g} s"
    except KeyboardInterrupt:
        _stop(process)
        error, interrupted = "interrupted", True
    reader.join(READER_JOIN_SECONDS)
    duration_ms = round((time.monotonic() - started) * 1000)
    returncode = process.wait()
    if not reader.is_alive():
        process.stdout.close()
    if error is None:
        status = _status_code(returncode)
        if returncode < 0:
            error = f"killed by signal {-returncode}"
        elif returncode != 0:
            error = f"exit status {returncode}"
    else:
        status = 130 if interrupted else EXIT_TIMED_OUT
    return Outcome(returncode, status, capture.text(), error, duration_ms, interrupted)
