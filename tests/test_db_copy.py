"""``db copy`` between SQLite and PostgreSQL, both ways: verified per table, the source
never changed, a target with rows refused unless forced, a failed copy leaving the target as
it was, and a copy that does not match its source reported."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from bundle_data import assert_search_index_works, populate
from ctxdb.errors import (
    CopyVerificationError,
    CtxdbError,
    DatabaseUnavailableError,
    SchemaOutdatedError,
    TargetNotEmptyError,
    ValidationError,
)
from ctxdb.service.operations.dbcopy import copy_database
from ctxdb.settings import Settings, load_settings
from ctxdb.storage import Migrator, connect_storage
from ctxdb.storage.tables import TABLES
from test_bundles import fresh_pg_url, open_db, records, row_counts, shop

__all__ = ["fresh_pg_url"]  # a fixture, used by name


def settings_for(url: str, tmp_path: Path) -> Settings:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return load_settings(env=env, url=url, actor="user:test", auto_migrate=True)


def raw_sql(url: str, sql: str) -> None:
    if url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.encode())
        return
    conn = sqlite3.connect(url)
    try:
        conn.executescript(sql)
    finally:
        conn.close()


def drop_trigger(target: Settings, name: str, table: str) -> None:
    """Triggers made by a test go, and on PostgreSQL their function of the same name: later
    tests share the database (a backup of it would carry the function along)."""
    if target.is_postgres:
        raw_sql(target.url, f"DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}()")
    else:
        raw_sql(target.url, f"DROP TRIGGER {name}")


@pytest.fixture
def source(tmp_path: Path) -> str:
    """A populated SQLite database, exported to source.jsonl for comparisons."""
    url = str(tmp_path / "source.db")
    with open_db(url, tmp_path) as db:
        populate(db, tmp_path)
        db.bundles.export(tmp_path / "source.jsonl")
    return url


def assert_same_as_source(url: str, tmp_path: Path, name: str) -> None:
    with open_db(url, tmp_path) as db:
        db.bundles.export(tmp_path / name)
    assert records(tmp_path / name) == records(tmp_path / "source.jsonl")


def assert_verified(report: dict[str, Any]) -> None:
    assert [row["table"] for row in report["tables"]] == [t.name for t in TABLES]
    for row in report["tables"]:
        assert row["match"] and row["source_rows"] == row["target_rows"] > 0, row
        assert row["source_sha256"] == row["target_sha256"]
    assert report["rows"] == sum(row["source_rows"] for row in report["tables"])


@pytest.mark.postgres
def test_sqlite_to_postgres_and_back(source: str, tmp_path: Path, fresh_pg_url: str) -> None:
    os.chmod(source, stat.S_IRUSR)  # the copy must not even try to write to its source
    report = copy_database(settings_for(source, tmp_path), settings_for(fresh_pg_url, tmp_path),
                           batch_size=7)
    assert (report["source_backend"], report["target_backend"]) == ("sqlite", "postgres")
    assert_verified(report)
    assert_same_as_source(fresh_pg_url, tmp_path, "pg.jsonl")
    with open_db(fresh_pg_url, tmp_path) as pg:
        before_search = pg.search.index_status()
    back = str(tmp_path / "back.db")
    assert_verified(copy_database(settings_for(fresh_pg_url, tmp_path),
                                  settings_for(back, tmp_path)))
    assert_same_as_source(back, tmp_path, "back.jsonl")
    with open_db(back, tmp_path) as lite:
        assert lite.search.index_status() == before_search
    with open_db(fresh_pg_url, tmp_path) as pg:
        assert_search_index_works(pg, shop(pg))
    os.chmod(source, stat.S_IRUSR | stat.S_IWUSR)
    assert_same_as_source(source, tmp_path, "source-after.jsonl")


def test_sqlite_to_sqlite_and_counters_continue(source: str, tmp_path: Path) -> None:
    target = str(tmp_path / "target.db")
    assert_verified(copy_database(settings_for(source, tmp_path), settings_for(target, tmp_path)))
    with open_db(target, tmp_path) as db:
        pid = shop(db)
        assert_search_index_works(db, pid)
        newest = max(row["audit_id"] for row in db.audit_log(limit=1000))
        db.context.store(pid, {"after": "copy"}, "HIGH")
        assert db.audit_log(limit=1)[0]["audit_id"] > newest


def test_a_target_with_rows_is_refused_unless_forced(
    source: str, tmp_path: Path, make_settings: Any
) -> None:
    target = make_settings()
    with open_db(target.url, tmp_path) as db:
        db.projects.create("already here")
        before = row_counts(db, tmp_path)
    with pytest.raises(TargetNotEmptyError) as refused:
        copy_database(settings_for(source, tmp_path), target)
    assert "projects" in refused.value.details["tables"]
    with open_db(target.url, tmp_path) as db:
        assert row_counts(db, tmp_path) == before
    plan = copy_database(settings_for(source, tmp_path), target, force=True, dry_run=True)
    assert plan["would_copy"] and "projects" in plan["target_not_empty"]
    assert_verified(copy_database(settings_for(source, tmp_path), target, force=True))
    assert_same_as_source(target.url, tmp_path, "forced.jsonl")


def test_a_failed_copy_leaves_the_target_as_it_was(
    source: str, tmp_path: Path, make_settings: Any
) -> None:
    target = make_settings()
    with open_db(target.url, tmp_path) as db:
        db.projects.create("kept")
        before = row_counts(db, tmp_path)
    # The last table refuses rows: the copy fails after everything else went in.
    if target.is_postgres:
        raw_sql(target.url, "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no audit rows today'; END $$; "
                "CREATE TRIGGER refuse BEFORE INSERT ON audit_log FOR EACH ROW "
                "EXECUTE FUNCTION refuse()")
    else:
        raw_sql(target.url, "CREATE TRIGGER refuse BEFORE INSERT ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'no audit rows today'); END;")
    source_bytes = file_bytes(source)
    try:
        with pytest.raises(CtxdbError, match="no audit rows today"):
            copy_database(settings_for(source, tmp_path), target, force=True)
    finally:
        drop_trigger(target, "refuse", "audit_log")
    with open_db(target.url, tmp_path) as db:
        assert row_counts(db, tmp_path) == before
    assert file_bytes(source) == source_bytes  # the source file and its WAL, byte for byte


def file_bytes(path: str) -> dict[str, bytes]:
    """The database file and its WAL (an empty WAL, which a reader may create, is none)."""
    files = (Path(path), Path(f"{path}-wal"))
    return {str(f): f.read_bytes() for f in files if f.exists() and f.stat().st_size}


def test_a_copy_that_differs_from_its_source_is_reported(
    source: str, tmp_path: Path, make_settings: Any
) -> None:
    target = make_settings()
    with open_db(target.url, tmp_path):
        pass  # migrated, so that the trigger has its table
    # The target changes what it receives: verification must notice.
    if target.is_postgres:
        raw_sql(target.url, "CREATE OR REPLACE FUNCTION shout() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$; "
                "CREATE TRIGGER shout BEFORE INSERT ON projects FOR EACH ROW "
                "EXECUTE FUNCTION shout()")
    else:
        raw_sql(target.url, "CREATE TRIGGER shout AFTER INSERT ON projects BEGIN "
                "UPDATE projects SET name = upper(name) WHERE project_id = new.project_id; END;")
    try:
        with pytest.raises(CopyVerificationError, match="projects") as failed:
            copy_database(settings_for(source, tmp_path), target, force=True)
    finally:
        drop_trigger(target, "shout", "projects")
    differing = [row["table"] for row in failed.value.details["tables"] if not row["match"]]
    assert differing == ["projects"]


def test_a_dry_run_changes_nothing(source: str, tmp_path: Path) -> None:
    target = str(tmp_path / "never.db")
    plan = copy_database(settings_for(source, tmp_path), settings_for(target, tmp_path),
                         dry_run=True)
    assert plan["dry_run"] and plan["would_copy"] and not plan["target_migrated"]
    assert {row["table"]: row["source_rows"] for row in plan["tables"]}["projects"] == 3
    with connect_storage(settings_for(target, tmp_path)) as storage:
        assert Migrator(storage).current_version() == 0


def test_refusals(source: str, tmp_path: Path) -> None:
    same = settings_for(source, tmp_path)
    with pytest.raises(ValidationError, match="same database"):
        copy_database(same, settings_for(f"sqlite:///{source}", tmp_path))
    with pytest.raises(ValidationError, match="batch size"):
        copy_database(same, settings_for(str(tmp_path / "t.db"), tmp_path), batch_size=0)
    with pytest.raises(DatabaseUnavailableError, match="no SQLite database"):
        copy_database(settings_for(str(tmp_path / "missing.db"), tmp_path), same)
    assert not (tmp_path / "missing.db").exists()
    old = settings_for(str(tmp_path / "old.db"), tmp_path)
    with connect_storage(old) as storage:
        Migrator(storage).upgrade(3)
    with pytest.raises(SchemaOutdatedError, match="older than this ctxdb"):
        copy_database(old, settings_for(str(tmp_path / "t2.db"), tmp_path))
    with connect_storage(old) as storage:
        assert Migrator(storage).current_version() == 3


@pytest.mark.postgres
@pytest.mark.parametrize("target_backend", ["sqlite", "postgres"])
def test_new_items_after_a_copy_never_take_an_archived_items_id(
    tmp_path: Path, fresh_pg_url: str, target_backend: str
) -> None:
    """An archived item keeps its id (it can be unarchived), so a copy's counter must move
    past archived ids too: the newest item was archived, and after the copy a new item must
    not be numbered like it, nor its unarchiving fail."""
    url = str(tmp_path / "archive-source.db")
    with open_db(url, tmp_path) as db:
        pid = db.projects.create("archive")["project_id"]
        db.context.store(pid, {"stays": True}, "CRITICAL")
        newest = int(db.context.store(pid, {"goes": True}, "LOW")["item_id"])
    raw_sql(url, "UPDATE context_items SET created_at = '2020-01-02T03:04:05.678Z' "
                 f"WHERE item_id = {newest}")
    with open_db(url, tmp_path) as db:
        assert db.retention.collect()["kinds"]["context_items"]["done"] == 1
    target = str(tmp_path / "copy.db") if target_backend == "sqlite" else fresh_pg_url
    assert_verified_copy = copy_database(settings_for(url, tmp_path),
                                         settings_for(target, tmp_path))
    assert all(row["match"] for row in assert_verified_copy["tables"])
    with open_db(target, tmp_path) as db:
        fresh = int(db.context.store(pid, {"after": "copy"}, "HIGH")["item_id"])
        assert fresh > newest
        assert [row["item_id"] for row in db.retention.unarchive(newest, project_id=pid)] \
            == [newest]
