"""Item numbers drawn with gaps on PostgreSQL (migration 0029): a store draws its number from a
sequence without waiting for the commits of the project's other writers; a reader paging by
number still misses no item whose lower number commits after a higher one; an archive still
stops every store; and every path that writes numbers of its own (a copy, a legacy import)
leaves the next store drawing above them. docs/architecture.md, "Writers of one project draw
numbers with gaps"."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ctxdb.errors import CtxdbError
from ctxdb.service import Ctxdb
from ctxdb.service.operations.dbcopy import copy_database
from ctxdb.settings import Settings
from ctxdb.storage import Tx
from item_numbers import check_increasing, check_numbers
from legacy_db import SHOP, build_seed_database
from test_bundles import fresh_pg_url, open_db
from test_db_copy import settings_for

__all__ = ["fresh_pg_url"]  # a fixture, used by name

POSTGRES_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)])


@contextmanager
def slow_stores(url: str) -> Iterator[None]:
    """Each item's insert sleeps 10 to 30 ms in the server, after its number is drawn and
    before its COMMIT: a store's window between the two, as on a loaded machine, made wide
    enough that racing readers and archives meet it. Dropped after (the database is shared)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION test_slow_store() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$BEGIN PERFORM pg_sleep(0.01 + random() * 0.02); RETURN NULL; END$$")
        conn.execute("CREATE TRIGGER test_slow_store AFTER INSERT ON context_items "
                     "FOR EACH ROW EXECUTE FUNCTION test_slow_store()")
    try:
        yield
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER test_slow_store ON context_items")
            conn.execute("DROP FUNCTION test_slow_store()")


def stored_items(db: Ctxdb, project_id: str) -> dict[int, int]:
    """item id -> number, of every live item of the project."""
    return {item["item_id"]: item["sequence_number"]
            for items in db.context.full(project_id).values() for item in items}


def _store_many(settings: Settings, project_id: str, worker: int, count: int) -> None:
    with Ctxdb.open(settings) as db:
        for i in range(count):
            db.context.store(project_id, {"worker": worker, "i": i}, "HIGH")


@POSTGRES_ONLY
def test_a_store_does_not_wait_for_another_stores_commit(make_settings: Any) -> None:
    from ctxdb.service.usecases.context_insert import draw_and_insert

    settings = make_settings()
    with Ctxdb.open(settings) as db, Ctxdb.open(settings) as other:
        pid = db.projects.create("no turns")["project_id"]
        db.context.store(pid, "learns the schema")
        other.context.store(pid, "learns the schema too")
        values = db.context.item_values(pid, {"first": True}, "HIGH", "note", None, None,
                                        None, None, None)
        second: list[dict[str, Any]] = []
        waited: list[bool] = []

        def unit(tx: Tx) -> Any:
            first = draw_and_insert(tx, values, "user:test")  # drawn, not committed
            writer = threading.Thread(
                target=lambda: second.append(other.context.store(pid, {"second": True})))
            writer.start()
            writer.join(timeout=5)
            waited.append(writer.is_alive())
            return first, writer

        first, writer = db.storage.write(unit)
        writer.join()
        assert waited == [False], "a store waited for another store's COMMIT"
        check_increasing(db, [first["sequence_number"], second[0]["sequence_number"]],
                         alone=False)


@POSTGRES_ONLY
def test_a_pager_racing_writer_processes_misses_no_item(make_settings: Any) -> None:
    settings = make_settings()
    with Ctxdb.open(settings) as db:
        pid = db.projects.create("paged while written")["project_id"]
        db.context.store(pid, "first", "HIGH")
        seen: dict[int, int] = {}
        after = 0

        def page(limit: int) -> int:
            nonlocal after
            items = db.context.page(pid, "HIGH", after, limit)["items"]
            for item in items:
                assert item["sequence_number"] > after
                seen[item["item_id"]] = after = item["sequence_number"]
            return len(items)

        with slow_stores(settings.url):
            fork = multiprocessing.get_context("fork")
            writers = [fork.Process(target=_store_many, args=(settings, pid, worker, 40))
                       for worker in range(4)]
            for writer in writers:
                writer.start()
            while any(writer.is_alive() for writer in writers):
                page(3)
            for writer in writers:
                writer.join()
                assert writer.exitcode == 0
        while page(100):
            pass
        stored = stored_items(db, pid)
        assert len(stored) == 1 + 4 * 40
        missed = sorted(set(stored) - set(seen))
        assert not missed, f"the pager missed {len(missed)} items, numbers " \
            f"{sorted(stored[i] for i in missed)[:10]}"
        check_numbers(db, stored.values())


@POSTGRES_ONLY
def test_a_store_racing_an_archive_writes_nothing_into_the_archived_project(
        make_settings: Any) -> None:
    settings = make_settings()

    counter = psycopg.connect(settings.url, autocommit=True)  # open: counts at once

    def count(pid: str) -> int:
        row = counter.execute("SELECT count(*) FROM context_items WHERE project_id = %s",
                              (pid,)).fetchone()
        return int(row[0]) if row else 0

    with counter, Ctxdb.open(settings) as db:
        pid = db.projects.create("archived while written")["project_id"]
        db.context.store(pid, "first")
        acknowledged: list[dict[str, Any]] = []
        refusals: list[Exception] = []

        def writer(number: int) -> None:
            with Ctxdb.open(settings) as mine:
                for i in range(10_000):
                    try:
                        acknowledged.append(mine.context.store(pid, {"w": number, "i": i}))
                    except CtxdbError as exc:
                        refusals.append(exc)
                        return

        with slow_stores(settings.url):
            threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            db.projects.archive(pid)
            at_archive = count(pid)
            for thread in threads:
                thread.join(timeout=60)
        assert len(refusals) == 4, refusals
        assert count(pid) == at_archive, "an item was stored after its project was archived"
        assert {a["item_id"] for a in acknowledged} <= set(stored_items(db, pid))
        assert len(acknowledged) + 1 == at_archive


@pytest.mark.postgres
def test_copies_both_ways_then_stores_draw_above_every_number(
        tmp_path: Path, fresh_pg_url: str) -> None:
    source = str(tmp_path / "source.db")
    with open_db(source, tmp_path) as db:
        pid = db.projects.create("copied")["project_id"]
        for n in range(5):
            db.context.store(pid, {"n": n})
    copy_database(settings_for(source, tmp_path), settings_for(fresh_pg_url, tmp_path))
    with open_db(fresh_pg_url, tmp_path) as pg:  # the sequence starts above the copy's 1..5
        for n in range(3):
            pg.context.store(pid, {"on postgres": n})
        numbers = sorted(stored_items(pg, pid).values())
        assert numbers[:5] == [1, 2, 3, 4, 5] and numbers[5] > 5
        check_numbers(pg, numbers)
    back = str(tmp_path / "back.db")  # PostgreSQL's next_sequence no longer moves: raised
    copy_database(settings_for(fresh_pg_url, tmp_path), settings_for(back, tmp_path))
    with open_db(back, tmp_path) as lite:
        after = lite.context.store(pid, {"on sqlite": True})["sequence_number"]
        assert after == max(numbers) + 1


def test_a_legacy_import_with_numbers_of_its_own_then_stores_draw_above_them(
        db: Ctxdb, tmp_path: Path) -> None:
    path = tmp_path / "high.db"
    build_seed_database(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE context_snapshots SET sequence_number = sequence_number + 100000 "
                     "WHERE project_id = ?", (SHOP,))
    conn.close()
    db.imports.import_legacy(str(path))
    imported = sorted(stored_items(db, SHOP).values())
    assert imported[0] > 100000  # kept as they were
    check_increasing(db, [*imported, db.context.store(SHOP, "after")["sequence_number"]],
                     alone=False)


@pytest.mark.postgres
def test_migration_0029_up_and_down_keeps_numbers_increasing(
        tmp_path: Path, fresh_pg_url: str) -> None:
    with open_db(fresh_pg_url, tmp_path) as db:
        migrator = db.migrator()
        migrator.downgrade(28)
        pid = db.projects.create("across 0029")["project_id"]
        numbers = [db.context.store(pid, {"at": 28, "n": n})["sequence_number"]
                   for n in range(3)]
        assert numbers == [1, 2, 3]  # the project's row, gapless
        migrator.upgrade()
        numbers += [db.context.store(pid, {"at": 29, "n": n})["sequence_number"]
                    for n in range(3)]
        migrator.downgrade(28)  # the counter set to the highest number stored
        numbers.append(db.context.store(pid, {"at": 28})["sequence_number"])
        migrator.upgrade()
        numbers.append(db.context.store(pid, {"at": 29})["sequence_number"])
        check_increasing(db, numbers, alone=False)
        assert sorted(stored_items(db, pid).values()) == numbers
