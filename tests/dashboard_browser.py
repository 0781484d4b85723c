"""What the dashboard's browser tests share: the system's headless Chromium driven by
Playwright, and a page that records every console error (the server is
``remote_server.served``, as for every test of ``ctxdb serve``).

Playwright never downloads a browser here: it drives the Chromium of the operating system
(Debian's ``chromium`` package), found from ``CTXDB_TEST_CHROMIUM`` or on PATH. Without one
the tests are skipped, and under ``CTXDB_REQUIRE_BROWSER=1`` (CI: ``.ci/run`` installs the
package) they fail instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

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
