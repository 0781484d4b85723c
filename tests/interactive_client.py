"""Driving a client's interactive terminal UI from a test: the program runs on a
pseudo-terminal of a fixed size, a thread drains what it draws, and the test types into it.

The UI is not parsed: what the test waits for is observable elsewhere (a request reaching the
mock, a row in ctxdb's database, a line in the client's session file). Only the typed text is
looked for on the screen, to know the input box took it before Enter is pressed.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROWS, COLUMNS = 50, 160
# Escape sequences (cursor moves, colours) between the characters the UI draws.
ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")


class TerminalProgram:
    """A program on a pseudo-terminal; use as a context manager (the program is killed, with
    its process group, when the block ends)."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.argv, self.cwd, self.env = argv, cwd, env
        self.output = bytearray()
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.master = -1

    def __enter__(self) -> TerminalProgram:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=slave,
                                        stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, 9)
        self.process.wait(timeout=30)
        os.close(self.master)

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the program is gone and the terminal closed
                return
            if not data:
                return
            with self.lock:
                self.output.extend(data)

    def screen_text(self) -> str:
        """Everything drawn so far, escape sequences removed."""
        with self.lock:
            raw = bytes(self.output)
        return ESCAPES.sub(b"", raw).decode("utf-8", "replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait_for(self, condition: Callable[[], object], timeout: float, what: str) -> None:
        """Wait until ``condition()`` is true; fail naming ``what`` (and the screen's end)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline or not self.alive():
                state = "running" if self.alive() else "exited"
                raise AssertionError(f"timed out waiting for {what} (program {state}); "
                                     f"screen ends with:\n{self.screen_text()[-2000:]}")
            time.sleep(0.1)

    def submit(self, text: str, done: Callable[[], object], timeout: float) -> None:
        """Type ``text``, then Enter until ``done()`` (the prompt reached the model).

        Enter is pressed again while nothing happened: a UI still busy (a hook running, the
        previous answer being drawn) can drop a key press, and Enter on an empty input box
        does nothing, so pressing it again cannot send anything twice.
        """
        self.type(text)
        self.wait_for(lambda: text in self.screen_text()[-20_000:], timeout,
                      f"the input box to show {text!r}")
        deadline = time.monotonic() + timeout
        while True:
            self.type("\r")
            press_until = time.monotonic() + 3.0
            while time.monotonic() < press_until:
                if done():
                    return
                time.sleep(0.1)
            if time.monotonic() > deadline or not self.alive():
                raise AssertionError(f"{text!r} did not reach the model; screen ends with:\n"
                                     f"{self.screen_text()[-2000:]}")
