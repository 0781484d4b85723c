"""SQLite group commit (storage/group_commit.py), on real database files: many threads' writes
share COMMITs, yet each caller sees its write as if it had run alone."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ctxdb.errors import ConflictError, CtxdbError, StorageError
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings
from ctxdb.storage import Tx
from ctxdb.storage.base import raw
from ctxdb.storage.group_commit import GroupCommitter
from ctxdb.storage.sqlite import SQLiteStorage


def sqlite_settings(tmp_path: Path, **overrides: Any) -> Settings:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return load_settings(env=env, url=str(tmp_path / "ctxdb.db"), actor="user:test",
                         **overrides)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Ctxdb]:
    with Ctxdb.open(sqlite_settings(tmp_path, sqlite_group_commit=True)) as store:
        yield store


def committer(db: Ctxdb) -> GroupCommitter:
    assert isinstance(db.storage, SQLiteStorage)
    group = db.storage.group_commit
    assert group is not None
    return group


def in_threads(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in a thread of its own; each one's result, or the exception it raised."""
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            outcomes[index] = calls[index]()
        except Exception as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def one_group(db: Ctxdb, calls: list[Callable[[], Any]],
              when_queued: Callable[[], None] | None = None) -> list[Any]:
    """Run ``calls`` (each one write) so that they all land in the same group: the writer is
    held in a unit of its own until every one of them is queued (and ``when_queued`` ran)."""
    group = committer(db)
    held, release = threading.Event(), threading.Event()

    def holder(tx: Tx) -> None:
        held.set()
        release.wait(10)

    holding = threading.Thread(target=db.storage.write, args=(holder,))
    holding.start()
    held.wait(10)
    outcomes: list[Any] = []
    runner = threading.Thread(target=lambda: outcomes.extend(in_threads(calls)))
    runner.start()
    deadline = time.monotonic() + 10
    while len(group._queue) < len(calls) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(group._queue) == len(calls), "not every call was queued behind the holder"
    if when_queued is not None:
        when_queued()
    release.set()
    holding.join(10)
    runner.join(30)
    return outcomes


def store_in(db: Ctxdb, tx: Tx, project_id: str, content: Any) -> None:
    """A store inside a unit of the test's own (which then fails, or fills the disk)."""
    values = db.context.item_values(project_id, content, "HIGH", "code", None, None, None,
                                    None, None)
    db.context.store_in_tx(tx, values, None)


def contents(db: Ctxdb, project_id: str) -> list[Any]:
    return [item["content"] for item in db.context.page(project_id, "HIGH")["items"]]


def audit_actions(db: Ctxdb) -> list[str]:
    return sorted(row["action"] for row in db.audit_log())


def test_off_unless_asked_for(tmp_path: Path) -> None:
    with Ctxdb.open(sqlite_settings(tmp_path)) as library:
        assert isinstance(library.storage, SQLiteStorage)
        assert library.storage.group_commit is None


def test_the_server_turns_it_on_for_sqlite(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from ctxdb.http.server import app_from_environment

    monkeypatch.setenv("CTXDB_SERVE_URL", str(tmp_path / "served.db"))
    monkeypatch.setenv("CTXDB_SERVE_CONFIG", "")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    app = app_from_environment()
    try:
        assert app.state.db.storage.group_commit is not None
    finally:
        app.state.db.close()


def test_concurrent_writes_each_present_once_with_gapless_sequences(db: Ctxdb) -> None:
    project_id = db.projects.create("many writers")["project_id"]
    start = threading.Barrier(12)

    def writer(number: int) -> list[int]:
        start.wait()
        return [db.context.store(project_id, {"writer": number, "item": item})["item_id"]
                for item in range(10)]

    outcomes = in_threads([lambda n=n: writer(n) for n in range(12)])
    assert all(isinstance(outcome, list) for outcome in outcomes), outcomes
    acknowledged = [item for outcome in outcomes for item in outcome]
    assert len(acknowledged) == 120 == len(set(acknowledged))
    rows = db.storage.read(lambda tx: raw(tx).all_raw(
        "SELECT item_id, sequence_number, content FROM context_items WHERE project_id = :p",
        {"p": project_id}))
    assert sorted(row["item_id"] for row in rows) == sorted(acknowledged)
    assert sorted(row["sequence_number"] for row in rows) == list(range(1, 121))
    audited = db.storage.read(lambda tx: raw(tx).one_raw(
        "SELECT count(*) AS n FROM audit_log WHERE action = 'context.store'", {}))
    assert audited == {"n": 120}
    # The point of it all: fewer COMMITs than writes.
    assert committer(db).groups_committed < 120


def test_a_failing_unit_rolls_back_only_itself(db: Ctxdb) -> None:
    project_id = db.projects.create("one fails")["project_id"]

    def failing() -> None:
        def unit(tx: Tx) -> None:
            store_in(db, tx, project_id, {"doomed": True})
            raise CtxdbError("changed my mind")
        db.storage.write(unit)

    calls: list[Callable[[], Any]] = [
        lambda: db.context.store(project_id, {"first": True}), failing,
        lambda: db.context.store(project_id, {"last": True})]
    before = committer(db).groups_committed
    first, failed, last = one_group(db, calls)
    assert committer(db).groups_committed - before == 2  # the holder's group, then theirs
    assert isinstance(failed, CtxdbError) and str(failed) == "changed my mind"
    assert {first["sequence_number"], last["sequence_number"]} == {1, 2}
    stored = contents(db, project_id)
    assert sorted(map(str, stored)) == sorted(map(str, [{"first": True}, {"last": True}]))
    assert audit_actions(db).count("context.store") == 2
    # The next write takes the next number: the failed unit's sequence was rolled back.
    assert db.context.store(project_id, "after")["sequence_number"] == 3


def test_one_idempotency_key_twice_in_one_group_stores_once(db: Ctxdb) -> None:
    project_id = db.projects.create("retried")["project_id"]
    first, second = one_group(db, [
        lambda: db.context.store(project_id, "once", idempotency_key="key-1"),
        lambda: db.context.store(project_id, "once", idempotency_key="key-1")])
    assert first == second and first["sequence_number"] == 1
    assert contents(db, project_id) == ["once"]


def test_even_system_exit_is_the_callers_and_the_writer_goes_on(db: Ctxdb) -> None:
    def unit(tx: Tx) -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        db.storage.write(unit)
    assert db.projects.create("still writing")["name"] == "still writing"


def test_a_busy_group_is_retried_whole_and_answered_once(db: Ctxdb) -> None:
    project_id = db.projects.create("busy")["project_id"]
    attempts: list[int] = []

    def busy_once(tx: Tx) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise sqlite3.OperationalError("database is locked")
        return "done"

    stored, busy = one_group(db, [lambda: db.context.store(project_id, "once"),
                                  lambda: db.storage.write(busy_once)])
    assert busy == "done" and len(attempts) == 2
    assert stored["sequence_number"] == 1
    assert contents(db, project_id) == ["once"]
    assert audit_actions(db).count("context.store") == 1


def deferred_violation(tx: Tx) -> None:
    """A unit whose own statements pass but whose transaction cannot COMMIT."""
    raw(tx).execute_raw("PRAGMA defer_foreign_keys = ON", {})
    raw(tx).execute_raw("INSERT INTO child (parent_id) VALUES (42)", {})


def test_a_commit_failure_acknowledges_no_unit_of_the_group(db: Ctxdb, tmp_path: Path) -> None:
    setup = sqlite3.connect(tmp_path / "ctxdb.db")
    setup.executescript("CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                        "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id));")
    setup.close()
    project_id = db.projects.create("commit fails")["project_id"]
    outcomes = one_group(db, [lambda: db.context.store(project_id, "a"),
                              lambda: db.storage.write(deferred_violation),
                              lambda: db.context.store(project_id, "b")])
    assert all(isinstance(outcome, ConflictError) for outcome in outcomes), outcomes
    assert contents(db, project_id) == []
    assert "context.store" not in audit_actions(db)
    assert db.context.store(project_id, "after")["sequence_number"] == 1


def test_a_unit_that_ends_the_transaction_fails_the_whole_group(db: Ctxdb) -> None:
    project_id = db.projects.create("rolled back")["project_id"]
    outcomes = one_group(db, [
        lambda: db.context.store(project_id, "a"),
        lambda: db.storage.write(lambda tx: raw(tx).execute_raw("ROLLBACK", {}))])
    assert all(isinstance(outcome, StorageError) for outcome in outcomes), outcomes
    assert contents(db, project_id) == []
    assert db.context.store(project_id, "after")["sequence_number"] == 1


def test_a_full_disk_fails_only_the_unit_that_met_it(db: Ctxdb) -> None:
    # SQLite rolls the whole transaction back on a full disk: the unit before it in the
    # group must run again (and be acknowledged once), the unit that met it fail alone.
    project_id = db.projects.create("full")["project_id"]

    def too_big() -> None:
        def unit(tx: Tx) -> None:
            pages = raw(tx).one_raw("PRAGMA page_count", {})
            assert pages is not None
            raw(tx).execute_raw(f"PRAGMA max_page_count = {pages['page_count']}", {})
            store_in(db, tx, project_id, "x" * 200_000)
        try:
            db.storage.write(unit)
        finally:  # the limit belongs to the writer's connection: lift it again
            db.storage.write(lambda tx: raw(tx).execute_raw(
                "PRAGMA max_page_count = 1073741823", {}))

    small, full = one_group(db, [lambda: db.context.store(project_id, "small"), too_big])
    assert isinstance(full, StorageError) and "full" in str(full)
    assert small["sequence_number"] == 1
    assert contents(db, project_id) == ["small"]
    assert audit_actions(db).count("context.store") == 1


def test_close_answers_every_queued_write(db: Ctxdb) -> None:
    project_id = db.projects.create("draining")["project_id"]
    closer = threading.Thread(target=db.close)

    def close_while_queued() -> None:
        closer.start()
        deadline = time.monotonic() + 10
        while not committer(db)._closing and time.monotonic() < deadline:
            time.sleep(0.001)

    outcomes = one_group(db, [lambda n=n: db.context.store(project_id, n) for n in range(8)],
                         when_queued=close_while_queued)
    closer.join(30)
    assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes
    with pytest.raises(StorageError, match="closed"):
        db.context.store(project_id, "too late")


def test_a_forked_child_writes_through_a_writer_of_its_own(db: Ctxdb) -> None:
    project_id = db.projects.create("forked")["project_id"]
    db.context.store(project_id, "parent")  # the parent's writer thread is running
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            db.storage._local = threading.local()  # the parent's connections stay its own
            db.context.store(project_id, "child")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(contents(db, project_id)) == ["child", "parent"]
