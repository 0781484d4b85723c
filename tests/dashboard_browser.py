"""What the dashboard's browser tests share: a real uvicorn server in a thread, the system's
headless Chromium driven by Playwright, and a page that records every console error.

Playwright never downloads a browser here: it drives the Chromium of the operating system
(Debian's ``chromium`` package), found from ``CTXDB_TEST_CHROMIUM`` or on PATH. Without one
the tests are skipped, and under ``CTXDB_REQUIRE_BROWSER=1`` (CI: ``.ci/run`` installs the
package) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from ctxdb.service import Ctxdb

REQUIRE_BROWSER = os.environ.get("CTXDB_REQUIRE_BROWSER", "") in ("1", "true", "yes")
# Screenshots for docs/dashboard.md, written only when asked (a normal run leaves the tree).
SCREENSHOTS = os.environ.get("CTXDB_DASHBOARD_SCREENSHOTS", "")
DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def chromium_path() -> str:
    program = os.environ.get("CTXDB_TEST_CHROMIUM") or shutil.which("chromium")
    if program and os.access(program, os.X_OK):
        return program
    problem = (f"CTXDB_TEST_CHROMIUM={program} is not an executable file" if program
               else "set CTXDB_TEST_CHROMIUM to a Chromium program or put chromium on PATH")
    if REQUIRE_BROWSER:
        pytest.fail(f"a browser is required (CTXDB_REQUIRE_BROWSER=1): {problem}")
    pytest.skip(f"no Chromium: {problem} (Debian: apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(db: Ctxdb) -> Iterator[str]:
    """``ctxdb serve``'s application under uvicorn on a loopback port; yields its base URL."""
    from ctxdb.http.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(db), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


class ConsoleWatch:
    """Every console error and uncaught exception of a page (CSP violations included)."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} at {message.location}")


def screenshot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMAGES / f"dashboard-{name}.png"), full_page=True)
