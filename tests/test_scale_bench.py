"""The scale benchmark (bench/scale.py) runs end to end at small sizes and reports every
operation at every size.

A small run still does what the large one does: bulk-loads in steps through ctxdb's own
db copy path, checks through ctxdb that the loaded items are what ctxdb would have written
(counts, CRITICAL items, the search index, a search finding a loaded item, the next sequence
number; a failed check ends the run with an error), keeps a copy of each size and measures
them. Timings are not asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = {"store", "pack", "load CRITICAL", "search"}


def test_a_small_sqlite_run_reports_every_operation_at_every_size(tmp_path: Path) -> None:
    report = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--backend", "sqlite",
         "--sizes", "1200,2400", "--project-items", "1000", "--searches", "15",
         "--stores", "5", "--calls", "5", "--json", str(report)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path, check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(report.read_text())["results"]
    measured = {(r["size"], r["operation"]) for r in results}
    assert {(size, op) for size in (1200, 2400) for op in OPERATIONS} <= measured
    searches = [r for r in results if r["operation"] == "search"]
    assert all(r["calls"] == 15 and r["p50_ms"] > 0 for r in searches)
    assert "pack p50 at 2,400 / at 1,200" in done.stdout
    assert not list(tmp_path.rglob("*.db")), "the benchmark left database files behind"
