"""Storage.read_one: a read of one statement, without BEGIN and COMMIT, on both backends."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from ctxdb.errors import StorageError
from ctxdb.service import Ctxdb
from ctxdb.storage import Tx


def test_read_one_returns_the_first_row_or_none(db: Ctxdb, project: dict[str, Any]) -> None:
    pid = project["project_id"]
    db.memories.put(pid, "app", "k", {"v": 1})
    row = db.storage.read_one("get_live_memory", project_id=pid, namespace="app", key="k")
    assert row is not None and json.loads(row["value"]) == {"v": 1} and row["version"] == 1
    missing = db.storage.read_one("get_live_memory", project_id=pid, namespace="app", key="x")
    assert missing is not None and missing["memory_id"] is None
    assert db.storage.read_one("get_live_memory", project_id="proj_void", namespace="app",
                               key="k") is None
    with pytest.raises(StorageError):  # a driver error is translated, as for read()
        db.storage.read_one("get_live_memory", project_id=pid)


def test_read_one_sees_only_committed_writes_and_does_not_wait_for_writers(
    db: Ctxdb, project: dict[str, Any]
) -> None:
    pid = project["project_id"]
    db.memories.put(pid, "app", "k", "before")
    inside, release = threading.Event(), threading.Event()

    def slow_writer(tx: Tx) -> None:
        db.memories.put_in_tx(tx, pid, "app", "k", '"during"', kind=None,
                              expected_version=None, ttl_seconds=None, actor="user:test")
        inside.set()
        assert release.wait(10)

    writer = threading.Thread(target=db.storage.write, args=(slow_writer,))
    writer.start()
    try:
        assert inside.wait(10)
        # The writer holds its transaction (SQLite: the write lock) open meanwhile.
        assert db.memories.get(pid, "app", "k")["value"] == "before"
    finally:
        release.set()
        writer.join(10)
    assert db.memories.get(pid, "app", "k")["value"] == "during"
