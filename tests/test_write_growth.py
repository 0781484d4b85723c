"""A store does the same work on a database of any size, on one long-lived connection.

PostgreSQL keeps the plans of a connection's statements (psycopg's prepared statements, the
statements of PL/pgSQL trigger functions) for the life of the connection, made for the
tables as they were then. Issue 14: the search trigger's plan, made while the tables were
nearly empty, read every live item on each store, so a process slowed down with every item it
stored; and the look for the documents still without their index terms stepped over the
entries of every document indexed before (an index keeps them until a vacuum). Counting the
index entries a store reads (the server's own statistics) shows it without timing anything:
the count must not grow with the tables.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings
from ctxdb.storage import Tx
from ctxdb.storage.base import raw

pytestmark = pytest.mark.postgres

BULK_ITEMS = 5_000
STORES = 20


@pytest.fixture
def one_connection(pg_url: str, tmp_path: Path) -> Settings:
    """Settings of a PostgreSQL database with a pool of one connection: every store of a
    test runs on the same connection, and keeps its plans."""
    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    return load_settings(env=env, url=pg_url, actor="user:test", pool_min_size=1,
                         pool_max_size=1)


def index_entries_read(db: Ctxdb) -> int:
    """Index entries read so far on the tables a store writes, as the server counts them
    (its statistics are flushed at the end of the transaction before; the pool has one
    connection, so it is the connection the stores ran on)."""
    db.storage.read(lambda tx: raw(tx).one_raw("SELECT pg_stat_force_next_flush()", {}))

    def count(tx: Tx) -> int:
        row = raw(tx).one_raw(
            "SELECT coalesce(sum(idx_tup_read), 0) AS n FROM pg_stat_user_indexes "
            "WHERE relname IN ('context_items', 'search_documents', 'projects', 'audit_log')",
            {})
        return int(row["n"]) if row else 0

    return db.storage.read(count)


def reads_per_store(db: Ctxdb, pid: str) -> float:
    before = index_entries_read(db)
    for number in range(STORES):
        db.context.store(pid, {"note": f"measured store {number}"}, priority="HIGH")
    return (index_entries_read(db) - before) / STORES


def add_live_items(db: Ctxdb, pid: str, count: int) -> None:
    """``count`` live items in one statement (their search documents written by the
    triggers and indexed before commit, as for any write)."""
    db.storage.write(lambda tx: raw(tx).execute_raw(
        "INSERT INTO context_items (project_id, sequence_number, content_type, priority, "
        "token_count, content, metadata, idempotency_key, created_at) "
        "SELECT %(pid)s, n, 'note', 'HIGH', 5, jsonb_build_object('note', 'bulk ' || n), "
        "'{}', 'bulk-' || n, now() FROM generate_series(1, %(count)s) AS n",
        {"pid": pid, "count": count}))


def test_a_store_reads_as_many_index_entries_at_5000_items_as_at_20(
        one_connection: Settings) -> None:
    with Ctxdb.open(one_connection) as db:
        measured = db.projects.create("measured")["project_id"]
        small = reads_per_store(db, measured)  # the plans are made and kept meanwhile
        add_live_items(db, db.projects.create("bulk")["project_id"], BULK_ITEMS)
        large = reads_per_store(db, measured)
    assert large < small + 20, (small, large)
