"""The original specification's troubleshooting and reporting SQL runs unchanged against a
ctxdb database, on both backends: the read-only views of migration 0015 carry the
specification's names and columns (``context_snapshots``, ``active_instances``,
``schema_version``, ``v_project_summary``).

The statements below are copied from the specification as they stand there; the test runs
them through the raw driver, as a user at the ``sqlite3`` or ``psql`` prompt would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from ctxdb.service import Ctxdb

CRITICAL_CONTEXT = "SELECT * FROM context_snapshots WHERE priority='CRITICAL'"
INSTANCE_STATUS = "SELECT instance_id, status FROM active_instances;"
SCHEMA_VERSION = "SELECT * FROM schema_version;"
PROJECT_SUMMARY = "SELECT * FROM v_project_summary"
REVIVE_INSTANCE = "UPDATE active_instances SET status='active' WHERE instance_id='inst_001';"

SNAPSHOT_COLUMNS = ["snapshot_id", "project_id", "phase_id", "sequence_number", "content_type",
                    "priority", "token_count", "content", "metadata", "created_at"]
SUMMARY_COLUMNS = ["project_id", "name", "total_story_points", "completed_story_points",
                   "active_instances", "total_snapshots", "total_tokens", "created_at",
                   "updated_at"]

Query = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]


@pytest.fixture
def raw(db: Ctxdb) -> Any:
    """A function running one statement through the backend's own driver, autocommit."""
    if db.settings.is_postgres:
        import psycopg

        conn: Any = psycopg.connect(db.settings.url, autocommit=True)
    else:
        conn = sqlite3.connect(db.settings.sqlite_path, isolation_level=None)

    def run(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        cursor = conn.cursor()
        cursor.execute(sql)
        names = [d[0] for d in cursor.description] if cursor.description else []
        return names, list(cursor.fetchall()) if cursor.description else []

    yield run
    conn.close()


def fill(db: Ctxdb) -> tuple[str, str]:
    """Two projects; the first with two live instances and three items, one superseded."""
    first = db.projects.create("shop", total_story_points=100)["project_id"]
    other = db.projects.create("other")["project_id"]
    a = db.instances.launch(first)["instance_id"]
    b = db.instances.launch(first)["instance_id"]
    db.tokens.update_usage(a, 1000)
    db.tokens.update_usage(b, 500)
    db.context.store(first, {"rule": "never force-push"}, priority="CRITICAL")
    old = db.context.store(first, {"note": "v1"}, priority="HIGH")
    db.context.supersede(old["item_id"], {"note": "v2"})
    db.context.store(other, {"rule": "other project"}, priority="CRITICAL")
    return first, other


def test_reporting_queries_run_unchanged(db: Ctxdb, raw: Query) -> None:
    first, other = fill(db)

    names, rows = raw(CRITICAL_CONTEXT)
    assert names == SNAPSHOT_COLUMNS
    assert sorted(r[1] for r in rows) == sorted([first, other])

    names, rows = raw(INSTANCE_STATUS)
    assert names == ["instance_id", "status"]
    assert [r[1] for r in rows] == ["active", "active"]

    names, rows = raw(SCHEMA_VERSION)
    assert names == ["version", "applied_at", "description"]
    assert [r[0] for r in rows] == list(range(1, db.migrator().latest_version + 1))

    names, rows = raw(PROJECT_SUMMARY)
    assert names == SUMMARY_COLUMNS
    by_project = {r[0]: dict(zip(names, r, strict=True)) for r in rows}
    assert by_project[first]["active_instances"] == 2
    assert by_project[first]["total_snapshots"] == 2  # the superseded version is history
    assert by_project[first]["total_tokens"] == 1500
    assert by_project[other]["total_tokens"] == 0  # no instances: 0, not NULL


def test_the_views_agree_with_the_service(db: Ctxdb, raw: Query) -> None:
    fill(db)
    names, rows = raw(PROJECT_SUMMARY)
    from_view = {r[0]: dict(zip(names, r, strict=True)) for r in rows}
    for summary in db.projects.summary():
        row = from_view[summary["project_id"]]
        for column in ("active_instances", "total_snapshots", "total_tokens"):
            assert row[column] == summary[column]


def test_the_views_are_read_only(db: Ctxdb, raw: Query) -> None:
    project, _ = fill(db)
    with pytest.raises(Exception, match=r"(?i)cannot modify active_instances"):
        raw(REVIVE_INSTANCE.replace("inst_001", db.instances.list(project)[0]["instance_id"]))
