"""The SQLite backend's durability and locking rules, checked on real database files."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctxdb.errors import ConflictError, CtxdbError
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings
from ctxdb.storage import Tx
from ctxdb.storage.sqlite import SQLiteStorage
from ctxdb.storage.sqlite_connect import connect


def sqlite_settings(tmp_path: Path, **overrides: Any) -> Settings:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return load_settings(env=env, url=str(tmp_path / "ctxdb.db"), actor="user:test",
                         **overrides)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Ctxdb]:
    with Ctxdb.open(sqlite_settings(tmp_path)) as store:
        yield store


def pragmas(run: Any) -> dict[str, Any]:
    return {name: run(f"PRAGMA {name}") for name in
            ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")}


def test_pragmas_of_a_storage_connection(db: Ctxdb) -> None:
    def unit(tx: Tx) -> dict[str, Any]:
        return pragmas(lambda sql: next(iter((tx.one_raw(sql, {}) or {}).values())))

    found = db.storage.read(unit)
    assert found["journal_mode"] == "wal"
    assert found["synchronous"] == 2  # FULL
    assert found["busy_timeout"] >= 30_000
    assert found["foreign_keys"] == 1


@pytest.mark.parametrize(("mode", "number"), [("FULL", 2), ("NORMAL", 1), ("EXTRA", 3)])
def test_synchronous_follows_the_setting(tmp_path: Path, mode: str, number: int) -> None:
    settings = sqlite_settings(tmp_path, sqlite_synchronous=mode, busy_timeout_ms=45_000)
    conn = connect(settings.sqlite_path, settings)
    try:
        found = pragmas(lambda sql: conn.execute(sql).fetchone()[0])
    finally:
        conn.close()
    assert found == {"journal_mode": "wal", "synchronous": number, "busy_timeout": 45_000,
                     "foreign_keys": 1}


def test_writes_begin_immediate_and_reads_deferred(db: Ctxdb) -> None:
    assert isinstance(db.storage, SQLiteStorage)
    statements: list[str] = []
    conn = db.storage._connection()
    conn.set_trace_callback(statements.append)
    try:
        project = db.projects.create("traced")
        begins_of_write = [s for s in statements if s.startswith("BEGIN")]
        statements.clear()
        db.projects.get(project["project_id"])
        begins_of_read = [s for s in statements if s.startswith("BEGIN")]
    finally:
        conn.set_trace_callback(None)
    assert begins_of_write == ["BEGIN IMMEDIATE"]
    assert begins_of_read == ["BEGIN"]


def test_a_write_holds_the_write_lock_from_its_start(db: Ctxdb, tmp_path: Path) -> None:
    path = tmp_path / "ctxdb.db"

    def try_to_write() -> str:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return "free"
        except sqlite3.OperationalError as exc:
            return str(exc)
        finally:
            other.close()

    # Before the unit has written anything, another writer is already shut out...
    assert db.storage.write(lambda tx: try_to_write()) == "database is locked"
    # ...while a read transaction leaves the write lock free.
    assert db.storage.read(lambda tx: try_to_write()) == "free"
    assert try_to_write() == "free"


def test_a_writer_waits_for_the_lock_instead_of_failing(db: Ctxdb, tmp_path: Path) -> None:
    holder = sqlite3.connect(tmp_path / "ctxdb.db", isolation_level=None,
                             check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    released.start()
    started = time.monotonic()
    try:
        project = db.projects.create("patient")  # blocks until the holder commits
    finally:
        released.join()
        holder.close()
    assert time.monotonic() - started >= 0.25
    assert db.projects.get(project["project_id"])["name"] == "patient"


def test_a_failing_unit_is_rolled_back(db: Ctxdb) -> None:
    def unit(tx: Tx) -> None:
        tx.execute("insert_audit", actor="user:test", action="test.write", entity_type="test",
                   entity_id="1", project_id=None, details="{}")
        raise CtxdbError("changed my mind")

    with pytest.raises(CtxdbError, match="changed my mind"):
        db.storage.write(unit)
    assert db.audit_log() == []
    assert not db.storage._connection().in_transaction


def test_foreign_keys_are_enforced(db: Ctxdb) -> None:
    def unit(tx: Tx) -> None:
        tx.execute("insert_phase", project_id="proj_missing", phase_number=1, name="x",
                   description="", story_points=0, metadata="{}")

    with pytest.raises(ConflictError, match="FOREIGN KEY"):
        db.storage.write(unit)
