"""bench/dashboard.py runs end to end on a small fleet and prints its table (timings are
evidence for docs/dashboard.md, never a test assertion)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = 9


def test_a_small_sqlite_run_prints_every_page(tmp_path: Path) -> None:
    report = tmp_path / "dashboard.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dashboard.py"), "--items", "400",
         "--instances", "30", "--repeat", "1", "--backend", "sqlite", "--json", str(report)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if " sqlite " in line]
    assert len(rows) == PAGES, done.stdout
    saved = json.loads(report.read_text())
    assert (saved["items"], saved["instances"]) == (400, 30)
    assert all(row["first_ms"] > 0 and row["poll_304_ms"] > 0 for row in saved["results"])
    assert not list(tmp_path.glob("*.db")), "the benchmark left database files behind"
