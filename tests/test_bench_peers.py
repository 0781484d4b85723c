"""bench/peers.py without the peers: the raw driver and ctxdb side by side at a tiny size.

The peers themselves (LangGraph, the OpenAI Agents SDK) live only in the environment
``make bench-peers`` makes; here the benchmark must run its ctxdb and raw contenders end to
end, find every acknowledged write, clean up after itself, and refuse a peer it cannot import
with a message that says how to get it. Timings are never asserted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "peers.py"
WARMUP_WRITES = 20  # bench/peer_base.py: untimed writes before the timed ones


def run_peers(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=240, cwd=tmp_path, check=False,
                          env={**os.environ, **(env or {})})


def test_raw_and_ctxdb_on_sqlite_find_every_write(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    report = tmp_path / "peers.json"
    done = run_peers(tmp_path, "--contenders", "raw-sqlite,ctxdb-sqlite", "--items", "30",
                     "--runs", "2", "--writers", "2", "--writes-per-writer", "5",
                     "--reads", "10", "--loads", "2", "--round", "7", "--json", str(report),
                     env={"TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    rows = re.findall(r"^\| (raw sqlite3|\*\*ctxdb\*\*) \| sqlite \| ([\d,]+) \| (\d+\.\d\d)×"
                      r" \|.*\| ([\d,]+) / ([\d,]+) \(all found\) \|$", done.stdout, re.M)
    # Both contenders in both write tables, each with every write found.
    assert sorted(row[0] for row in rows) == ["**ctxdb**", "**ctxdb**", "raw sqlite3",
                                              "raw sqlite3"], done.stdout
    assert {row[3] for row in rows} == {f"{2 * (30 + WARMUP_WRITES)}", f"{2 * 2 * 5}"}
    saved = json.loads(report.read_text())["contenders"]
    assert sorted(saved) == ["ctxdb-sqlite", "raw-sqlite"]
    for figures in saved.values():
        assert figures["intact"] and not figures["errors"] and not figures["mismatches"]
        assert figures["single_found"] == figures["single_acknowledged"] == 2 * 50
        assert figures["writer_found"] == figures["writer_acknowledged"] == 2 * 2 * 5
        assert len(figures["write_latencies"]) == 2 * 30
        for name in ("write_rates", "read_rates", "load_seconds", "writer_rates"):
            assert len(figures[name]) == 2 and min(figures[name]) > 0, name
    assert "synchronous=FULL" in done.stdout and "1.00×" in done.stdout
    assert not list(scratch.iterdir()), "the benchmark left files behind"


@pytest.mark.postgres
def test_raw_and_ctxdb_on_postgres_find_every_write_and_drop_their_databases(
        tmp_path: Path, pg_url: str) -> None:
    import psycopg

    report = tmp_path / "peers.json"
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--contenders", "raw-postgres,ctxdb-postgres",
         "--items", "15", "--runs", "1", "--writers", "2", "--writes-per-writer", "4",
         "--reads", "5", "--loads", "1", "--pg-url", PG_ADMIN_URL, "--json", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr
    assert "synchronous_commit=on" in stdout
    saved = json.loads(report.read_text())["contenders"]
    for figures in saved.values():
        assert figures["intact"] and not figures["errors"]
        assert figures["single_found"] == figures["single_acknowledged"] == 15 + WARMUP_WRITES
        assert figures["writer_found"] == figures["writer_acknowledged"] == 2 * 4
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        left = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                             (f"peers_bench_%_{process.pid}_%",)).fetchall()
    assert not left, "the benchmark left its databases behind"


def test_payloads_average_about_490_bytes() -> None:
    code = ("import json, statistics, sys; sys.argv = ['peers']; import peers; "
            "print(statistics.fmean(len(json.dumps(v)) for v in peers.payloads(2000)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT / "bench", timeout=60, check=True)
    assert 470 <= float(done.stdout) <= 510


def test_unknown_contenders_and_missing_peers_are_refused(tmp_path: Path) -> None:
    done = run_peers(tmp_path, "--contenders", "raw-sqlite,sqlite-vec")
    assert done.returncode == 2
    assert "unknown contenders ['sqlite-vec']" in done.stderr
    assert "langgraph-postgres" in done.stderr  # the choices are named
    # A peer that cannot be imported (here: shadowed by a broken package) is named with the
    # package that provides it, before anything is measured.
    broken = tmp_path / "shadow" / "agents"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('not installed')\n")
    done = run_peers(tmp_path, "--contenders", "raw-sqlite,agents-sqlite",
                     env={"PYTHONPATH": str(broken.parent)})
    assert done.returncode == 2
    assert "agents-sqlite needs openai-agents" in done.stderr
    assert "make bench-peers" in done.stderr
    assert not done.stdout
