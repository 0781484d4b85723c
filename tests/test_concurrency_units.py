"""Concurrency inside one process: connection settings, racing units of work, and
PostgreSQL connections that die under ctxdb's feet.

- Every SQLite connection ctxdb opens (from any thread) is checked for its PRAGMAs, by
  recording the real connections ``sqlite3.connect`` returns while the whole API runs.
- Limits (instances per project, projects) and counters (sequence numbers, generations)
  hold when many threads race, on both backends.
- A PostgreSQL connection terminated while idle in the pool or in the middle of a unit of
  work costs nothing: the unit is run again and its write lands exactly once.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import ctxdb
from ctxdb.domain.agents import AgentSession, RepoIdentity
from ctxdb.errors import TooManyInstancesError, TooManyProjectsError, TransientStorageError
from ctxdb.service import Ctxdb
from ctxdb.service.operations import schema
from ctxdb.settings import Settings, load_settings
from ctxdb.storage.retry import MAX_ATTEMPTS
from item_numbers import check_increasing, check_numbers

SYNCHRONOUS_LEVELS = {"NORMAL": 1, "FULL": 2, "EXTRA": 3}


def audited(db: Ctxdb, action: str, **where: str) -> list[dict[str, Any]]:
    return [row for row in db.audit_log(limit=1_000_000, **where) if row["action"] == action]


def run_together(count: int, call: Callable[[int], Any]) -> list[Any]:
    """Run ``call(0..count-1)`` in ``count`` threads released at the same moment.

    Returns each call's result, or the exception it raised, in order.
    """
    barrier = threading.Barrier(count, timeout=30)

    def task(number: int) -> Any:
        barrier.wait()
        try:
            return call(number)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(task, range(count)))


# --- 5: every SQLite connection has ctxdb's PRAGMAs ------------------------------------------


def pragmas_of(conn: sqlite3.Connection) -> dict[str, Any]:
    return {name: conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("foreign_keys", "journal_mode", "synchronous", "busy_timeout")}


class ObservedConnection(sqlite3.Connection):
    """A real connection that notes its PRAGMAs just before it is closed.

    Connections that ctxdb opens and closes within one call (the schema functions) can then
    be checked too, and one never closed shows up without a note.
    """

    pragmas_at_close: dict[str, Any] | None = None

    def close(self) -> None:
        self.pragmas_at_close = pragmas_of(self)
        super().close()


@pytest.fixture
def recorded_connections(monkeypatch: pytest.MonkeyPatch) -> list[ObservedConnection]:
    """Every connection ``sqlite3.connect`` returns from now on (real, merely observed)."""
    opened: list[ObservedConnection] = []
    real_connect = sqlite3.connect

    def recording_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        assert "factory" not in kwargs  # ctxdb uses plain connections; observe them as such
        conn = real_connect(*args, factory=ObservedConnection, **kwargs)
        assert isinstance(conn, ObservedConnection)
        opened.append(conn)
        return conn

    monkeypatch.setattr(sqlite3, "connect", recording_connect)
    return opened


def exercise_every_service(db: Ctxdb) -> None:
    migrator = db.migrator()
    assert migrator.current_version() == migrator.latest_version
    assert migrator.downgrade(0) and migrator.current_version() == 0
    assert migrator.upgrade() and {row["state"] for row in migrator.status()} == {"applied"}

    project_id = db.projects.create("pragmas", "every service", 13)["project_id"]
    db.projects.update(project_id, description="still every service")
    assert db.projects.list() and db.projects.summary()
    phase_id = db.phases.create(project_id, 1, "build")["phase_id"]
    db.phases.start(phase_id)
    assert (db.phases.current(project_id) or {}).get("phase_id") == phase_id
    assert db.phases.list(project_id)

    instance_id = db.instances.launch(project_id, phase_id, client="test")["instance_id"]
    db.instances.heartbeat(instance_id)
    db.instances.set_status(instance_id, "idle")
    db.instances.reap_stale(project_id)
    db.context.load_for_instance("inst_pragmas_loader", project_id)
    assert len(db.instances.list(project_id)) == 2

    item = db.context.store(project_id, {"rule": "one"}, "CRITICAL", phase_id=phase_id,
                            created_by=instance_id)
    newer = db.context.supersede(item["item_id"], {"rule": "two"})
    other = db.context.store(project_id, "a note", "LOW", "note")
    db.context.delete(other["item_id"])
    assert db.context.get(newer["item_id"])["content"] == {"rule": "two"}
    assert db.context.full(project_id)["CRITICAL"]
    db.context.page(project_id, "CRITICAL")
    db.context.pack(project_id, 10_000)
    db.context.counts(project_id)

    db.tokens.update_usage(instance_id, 150_000)
    db.tokens.check_usage(instance_id)
    db.tokens.all_usage(project_id)
    assert db.tokens.auto_manage(instance_id, threshold=0.5) is not None
    db.tokens.clear_and_reload(instance_id, summary="again")
    assert (db.tokens.latest_handoff(instance_id=instance_id) or {}).get("generation") == 1
    assert db.audit_log(project_id)

    db.phases.complete(phase_id)
    db.instances.end(instance_id)
    db.projects.archive(project_id)


def exercise_in_threads(db: Ctxdb, threads: int) -> set[int]:
    """Store and read from several threads at once; returns the threads' identities."""
    project_id = db.projects.create("threads")["project_id"]

    def work(number: int) -> int:
        for i in range(5):
            db.context.store(project_id, {"thread": number, "i": i})
        db.context.full(project_id)
        return threading.get_ident()

    results = run_together(threads, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    return set(results)


def exercise_schema_service(settings: Settings) -> None:
    """The schema functions for front ends open (and close) connections of their own."""
    latest = schema.status(settings)["latest_version"]
    assert schema.downgrade(settings, 0)["to_version"] == 0
    assert schema.init(settings)["to_version"] == latest
    assert schema.upgrade(settings)["migrations"] == []


@pytest.mark.parametrize("synchronous", [None, "FULL", "NORMAL", "EXTRA"])
def test_every_sqlite_connection_is_configured(
    tmp_path: Path, recorded_connections: list[ObservedConnection], synchronous: str | None
) -> None:
    overrides = {} if synchronous is None else {"sqlite_synchronous": synchronous}
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    settings = load_settings(env=env, url=str(tmp_path / "pragmas.db"), **overrides)
    exercise_schema_service(settings)
    with ctxdb.open(settings) as db, ctxdb.open(settings) as second:
        exercise_every_service(db)
        threads = exercise_in_threads(db, 4)
        assert second.projects.list(include_archived=True)
    # Connections: the schema calls' own, two stores' main-thread ones, one per pool thread.
    assert threading.get_ident() not in threads and len(threads) == 4
    assert len(recorded_connections) >= 4 + 2 + len(threads)
    expected = {"foreign_keys": 1, "journal_mode": "wal",
                "synchronous": SYNCHRONOUS_LEVELS[synchronous or "FULL"]}
    for conn in recorded_connections:
        pragmas = conn.pragmas_at_close
        assert pragmas is not None, "ctxdb left a connection open after closing the store"
        assert {k: v for k, v in pragmas.items() if k in expected} == expected
        assert pragmas["busy_timeout"] >= 30_000


# --- 6: racing units of work, on both backends -----------------------------------------------


def launch_in(db: Ctxdb, project_id: str, _number: int) -> dict[str, Any]:
    return db.instances.launch(project_id)


def create_project(db: Ctxdb, round_number: int, number: int) -> dict[str, Any]:
    return db.projects.create(f"round {round_number} project {number}")


def test_instance_limit_holds_under_concurrent_launches(make_settings: Any) -> None:
    # A race is not lost every time: several rounds make a missing lock show reliably.
    with Ctxdb.open(make_settings(max_instances_per_project=5)) as db:
        for round_number in range(3):
            project_id = db.projects.create(f"crowded {round_number}")["project_id"]
            results = run_together(8, functools.partial(launch_in, db, project_id))
            launched = [r["instance_id"] for r in results if isinstance(r, dict)]
            refused = [r for r in results if isinstance(r, TooManyInstancesError)]
            assert (len(launched), len(refused)) == (5, 3), results
            listed = db.instances.list(project_id)
            assert sorted(i["instance_id"] for i in listed) == sorted(launched)
            launches = audited(db, "instance.launch", project_id=project_id)
            assert sorted(row["entity_id"] for row in launches) == sorted(launched)


def test_instance_limit_holds_under_concurrent_session_starts(make_settings: Any) -> None:
    # A SessionStart counts its project's instances last, after its pack and injection: the
    # limit must hold all the same, and nothing of a refused start stays behind. The limit is
    # below the connection pool's size (4), so more starts than it are in flight at once.
    limit, starts = 2, 6
    with Ctxdb.open(make_settings(max_instances_per_project=limit)) as db:
        for round_number in range(3):
            repo = RepoIdentity(f"git:crowded-{round_number}", "crowded")
            # Made first: the starts that would make it wait for one another on its creation.
            project_id = db.sessions.resolve_project(repo)["project_id"]

            def start(number: int, repo: RepoIdentity = repo,
                      round_number: int = round_number) -> dict[str, Any]:
                agent = AgentSession("claude-code", f"s-{round_number}-{number}", None,
                                     "/src/crowded")
                return db.sessions.start(agent, "startup", repo)

            results = run_together(starts, start)
            started = [r["instance_id"] for r in results if isinstance(r, dict)]
            refused = [r for r in results if isinstance(r, TooManyInstancesError)]
            assert (len(started), len(refused)) == (limit, starts - limit), results
            listed = db.instances.list(project_id)
            assert sorted(i["instance_id"] for i in listed) == sorted(started)
            launches = audited(db, "instance.launch", project_id=project_id)
            assert sorted(row["entity_id"] for row in launches) == sorted(started)


def test_project_limit_holds_under_concurrent_creation(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(max_projects=4)) as db:
        for round_number in range(3):
            results = run_together(8, functools.partial(create_project, db, round_number))
            created = [r["project_id"] for r in results if isinstance(r, dict)]
            refused = [r for r in results if isinstance(r, TooManyProjectsError)]
            assert (len(created), len(refused)) == (4, 4), results
            assert sorted(p["project_id"] for p in db.projects.list()) == sorted(created)
            for project_id in created:  # archived projects leave room for the next round
                db.projects.archive(project_id)
        creations = audited(db, "project.create")
        assert len(creations) == 12
        assert len(db.projects.list(include_archived=True)) == 12


def test_sequence_numbers_stay_unique_under_concurrent_stores(make_settings: Any) -> None:
    with Ctxdb.open(make_settings()) as db:
        project_id = db.projects.create("sequences")["project_id"]

        def store_many(number: int) -> list[int]:
            return [db.context.store(project_id, {"thread": number, "i": i})["sequence_number"]
                    for i in range(25)]

        results = run_together(8, store_many)
        assert not [r for r in results if isinstance(r, Exception)], results
        for batch in results:  # one thread's stores follow each other
            check_increasing(db, batch, alone=False)
        sequences = sorted(s for batch in results for s in batch)
        assert len(sequences) == 8 * 25
        check_numbers(db, sequences)  # 1..200 on SQLite, unique with gaps on PostgreSQL
        stored = [i for items in db.context.full(project_id).values() for i in items]
        assert sorted(i["sequence_number"] for i in stored) == sequences


def test_concurrent_clear_and_reload_makes_consecutive_generations(make_settings: Any) -> None:
    threads, rounds = 6, 3
    with Ctxdb.open(make_settings()) as db:
        project_id = db.projects.create("reloads")["project_id"]
        db.context.store(project_id, {"rule": "kept across reloads"}, "CRITICAL")
        instance_id = db.instances.launch(project_id)["instance_id"]

        def clear_repeatedly(number: int) -> list[dict[str, Any]]:
            return [db.tokens.clear_and_reload(instance_id, summary=f"{number}/{i}")
                    for i in range(rounds)]

        results = run_together(threads, clear_repeatedly)
        assert not [r for r in results if isinstance(r, Exception)], results
        reloads = [reload for batch in results for reload in batch]
        total = threads * rounds
        assert sorted(r["generation"] for r in reloads) == list(range(1, total + 1))
        assert sorted(r["handoff"]["generation"] for r in reloads) == list(range(total))
        assert len({r["handoff"]["handoff_id"] for r in reloads}) == total
        assert all(r["critical_items"] == 1 for r in reloads)
        assert db.instances.get(instance_id)["generation"] == total
        assert len(audited(db, "tokens.clear_and_reload", entity_id=instance_id)) == total
        latest = db.tokens.latest_handoff(instance_id=instance_id) or {}
        assert latest.get("generation") == total - 1


# --- 7: PostgreSQL connections terminated under ctxdb ----------------------------------------

POSTGRES_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)])


@contextmanager
def admin_connection(url: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def terminate_other_backends(admin: Any) -> list[int]:
    """Terminate every other session on this test database (ctxdb's pool connections)."""
    rows = admin.execute(
        "SELECT pid, pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
    assert all(terminated for _pid, terminated in rows), rows
    return [pid for pid, _terminated in rows]


@contextmanager
def inserts_kill_their_connection(admin: Any, times: int) -> Iterator[Callable[[], int]]:
    """The first ``times`` inserts into context_items terminate their own connection.

    Counted with a sequence because sequences ignore rollbacks: yields a function that says
    how many inserts were attempted.
    """
    admin.execute("CREATE SEQUENCE test_insert_attempts")
    admin.execute(f"""
        CREATE FUNCTION test_kill_own_connection() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('test_insert_attempts') <= {int(times)} THEN
                PERFORM pg_terminate_backend(pg_backend_pid());
                PERFORM pg_sleep(5);  -- the termination interrupts this at once
            END IF;
            RETURN NEW;
        END $$""")
    admin.execute("CREATE TRIGGER test_kill_own_connection BEFORE INSERT ON context_items "
                  "FOR EACH ROW EXECUTE FUNCTION test_kill_own_connection()")
    try:
        yield lambda: int(admin.execute(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
            "FROM test_insert_attempts").fetchone()[0])
    finally:
        admin.execute("DROP TRIGGER IF EXISTS test_kill_own_connection ON context_items")
        admin.execute("DROP FUNCTION IF EXISTS test_kill_own_connection()")
        admin.execute("DROP SEQUENCE IF EXISTS test_insert_attempts")


def same_item(replayed: dict[str, Any], first: dict[str, Any]) -> bool:
    # A replayed store returns the full stored row, the first one a summary: compare the
    # fields both carry.
    return all(replayed[k] == first[k] for k in
               ("item_id", "project_id", "sequence_number", "priority", "token_count"))


def check_stored_once(db: Ctxdb, project_id: str, expected: list[dict[str, Any]]) -> None:
    stored = [i for items in db.context.full(project_id).values() for i in items]
    assert sorted((i["item_id"], i["sequence_number"]) for i in stored) == \
        sorted((i["item_id"], i["sequence_number"]) for i in expected)
    check_numbers(db, [i["sequence_number"] for i in sorted(stored, key=lambda i: i["item_id"])])
    stores = audited(db, "context.store", project_id=project_id)
    assert sorted(int(row["entity_id"]) for row in stores) == sorted(i["item_id"] for i in stored)


@POSTGRES_ONLY
def test_write_after_pool_connections_were_terminated(make_settings: Any) -> None:
    settings = make_settings(pool_min_size=2, pool_max_size=2)
    with Ctxdb.open(settings) as db, admin_connection(settings.url) as admin:
        project_id = db.projects.create("terminated")["project_id"]
        before = db.context.store(project_id, {"n": 1}, idempotency_key="before")
        killed = terminate_other_backends(admin)
        assert killed, "ctxdb's pool had no connection to terminate"
        after = db.context.store(project_id, {"n": 2}, idempotency_key="after")
        # The caller cannot know whether a write whose answer was lost committed, so it
        # sends it again with the same key: that must not store a second copy.
        assert same_item(db.context.store(project_id, {"n": 2}, idempotency_key="after"), after)
        check_stored_once(db, project_id, [before, after])
        survivors = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = "
                                  "current_database() AND pid <> pg_backend_pid()").fetchall()
        assert not {pid for (pid,) in survivors} & set(killed)


@POSTGRES_ONLY
def test_connection_killed_inside_a_unit_of_work_is_retried_once(make_settings: Any) -> None:
    settings = make_settings()
    with Ctxdb.open(settings) as db, admin_connection(settings.url) as admin:
        project_id = db.projects.create("killed mid-write")["project_id"]
        with inserts_kill_their_connection(admin, times=2) as attempts:
            item = db.context.store(project_id, {"n": 1}, idempotency_key="k1")
            assert attempts() == 3  # two attempts lost with their connection, one committed
        check_numbers(db, [item["sequence_number"]])
        assert db.context.get(item["item_id"])["content"] == {"n": 1}
        assert same_item(db.context.store(project_id, {"n": 1}, idempotency_key="k1"), item)
        check_stored_once(db, project_id, [item])


@POSTGRES_ONLY
def test_connection_lost_on_every_attempt_is_a_typed_error(make_settings: Any) -> None:
    settings = make_settings()
    with Ctxdb.open(settings) as db, admin_connection(settings.url) as admin:
        project_id = db.projects.create("always killed")["project_id"]
        with inserts_kill_their_connection(admin, times=1_000) as attempts:
            with pytest.raises(TransientStorageError, match="transient"):
                db.context.store(project_id, {"n": 1}, idempotency_key="k1")
            assert attempts() == MAX_ATTEMPTS
        check_stored_once(db, project_id, [])
        # Nothing half-done was left behind: the next write is the project's only item (number
        # 1 where numbers are gapless).
        item = db.context.store(project_id, {"n": 1}, idempotency_key="k1")
        check_numbers(db, [item["sequence_number"]])
        check_stored_once(db, project_id, [item])
