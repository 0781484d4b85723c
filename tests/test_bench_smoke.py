"""The benchmark runs end to end and prints its ratio table.

Only completion and the shape of the output are checked: timings on a shared machine are
evidence for docs/benchmarks.md, never a test assertion.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = (
    "single durable store", "single durable store, same statements",
    "load CRITICAL (pure read)", "load_for_instance (register + read)",
    "load whole project", "budgeted pack", "8 writer processes",
    "memory put (compare-and-set)", "memory put, same statements", "memory get by key",
    "search, p50 of a query mix", "search, a word in most items",
)
# A target is a ratio ("<= 1.25x") or, for the search latency, a bound in ms ("<= 20.00 ms").
ROW = re.compile(r"^(?P<operation>.+?)\s{2,}sqlite\s+[\d,.]+ (?:ops/s|ms)\s+[\d,.]+ "
                 r"(?:ops/s|ms)\s+(?P<ratio>\d+\.\d\d)x\s+(?:>=|<=) [\d,.]+ ?(?:x|ms)\s+"
                 r"\d+\s+(?P<result>PASS|FAIL)\s*$")


def test_quick_sqlite_run_prints_a_ratio_table(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--backend", "sqlite",
         "--json", str(report)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path, check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = {m["operation"]: m for m in map(ROW.match, done.stdout.splitlines()) if m}
    assert sorted(rows) == sorted(OPERATIONS), done.stdout
    assert all(float(row["ratio"]) > 0 for row in rows.values())
    saved = json.loads(report.read_text())
    assert sorted(r["operation"] for r in saved["results"]) == sorted(OPERATIONS)
    assert {r["backend"] for r in saved["results"]} == {"sqlite"}
    search = next(r for r in saved["results"] if r["operation"] == "search, p50 of a query mix")
    assert search["absolute"] and search["target_text"] == "<= 20.00 ms"
    assert search["passed"] == (search["ctxdb"] <= 20.0)
    assert not list(tmp_path.glob("*.db")), "the benchmark left database files behind"
