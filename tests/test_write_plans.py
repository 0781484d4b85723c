"""PostgreSQL: a store reads its rows by their keys whatever plan the server makes of its
statements, with statistics or without, generic or custom (issue 14).

Statistics gathered while the tables were tiny (``ANALYZE`` after a migration, ``ctxdb db
optimize``, a server's autovacuum) can call a column unique that is not: ``project_id`` of
the items, when each project had one item, or ``status`` of the projects, when there was one
project. A condition on such a column is then estimated to match one row, as the key's own
index does, and the planner may pick another index that starts with that column, filtering
on the rest: the index of (project_id, sequence_number) for ``project_id = … AND
idempotency_key = …`` reads every item of the project, and the index of (status, created_at)
for ``project_id = … AND status = 'active'`` reads every active project. A store's
statements read nothing by such a condition (docs/architecture.md, "Writers of one project
take turns at its row").
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings
from ctxdb.storage.base import raw

pytestmark = pytest.mark.postgres

# The server's own count of the entries read, per index, and of the rows read by sequential
# scans, per table ("seq " and its name), on the tables a store writes.
_READS = ("SELECT indexrelname AS name, idx_tup_read AS n FROM pg_stat_user_indexes "
          "WHERE relname IN ('context_items', 'search_documents', 'projects', 'audit_log') "
          "UNION ALL SELECT 'seq ' || relname, seq_tup_read FROM pg_stat_user_tables "
          "WHERE relname IN ('context_items', 'search_documents', 'projects', 'audit_log')")
# Items of another project with long keys: the index of (project_id, idempotency_key) is then
# a level deeper than the index of (project_id, sequence_number), which the planner counts
# against it when both are estimated to find one row.
_LONG_KEYED_ITEMS = (
    "INSERT INTO context_items (project_id, sequence_number, content_type, priority, "
    "token_count, content, metadata, idempotency_key, created_at) "
    "SELECT %(pid)s, 100 + n, 'note', 'HIGH', 5, jsonb_build_object('note', 'other ' || n), '{}', "
    "repeat('k', 300) || n, now() FROM generate_series(1, 1000) AS n")


@pytest.fixture
def own_database(pg_url: str) -> Iterator[str]:
    """A migrated database of this test's own: its statistics are not the suite's."""
    name = f"ctxdb_plans_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(pg_url)._replace(path="/" + name))
    try:
        yield url
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _settings(url: str, tmp_path: Path, plan_cache_mode: str | None = None) -> Settings:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    if plan_cache_mode is not None:  # every statement of the connection planned that way
        url += f"?options=-c%20plan_cache_mode%3D{plan_cache_mode}"
    return load_settings(env=env, url=url, actor="user:test", pool_min_size=1,
                         pool_max_size=1, auto_migrate=True)


def _sql(url: str, *statements: str, **params: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement, params or None)


def _reads(db: Ctxdb) -> dict[str, int]:
    """Index entries read so far, per index (the pool's one connection flushes its counts
    first; the database is this test's, so nothing else reads it)."""
    db.storage.read(lambda tx: raw(tx).one_raw("SELECT pg_stat_force_next_flush()", {}))
    rows = db.storage.read(lambda tx: raw(tx).all_raw(_READS, {}))
    return {str(row["name"]): int(row["n"]) for row in rows}


@pytest.mark.parametrize("plan_cache_mode",
                         ["force_generic_plan", "force_custom_plan", "auto"])
def test_stores_read_by_keys_when_statistics_call_columns_unique(
        own_database: str, tmp_path: Path, plan_cache_mode: str) -> None:
    with Ctxdb.open(_settings(own_database, tmp_path)) as db:
        db.context.store(db.projects.create("the first")["project_id"], {"note": "one"})
        _sql(own_database, "ANALYZE projects")  # one project: status looks unique
        for number in range(19):
            other = db.projects.create(f"one item {number}")["project_id"]
            db.context.store(other, {"note": "one"})
        _sql(own_database, "ANALYZE context_items")  # one item a project: project_id too
        # Emptied as the suite's fixtures empty a database: the statistics stay, the
        # tables' sizes are unknown again (the planner then assumes ten pages).
        _sql(own_database, "TRUNCATE projects, search_documents, audit_log, idempotency_keys "
             "CASCADE")
        other = db.projects.create("long keys")["project_id"]
        _sql(own_database, _LONG_KEYED_ITEMS, pid=other)
        for number in range(30):  # more active projects than the statistics saw
            db.projects.create(f"active {number}")
    with Ctxdb.open(_settings(own_database, tmp_path, plan_cache_mode)) as db:
        measured = db.projects.create("measured")["project_id"]
        for number in range(20):  # the plans made and kept meanwhile (generic at the 6th)
            db.context.store(measured, {"note": f"warm-up {number}"})
        before = _reads(db)
        for number in range(20):
            db.context.store(measured, {"note": f"measured {number}"})
        after = _reads(db)
    read = {name: after[name] - before.get(name, 0) for name in after
            if after[name] != before.get(name, 0)}
    # By key only: the project's row (its lock, its number drawn, the item's foreign key),
    # the document's item, and the item's document (its trigger's look); the projects' table
    # may be read whole (the planner's choice for a table it believes to be one page: as
    # many rows as projects, which are limited, max_projects), nothing else.
    by_other_ways = {name: n for name, n in read.items()
                     if name not in ("projects_pkey", "seq projects", "context_items_pkey",
                                     "idx_search_documents_item")}
    assert by_other_ways == {}, read
    assert read.get("context_items_pkey", 0) + read.get("idx_search_documents_item", 0) \
        <= 20 * 2, read
