"""``ctxdb db optimize``: planner statistics refreshed and space reclaimed while the database
stays in use; the doctor says when it is due; ``gc`` runs it (issue 15, finding 9)."""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

import pytest
from click.testing import CliRunner

from ctxdb.cli.root import cli
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings


def populate(db: Ctxdb, items: int = 30) -> str:
    project = db.projects.create("maintained")["project_id"]
    instance = db.instances.launch(project)["instance_id"]
    for n in range(items):
        db.context.store(project, {"note": f"item {n}"}, priority="MEDIUM")
    db.instances.heartbeat(instance)
    return project


POSTGRES_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


LARGE = 1_000  # postgres_health.STATISTICS_MIN_ROWS: smaller tables are no finding


@POSTGRES_ONLY
def test_optimize_gives_every_large_table_its_statistics(db: Ctxdb) -> None:
    populate(db, items=LARGE)
    before = db.maintenance.statistics()
    assert "context_items" in before["unanalyzed"]

    result = db.maintenance.optimize()

    assert result["steps"], "optimize ran nothing"
    assert "context_items" in result["before"]["unanalyzed"]
    assert result["after"]["unanalyzed"] == []
    assert db.maintenance.statistics()["unanalyzed"] == []


@POSTGRES_ONLY
def test_the_doctor_warns_until_optimized_and_fix_optimizes(db: Ctxdb) -> None:
    populate(db, items=LARGE)

    def statistics_check(fix: bool) -> Any:
        return next(c for c in db.doctor.run(fix=fix).checks if c.name == "statistics")

    warned = statistics_check(fix=False)
    assert warned.status == "warn"
    assert "context_items" in warned.detail and "ctxdb db optimize" in warned.detail
    fixed = statistics_check(fix=True)
    assert fixed.status == "pass" and fixed.fixed.startswith("optimized")
    assert statistics_check(fix=False).status == "pass"


def test_plans_still_use_their_indexes_after_optimize(db: Ctxdb) -> None:
    populate(db)
    db.maintenance.optimize()
    plans = next(c for c in db.doctor.run().checks if c.name == "query_plans")
    assert plans.status == "pass", plans.detail
    if db.settings.is_postgres:  # tiny tables with statistics: other plans, rightly
        assert "on tables of under 1000 rows" in plans.detail


@SQLITE_ONLY
def test_sqlite_optimize_creates_no_statistics_but_refreshes_existing_ones(
        settings: Settings, db: Ctxdb) -> None:
    project = populate(db, items=5)
    db.maintenance.optimize()
    check = next(c for c in db.doctor.run().checks if c.name == "statistics")
    assert check.status == "pass" and "without statistics" in check.detail
    conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    try:
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
                                ).fetchall()
        conn.execute("ANALYZE")  # what the original guide tells a user to do
        for n in range(100):
            db.context.store(project, {"later": n}, priority="LOW")
        db.maintenance.optimize()
        (stat,) = conn.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = 'context_items' "
                               "AND idx = 'idx_items_live'").fetchone()
    finally:
        conn.close()
    assert int(stat.split()[0]) == 105  # the table as it is now, not as it was


def test_writes_go_on_while_optimizing(db: Ctxdb) -> None:
    project = populate(db)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for n in range(40):
                db.context.store(project, {"during": n}, priority="LOW")
        except BaseException as exc:  # reported below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    for _ in range(3):
        db.maintenance.optimize()
    writer.join()
    assert errors == []
    assert len(db.context.page(project, "LOW")["items"]) == 40


@SQLITE_ONLY
def test_vacuum_gives_free_pages_back_on_sqlite(settings: Settings, db: Ctxdb) -> None:
    populate(db)
    conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    conn.execute("CREATE TABLE scratch (blob BLOB)")
    conn.execute("INSERT INTO scratch VALUES (randomblob(819200))")
    conn.execute("DROP TABLE scratch")
    conn.close()
    assert (db.maintenance.statistics()["reclaimable_bytes"] or 0) > 500_000

    assert db.maintenance.optimize()["after"]["reclaimable_bytes"] > 500_000  # no vacuum
    result = db.maintenance.optimize(vacuum=True)
    assert "VACUUM" in result["steps"]
    assert result["after"]["reclaimable_bytes"] == 0


def test_cli_db_optimize(settings: Settings, db: Ctxdb) -> None:
    populate(db)
    runner = CliRunner()
    url = settings.url if settings.is_postgres else str(settings.sqlite_path)
    shown = runner.invoke(cli, ["--url", url, "db", "optimize"])
    assert shown.exit_code == 0, shown.output
    assert "step(s) in" in shown.output and "tables without statistics" in shown.output
    as_json = runner.invoke(cli, ["--url", url, "db", "optimize", "--json"])
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert report["after"]["unanalyzed"] == [] and report["steps"]


def test_gc_optimizes_after_collecting(db: Ctxdb) -> None:
    populate(db)
    report = db.retention.collect()
    assert report["optimize"]["steps"]
    assert db.maintenance.statistics()["unanalyzed"] == []
    assert db.retention.collect(dry_run=True)["optimize"] is None  # a dry run changes nothing
