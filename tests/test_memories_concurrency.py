"""Lost updates: many processes incrementing one memory with compare-and-set, on both backends.

Every worker retries on conflict until it has its share of acknowledged increments; the final
value must be exactly the number of acknowledged increments, every acknowledged increment
must have written its own version, the workers racing on the first insert must produce one
creator, and every failed attempt must have been a VersionConflictError (anything else fails
the worker).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from ctxdb.storage.base import raw
from ctxdb.storage.search_text import index_terms

WORKERS = 8
INCREMENTS_PER_WORKER = 200
WORKER = Path(__file__).parent / "workers" / "memory_cas_worker.py"
NAMESPACE, KEY = "test:counters", "shared"


def start_workers(
    settings: Settings, project_id: str, folder: Path
) -> list[subprocess.Popen[bytes]]:
    """Start the workers, wait until all are ready, then let them go at once."""
    env = {**os.environ, "HOME": str(folder), "XDG_CONFIG_HOME": str(folder / "config"),
           "CTXDB_ACTOR": "agent:worker"}
    env.pop("CTXDB_CONFIG", None)
    processes = []
    for n in range(WORKERS):
        processes.append(subprocess.Popen(
            [sys.executable, str(WORKER), "--url", settings.url, "--project", project_id,
             "--count", str(INCREMENTS_PER_WORKER), "--ready", str(folder / f"ready-{n}"),
             "--go", str(folder / "go"), "--out", str(folder / f"result-{n}.json")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    deadline = time.monotonic() + 60
    while not all((folder / f"ready-{n}").exists() for n in range(WORKERS)):
        assert time.monotonic() < deadline, "the workers did not start"
        assert all(p.poll() is None for p in processes), "a worker died while starting"
        time.sleep(0.01)
    (folder / "go").touch()
    return processes


def test_no_lost_updates_under_compare_and_set(db: Ctxdb, tmp_path: Path) -> None:
    project_id = db.projects.create("counters")["project_id"]
    processes = start_workers(db.settings, project_id, tmp_path)
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr.decode()
    results = [json.loads((tmp_path / f"result-{n}.json").read_text(encoding="utf-8"))
               for n in range(WORKERS)]
    assert [r.get("error") for r in results] == [None] * WORKERS
    acknowledged = [v for r in results for v in r["versions"]]
    assert len(acknowledged) == WORKERS * INCREMENTS_PER_WORKER
    assert sum(r["created"] for r in results) == 1  # the racing first inserts had one winner
    final = db.memories.get(project_id, NAMESPACE, KEY)
    assert final["value"] == len(acknowledged)
    assert final["version"] == len(acknowledged) + 1
    assert sorted(acknowledged) == list(range(2, len(acknowledged) + 2))
    history = db.memories.history(project_id, NAMESPACE, KEY)
    assert [v["value"] for v in history] == list(range(len(acknowledged) + 1))
    assert sum(r["conflicts"] for r in results) >= WORKERS - 1  # the first-insert losers
    # The search document is the last acknowledged put's, with its terms (each put of a live
    # memory writes it itself: SQLite's 0024, PostgreSQL's 0026), whatever order they took;
    # on SQLite its terms wait for the batch or a read of the index (0027, 0028), as here.
    db.search.index_status()
    document = db.storage.read(lambda tx: raw(tx).one_raw(db.storage.dialect.param_style(
        "SELECT d.body, d.terms, d.occurred_at, s.body AS source_body, "
        "s.occurred_at AS source_occurred_at FROM search_documents d "
        "JOIN search_memory_source s ON s.memory_id = d.memory_id "
        "WHERE d.project_id = :pid"), {"pid": project_id}))
    assert document is not None
    assert document["body"] == document["source_body"]
    assert document["body"].endswith(f"\n{len(acknowledged)}")
    assert document["occurred_at"] == document["source_occurred_at"]
    assert document["terms"] == index_terms(document["body"])
