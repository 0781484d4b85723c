"""Crash and restart trials of ``ctxdb serve`` (helpers in tests/crash_trials.py).

- The server (what ``ctxdb serve`` runs, in a process forked from the test's) killed with
  SIGKILL under a write load, ten times over one SQLite file: every acknowledged write is
  there, and a write that got no answer is there exactly once after it is sent again with
  its ``Idempotency-Key`` (to the next server).
- A PostgreSQL cluster of the test's own stopped with ``pg_ctl stop -m immediate`` (no
  checkpoint: recovery from the WAL) and started again, under a write load through two
  replicas: no acknowledged write lost, none made twice, every writer answered again within
  2 s of the database being back, and a change-feed follower missed no event.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

import ctxdb
from crash_trials import (
    Cluster,
    Follower,
    Server,
    Writes,
    servers,
    start_writers,
    stop_writers,
)

TRIALS = 10
RECOVERY_SECONDS = 2.0
pytestmark = pytest.mark.slow


def project_and_token(url: str) -> tuple[str, str]:
    with ctxdb.open(url=url, auto_migrate=True) as db:
        project = db.projects.create("crash trials")["project_id"]
        return project, str(db.access_tokens.create(project, "write")["secret"])


def assert_each_key_once(writes: Writes, stored: list[tuple[int, str]]) -> None:
    """``stored`` (item id, key) holds exactly one record per key sent, the acknowledged one
    where there was an acknowledgement."""
    assert not writes.unanswered
    counts = Counter(key for _item, key in stored)
    assert {key for key, count in counts.items() if count > 1} == set()  # no duplicate
    assert set(counts) == set(writes.acknowledged)  # nothing lost, nothing unasked for
    assert dict((key, item) for item, key in stored) == writes.acknowledged


def test_acknowledged_writes_survive_sigkill_of_the_server(tmp_path: Path) -> None:
    url = str(tmp_path / "crash.db")
    writes = Writes(*project_and_token(url))
    server = Server(url, tmp_path).wait_up()
    retried = 0
    rng = random.Random(12)
    for trial in range(TRIALS):
        following = Server(url, tmp_path)  # forked before any writer runs; starting
        stop, threads = start_writers(writes, [server.base], 3, f"trial{trial}-writer")
        time.sleep(rng.uniform(0.2, 0.5))
        server.kill()
        stop_writers(stop, threads)
        server = following.wait_up()
        retried += len(writes.unanswered)
        for key in sorted(writes.unanswered):
            assert writes.send(server.base, key)
    server.kill()
    with sqlite3.connect(url) as conn:
        rows = conn.execute("SELECT item_id, content FROM context_items").fetchall()
    assert_each_key_once(writes, [(item, json.loads(content)["key"]) for item, content in rows])
    assert len(writes.acknowledged) > 3 * TRIALS
    assert retried > 0  # some writes were cut off by a kill (3 writers, 10 kills)


def private_initdb() -> str:
    initdb = shutil.which("initdb")
    if initdb is None:
        reason = "initdb is not on PATH (PostgreSQL's server programs)"
        if os.environ.get("CTXDB_REQUIRE_POSTGRES", "") in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL is required (CTXDB_REQUIRE_POSTGRES=1) but {reason}")
        pytest.skip(reason)
    return initdb


@pytest.mark.postgres
def test_postgres_crash_and_restart_under_two_replicas(tmp_path: Path) -> None:
    cluster = Cluster(private_initdb())
    try:
        cluster.start()
        writes = Writes(*project_and_token(cluster.url))
        with servers(cluster.url, tmp_path, 2) as replicas:
            bases = [replica.base for replica in replicas]
            follower = Follower(bases, writes.secret)
            assert follower.connected.wait(20)
            stop, threads = start_writers(writes, bases, 4, "writer")
            time.sleep(1.0)
            before = len(writes.acknowledged)
            started = cluster.started_at()
            cluster.crash()
            time.sleep(0.5)
            cluster.start()
            back = time.monotonic()
            assert cluster.started_at() != started  # a new postmaster: it did crash
            time.sleep(RECOVERY_SECONDS + 0.5)
            stop_writers(stop, threads)
            for key in sorted(writes.unanswered):
                assert writes.send(bases[0], key)
            acknowledged = set(writes.acknowledged.values())
            deadline = time.monotonic() + 15
            while not acknowledged <= set(follower.stored_items()):
                assert time.monotonic() < deadline, "the follower missed events"
                time.sleep(0.1)
            follower.close()
        assert before > 0
        for writer in range(4):
            answered = [at for key, at in writes.answered_at if key.startswith(f"writer{writer}-")
                        and at > back]
            assert answered and min(answered) - back <= RECOVERY_SECONDS, writer
        ids = [event["id"] for event in follower.events]
        assert len(ids) == len(set(ids))  # no event sent twice either
        with psycopg.connect(cluster.url) as conn:
            rows = conn.execute("SELECT item_id, content->>'key' FROM context_items").fetchall()
        assert_each_key_once(writes, [(int(item), str(key)) for item, key in rows])
    finally:
        cluster.remove()
