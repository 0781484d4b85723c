"""The change feed's service and storage (db.changes), on both backends: every kind of change a
fleet dashboard shows is in it, in commit order, resumable from any event's cursor, filtered
by project; on PostgreSQL a transaction that commits after a later one is never passed; the
signal that wakes readers works, and on PostgreSQL survives its connection being killed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from ctxdb.domain.event_ids import seal
from ctxdb.errors import ValidationError
from ctxdb.service import Ctxdb
from ctxdb.service.usecases.changes import Change, Position

ONLY_POSTGRES = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)])


def read_all(db: Ctxdb, after: Position, project_id: str | None = None,
             until: Callable[[list[Change]], bool] = bool,
             seconds: float = 15.0) -> tuple[list[Change], Position]:
    """Every change after ``after`` until ``until`` holds of what was read (PostgreSQL holds
    back rows while a transaction of its database is still running: the tests of other
    engineers share the server, so a read may come a moment later than the commit)."""
    found: list[Change] = []
    deadline = time.monotonic() + seconds
    while True:
        batch = db.changes.since(after, project_id, limit=7)
        found += batch.changes
        after = batch.position
        if batch.full:
            continue
        if until(found) or time.monotonic() > deadline:
            return found, after
        time.sleep(0.05)


def count_at_least(n: int) -> Callable[[list[Change]], bool]:
    return lambda found: len(found) >= n


def fleet_activity(db: Ctxdb, pid: str) -> set[str]:
    """One change of every kind a dashboard shows; returns the actions they were audited as."""
    instance = db.instances.launch(pid)["instance_id"]
    db.instances.heartbeat(instance)
    db.tokens.update_usage(instance, 1_000)
    db.phases.create(pid, 1, "build")
    db.context.store(pid, {"note": "x"}, "HIGH", "note")
    db.memories.put(pid, "team", "plan", {"v": 1})
    task = db.tasks.create(pid, "a task")
    claimed = db.tasks.claim(pid, instance, 60)
    assert claimed is not None
    db.tasks.complete(task["task_id"], claimed["epoch"], {"ok": True})
    message = db.messages.send(pid, "broadcast", None, {"hi": 1})
    db.messages.inbox(instance)
    db.messages.ack(message["message_id"], instance)
    gate = db.approvals.request(pid, "deploy", {"what": "prod"})
    db.approvals.approve(gate["gate_id"], {"ok": True})
    db.commands.record(pid, "pytest", ["-q"], exit_code=0)
    db.checkpoints.save(instance, {"step": 1})
    db.tokens.record_handoff(instance, summary="done for now")
    db.tokens.clear_and_reload(instance, summary="reloading")
    return {"instance.launch", "instance.heartbeat", "tokens.update", "phase.create",
            "context.store", "memory.put", "task.create", "task.claim", "task.complete",
            "message.send", "message.deliver", "message.ack", "approval.request",
            "approval.approve", "command.record", "checkpoint.save", "tokens.handoff",
            "tokens.clear_and_reload"}


def test_every_change_a_dashboard_shows_is_in_the_feed_in_order(db: Ctxdb, pid: str) -> None:
    start = db.changes.tip()
    expected = fleet_activity(db, pid)
    changes, end = read_all(
        db, start, until=lambda found: {c.action for c in found} >= expected)
    actions = [c.action for c in changes]
    assert expected <= set(actions), sorted(expected - set(actions))
    # Commit order, which these sequential writes share with the audit log's ids.
    audited = [e["action"] for e in reversed(db.audit_log(project_id=pid, limit=1000))]
    assert actions == audited[-len(actions):]
    positions = [db.changes.start(c.cursor) for c in changes]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert all(c.project_id == pid and c.occurred_at and c.actor for c in changes)
    assert end == positions[-1]
    assert db.changes.since(end).changes == []


def test_a_cursor_resumes_with_exactly_what_came_after_it(db: Ctxdb, pid: str) -> None:
    start = db.changes.tip()
    for n in range(12):
        db.context.store(pid, {"n": n}, "LOW", "note")
    changes, _ = read_all(db, start, until=count_at_least(12))
    assert len(changes) == 12
    for cut in (0, 5, 11):
        resumed, _ = read_all(db, db.changes.start(changes[cut].cursor),
                              until=count_at_least(11 - cut), seconds=2)
        assert resumed == changes[cut + 1:]


def test_a_project_reader_gets_its_project_only_and_moves_past_the_others(
        db: Ctxdb, pid: str) -> None:
    other = db.projects.create("other")["project_id"]
    start = db.changes.tip()
    db.context.store(other, {"secret": "b"}, "HIGH", "note")
    db.context.store(pid, {"mine": 1}, "HIGH", "note")
    db.context.store(other, {"secret": "b"}, "HIGH", "note")
    mine, end = read_all(db, start, pid, until=count_at_least(1))
    assert [(c.project_id, c.action) for c in mine] == [(pid, "context.store")]
    everything, fleet_end = read_all(db, start, until=count_at_least(3))
    assert [c.project_id for c in everything] == [other, pid, other]
    # The project reader's position passed the other project's rows too (it does not read
    # them again), though it never received an id of theirs.
    assert end == fleet_end


def test_a_new_reader_starts_at_the_tip(db: Ctxdb, pid: str) -> None:
    db.context.store(pid, {"old": 1}, "HIGH", "note")
    read_all(db, Position(0, 0), until=count_at_least(2))  # settled
    tip = db.changes.start(None)
    assert db.changes.since(tip).changes == []
    db.context.store(pid, {"new": 1}, "HIGH", "note")
    changes, _ = read_all(db, tip, until=count_at_least(1))
    assert [c.action for c in changes] == ["context.store"]


def test_an_event_id_the_feed_never_gave_is_refused(db: Ctxdb, pid: str) -> None:
    start = db.changes.tip()
    db.context.store(pid, {"n": 1}, "HIGH", "note")
    (change,), _ = read_all(db, start, until=count_at_least(1))
    assert db.changes.start(change.cursor) > start
    tampered = change.cursor[:5] + ("A" if change.cursor[5] != "A" else "B") + change.cursor[6:]
    other_key = seal(bytes(32), 0, 1)
    for cursor in ("", "12", "0-1", "1-2-3", change.cursor[:-1], change.cursor + "A",
                   change.cursor.upper(), tampered, other_key, "é" * 32):
        with pytest.raises(ValidationError, match="not an event id"):
            db.changes.start(cursor)


def test_event_ids_say_nothing_of_the_changes_between_them(db: Ctxdb, pid: str) -> None:
    """A reader of one project cannot count the others' changes from its ids: they are the
    positions sealed, opaque, of one length, not in any visible order."""
    other = db.projects.create("other")["project_id"]
    start = db.changes.tip()
    for n in range(6):
        db.context.store(pid, {"n": n}, "LOW", "note")
        for _ in range(n):
            db.context.store(other, {"busy": n}, "LOW", "note")
    mine, _ = read_all(db, start, pid, until=count_at_least(6))
    everything, _ = read_all(db, start, until=count_at_least(21))
    ids = [c.cursor for c in mine]
    assert len({len(i) for i in ids}) == 1 and len(set(ids)) == 6
    # An id is its position sealed with this database's secret key: the same position under
    # another key is another id (domain/event_ids.py: a keyed pseudorandom permutation).
    positions = [db.changes.start(i) for i in ids]
    assert [seal(bytes(32), p.xact_id, p.audit_id) for p in positions] != ids
    assert [db.changes.start(i) for i in ids] == positions
    assert {c.cursor for c in everything} >= set(ids)  # the same event, the same id


def test_the_batch_limit_is_checked(db: Ctxdb) -> None:
    for limit in (0, 1001, True):
        with pytest.raises(ValidationError, match="limit"):
            db.changes.since(Position(0, 0), limit=limit)


def test_the_signal_wakes_a_subscriber_on_a_commit_of_another_process(
        db: Ctxdb, pid: str, settings: Any) -> None:
    rang = threading.Event()
    stop = db.changes.subscribe(rang.set)
    try:
        time.sleep(0.3)
        rang.clear()
        with Ctxdb.open(settings) as other:  # another storage: its own connections
            other.context.store(pid, {"x": 1}, "HIGH", "note")
        assert rang.wait(3)
    finally:
        stop()


@ONLY_POSTGRES
def test_postgres_never_passes_a_transaction_that_commits_late(
        db: Ctxdb, pid: str, backend: str) -> None:
    """Transaction A draws an audit id, B draws a later one and commits first: the feed does
    not move past A while A runs, then delivers both, A included, each once."""
    import psycopg

    start = db.changes.tip()
    insert = ("INSERT INTO audit_log (occurred_at, actor, action, entity_type, entity_id, "
              "project_id, details) VALUES (now(), 'user:test', %s, 'test', 'x', %s, '{}') "
              "RETURNING audit_id")
    with psycopg.connect(db.settings.url) as a, psycopg.connect(db.settings.url) as b:
        first = a.execute(insert, ("late", pid)).fetchone()
        second = b.execute(insert, ("early", pid)).fetchone()
        assert first is not None and second is not None and first[0] < second[0]
        b.commit()
        held, position = read_all(db, start, until=count_at_least(1), seconds=1.5)
        assert held == [] and position == start
        a.commit()
    changes, _ = read_all(db, position, until=count_at_least(2))
    assert sorted(c.action for c in changes) == ["early", "late"]
    assert [c.action for c in changes] == ["late", "early"]  # A's transaction began first


@ONLY_POSTGRES
def test_postgres_delivers_a_late_low_id_of_a_later_transaction(
        db: Ctxdb, pid: str, backend: str) -> None:
    """B's transaction number comes first, A draws the smaller audit id, B commits first and
    is delivered; A, committed later, still comes after it (its position is past B's)."""
    import psycopg

    start = db.changes.tip()
    insert = ("INSERT INTO audit_log (occurred_at, actor, action, entity_type, entity_id, "
              "project_id, details) VALUES (now(), 'user:test', %s, 'test', 'x', %s, '{}')")
    with psycopg.connect(db.settings.url) as a, psycopg.connect(db.settings.url) as b:
        b.execute("SELECT pg_current_xact_id()")
        a.execute(insert, ("smaller id", pid))
        b.execute(insert, ("larger id", pid))
        b.commit()
        before, position = read_all(db, start, until=count_at_least(1))
        assert [c.action for c in before] == ["larger id"]
        a.commit()
    after, _ = read_all(db, position, until=count_at_least(1))
    assert [c.action for c in after] == ["smaller id"]


@ONLY_POSTGRES
def test_the_listener_comes_back_after_its_connection_is_killed(
        db: Ctxdb, pid: str, backend: str) -> None:
    import psycopg

    rang = threading.Event()
    stop = db.changes.subscribe(rang.set)
    signal: Any = db.storage.change_signal()
    try:
        first = wait_for(lambda: signal.listener_pid)
        start = db.changes.tip()
        with psycopg.connect(db.settings.url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        db.context.store(pid, {"while": "down"}, "HIGH", "note")
        second = wait_for(lambda: signal.listener_pid not in (None, first) and
                          signal.listener_pid)
        assert second != first
        rang.clear()
        db.context.store(pid, {"after": "back"}, "HIGH", "note")
        assert rang.wait(3)
        changes, _ = read_all(db, start, until=count_at_least(2))
        assert [c.action for c in changes] == ["context.store", "context.store"]
    finally:
        stop()


def wait_for(probe: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


@ONLY_POSTGRES
def test_a_restored_database_feeds_what_is_written_after_the_restore(
        db: Ctxdb, pid: str, backend: str, tmp_path: Any) -> None:
    """The restored audit rows lose the source's transaction numbers (they could lie ahead of
    the server's), so what is written next comes after them in the feed."""
    import psycopg

    from ctxdb.service.operations import backup

    db.context.store(pid, {"before": "the backup"}, "HIGH", "note")
    with psycopg.connect(db.settings.url, autocommit=True) as conn:
        # As if the archive came from a server whose transaction numbers ran far ahead.
        conn.execute("UPDATE audit_log SET xact_id = xact_id + 1000000000000")
        made = backup.backup(db.settings, tmp_path / "ctxdb.backup")
        backup.restore(db.settings, made["file"], force=True)
        numbers = conn.execute("SELECT DISTINCT xact_id FROM audit_log "
                               "WHERE action <> 'database.restore'").fetchall()
    assert numbers == [(0,)]
    tip = db.changes.tip()
    db.context.store(pid, {"after": "the restore"}, "HIGH", "note")
    changes, _ = read_all(db, tip, until=count_at_least(1))
    assert [c.action for c in changes] == ["context.store"]


def test_a_reader_following_concurrent_writers_gets_every_change_once(
        db: Ctxdb, pid: str, settings: Any) -> None:
    """Four writers with their own connections commit in whatever order they get to; a reader
    follows the feed as they write, and ends with exactly the audit rows written, each once."""
    start = db.changes.tip()
    writers = [Ctxdb.open(settings) for _ in range(4)]
    seen: list[Change] = []
    position = start

    def write(store: Ctxdb) -> None:
        for n in range(25):
            store.context.store(pid, {"n": n}, "LOW", "note")

    threads = [threading.Thread(target=write, args=(store,)) for store in writers]
    try:
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            batch = db.changes.since(position, pid, limit=13)
            seen += batch.changes
            position = batch.position
        rest, _ = read_all(db, position, pid, until=lambda found: len(seen) + len(found) >= 100)
        seen += rest
    finally:
        for thread in threads:
            thread.join()
        for store in writers:
            store.close()
    written = [e for e in db.audit_log(project_id=pid, limit=1000)
               if e["action"] == "context.store"]
    assert len(written) == 100
    assert sorted(int(c.entity_id) for c in seen) == sorted(int(e["entity_id"]) for e in written)
    assert len({c.cursor for c in seen}) == 100
