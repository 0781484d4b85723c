"""A search reads its own project's matches, however many the other projects hold (issue 14).

Every search is within one project. Before schema version 21 the full-text index held the
words of all projects together, so a word common in other projects made the engine hand over
(and score) all their matches before the project filter dropped them: on a database of
1,000,000 items over 100 projects a search of a common word took a second. The index now also
knows each document's project and the search asks for it. The work is counted, not timed: the
SQLite virtual machine's steps (a progress handler) and PostgreSQL's rows read from the
documents table (its statistics), for a search in a small project while another project holds
few and then many documents with the same word. The count must not grow with the other
project.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from ctxdb.service import Ctxdb
from ctxdb.storage import Tx
from ctxdb.storage.base import raw

WORD = "quokka"
OWN_ITEMS = 20
FEW, MANY = 100, 3_000


def add_items(db: Ctxdb, pid: str, first: int, count: int) -> None:
    """``count`` live items holding WORD in one statement (their search documents written by
    the triggers and indexed before commit, as for any write)."""
    if db.settings.is_postgres:
        sql = ("INSERT INTO context_items (project_id, sequence_number, content_type, priority, "
               "token_count, content, metadata, idempotency_key, created_at) "
               "SELECT %(pid)s, n, 'note', 'HIGH', 5, "
               "jsonb_build_object('note', 'a " + WORD + " number ' || n), '{}', "
               "'bulk-' || n, now() "
               "FROM generate_series(CAST(%(first)s AS INT), CAST(%(last)s AS INT)) AS n")
    else:
        sql = ("WITH RECURSIVE s(n) AS (SELECT :first UNION ALL SELECT n + 1 FROM s "
               "WHERE n < :last) "
               "INSERT INTO context_items (project_id, sequence_number, content_type, priority, "
               "token_count, content, metadata, idempotency_key, created_at) "
               "SELECT :pid, n, 'note', 'HIGH', 5, "
               "json_object('note', 'a " + WORD + " number ' || n), '{}', 'bulk-' || n, "
               "strftime('%Y-%m-%dT%H:%M:%fZ','now') FROM s")
    db.storage.write(lambda tx: raw(tx).execute_raw(
        sql, {"pid": pid, "first": first, "last": first + count - 1}))


def sqlite_steps(db: Ctxdb, search: Callable[[], Any]) -> int:
    """Virtual machine steps (in hundreds) of ``search``, on this thread's connection (the
    one the search runs on)."""
    connection: sqlite3.Connection = db.storage._connection()  # type: ignore[attr-defined]
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    connection.set_progress_handler(count, 100)
    try:
        search()
    finally:
        connection.set_progress_handler(None, 100)
    return steps


def postgres_rows(db: Ctxdb, search: Callable[[], Any]) -> int:
    """Rows of search_documents that ``search`` read through an index, as the server counts
    them (flushed at the end of each transaction; the pool has one connection, the one the
    search ran on). The table of a test is small enough to be read whole, which the planner
    prefers here; it is told not to, so that the plan is the one it makes for a large table,
    where the index decides how many rows are read."""
    db.storage.write(lambda tx: raw(tx).execute_raw("SET enable_seqscan = off", {}))

    def counted(tx: Tx) -> int:
        raw(tx).one_raw("SELECT pg_stat_force_next_flush()", {})
        row = raw(tx).one_raw(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) AS n "
            "FROM pg_stat_user_tables WHERE relname = 'search_documents'", {})
        return int(row["n"]) if row else 0

    db.storage.read(counted)  # this transaction's own counts flushed
    before = db.storage.read(counted)
    search()
    db.storage.read(counted)
    return db.storage.read(counted) - before


def work_of(db: Ctxdb, search: Callable[[], Any]) -> int:
    search()  # once untimed: statements prepared, caches warm
    return (postgres_rows if db.settings.is_postgres else sqlite_steps)(db, search)


def test_a_search_reads_as_much_when_another_project_holds_the_word_30_times_more(
        make_settings: Any) -> None:
    with Ctxdb.open(make_settings(pool_min_size=1, pool_max_size=1)) as db:
        own = db.projects.create("own")["project_id"]
        other = db.projects.create("other")["project_id"]
        add_items(db, own, 1, OWN_ITEMS)
        add_items(db, other, 1, FEW)
        searches = {
            "ranked": lambda: db.search.search(own, WORD, limit=50),
            "listing": lambda: db.context.search(own, WORD, limit=50),
        }
        found = {name: search() for name, search in searches.items()}
        assert len(found["ranked"]) == OWN_ITEMS
        assert len(found["listing"]["items"]) == OWN_ITEMS
        few = {name: work_of(db, search) for name, search in searches.items()}
        add_items(db, other, FEW + 1, MANY - FEW)
        many = {name: work_of(db, search) for name, search in searches.items()}
        assert len(db.search.search(own, WORD, limit=50)) == OWN_ITEMS
    for name in searches:
        # Before schema version 21: about 30 times as much (the other project's matches).
        assert many[name] <= few[name] * 1.5 + 20, (name, few[name], many[name])
