"""``ctxdb.service.operations.backup`` on both backends: round trips, refusals, and damaged backups.

A database's content is compared as every row of every table, read with the raw driver; a
refused restore must leave that content exactly as it was.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from ctxdb.errors import (
    BackupInvalidError,
    BackupTargetExistsError,
    DatabaseNotEmptyError,
    ValidationError,
)
from ctxdb.service import Ctxdb
from ctxdb.service.operations import backup
from ctxdb.settings import Settings, load_settings
from ctxdb.storage.tables import LOCAL_COLUMNS, table_named
from item_numbers import gapless

Content = dict[str, list[tuple[str, ...]]]


def content_of(settings: Settings) -> Content:
    """Every row of every table (values as text, rows sorted), the restore's audit row aside."""
    if settings.is_postgres:
        import psycopg

        with psycopg.connect(settings.url) as pg:
            names = [r[0] for r in pg.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")]
            tables = {name: pg.execute(_select_all(name)).fetchall() for name in names}
    else:
        with sqlite3.connect(settings.sqlite_path) as conn:
            names = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%'")]
            tables = {name: conn.execute(_select_all(name)).fetchall() for name in names}
        conn.close()
    return {name: sorted(tuple(_text(v) for v in row) for row in rows
                         if "database.restore" not in row)
            for name, rows in tables.items()}


def _select_all(table: str) -> str:
    """Every row; audit_log without the column each database numbers by itself (its
    transactions', for the change feed): a backup restored elsewhere, or a bundle, has others."""
    local = [column for name, column in LOCAL_COLUMNS if name == table]
    if not local:
        return f'SELECT * FROM "{table}"'
    kept = [column for column, _kind in table_named(table).columns]  # type: ignore[union-attr]
    return f'SELECT {", ".join(kept)} FROM "{table}"'


def _text(value: Any) -> str:
    """A value as text; JSON by its meaning (a bundle writes objects with sorted keys)."""
    if hasattr(value, "isoformat"):  # PostgreSQL timestamps: compare as ctxdb renders them
        return str(value.isoformat(timespec="milliseconds"))
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def populate(db: Ctxdb, name: str = "Backed up") -> str:
    """A little of everything: items (one superseded), an instance, memories, events, tasks."""
    pid: str = db.projects.create(name, "for backups", 10)["project_id"]
    agent = db.instances.launch(pid, client="claude-code", session_id=f"s-{name}")
    first = db.context.store(pid, {"decision": "use Stripe"}, priority="CRITICAL",
                             created_by=agent["instance_id"])
    db.context.supersede(first["item_id"], {"decision": "use Stripe and PayPal"})
    db.context.store(pid, {"note": "refactor cart"}, priority="LOW")
    db.memories.put(pid, "user:prefs", "theme", {"dark": True})
    db.memories.put(pid, "user:prefs", "theme", {"dark": False})
    session = db.conversations.create(pid, "chat", "alice", state={"step": 1})
    db.conversations.append(session["session_id"], "user", {"text": "hello"})
    db.tasks.create(pid, "write the backup docs", priority=3)
    return pid


@pytest.fixture
def other_settings(backend: str, settings: Settings, tmp_path: Path,
                   request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Settings for a second, brand-new database of the same backend (no schema at all)."""
    if backend == "sqlite":
        yield settings.replace(url=str(tmp_path / "elsewhere" / "restored.db"))
        return
    import psycopg

    name = f"ctxdb_restore_{secrets.token_hex(4)}"
    with psycopg.connect(request.getfixturevalue("pg_url"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield settings.replace(url=urlunsplit(urlsplit(settings.url)._replace(
                path="/" + name)))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_then_restore_over_changes_gives_back_the_same_rows(
        db: Ctxdb, settings: Settings, tmp_path: Path) -> None:
    pid = populate(db)
    before = content_of(settings)
    made = backup.backup(settings, tmp_path / "b" / "ctxdb.backup")
    assert made["integrity"] == "ok" and made["schema_version"] == db.migrator().latest_version
    assert made["tables"]["context_items"] == 3 and made["tables"]["projects"] == 1
    assert made["format"] == ("pg_dump" if settings.is_postgres else "sqlite")
    assert Path(made["checksum_file"]).read_text().split() == [made["sha256"], "ctxdb.backup"]

    db.context.store(pid, {"after": "the backup"}, priority="HIGH")
    db.memories.delete(pid, "user:prefs", "theme")
    db.projects.create("Made later")
    assert content_of(settings) != before

    restored = backup.restore(settings, made["file"], force=True)
    assert restored["checksum"] == "verified" and restored["replaced_rows"]["projects"] == 2
    assert content_of(settings) == before
    assert db.audit_log(limit=1)[0]["action"] == "database.restore"
    restored_numbers = [i["sequence_number"] for group in db.context.full(pid).values()
                        for i in group]
    item = db.context.store(pid, {"written": "after the restore"})  # the store works on
    assert item["sequence_number"] > max(restored_numbers)
    if gapless(db):
        assert item["sequence_number"] == 4


def test_restore_into_a_new_database_needs_no_force(
        db: Ctxdb, settings: Settings, other_settings: Settings, tmp_path: Path) -> None:
    populate(db)
    made = backup.backup(settings, tmp_path / "ctxdb.backup")
    result = backup.restore(other_settings, made["file"])
    assert result["replaced_rows"] == {}
    assert content_of(other_settings) == content_of(settings)


def test_restore_refuses_a_database_with_data_and_changes_nothing(
        db: Ctxdb, settings: Settings, tmp_path: Path) -> None:
    populate(db, "first")
    made = backup.backup(settings, tmp_path / "ctxdb.backup")
    populate(db, "second")
    before = content_of(settings)
    with pytest.raises(DatabaseNotEmptyError) as refused:
        backup.restore(settings, made["file"])
    assert refused.value.details["tables"]["projects"] == 2
    dry = backup.restore(settings, made["file"], force=True, dry_run=True)
    assert dry["dry_run"] and dry["replaced_rows"]["projects"] == 2
    assert not dry["needs_force"]
    # A dry run reports what would be replaced without --force, and says it is needed.
    unforced = backup.restore(settings, made["file"], dry_run=True)
    assert unforced["replaced_rows"]["projects"] == 2 and unforced["needs_force"]
    assert content_of(settings) == before


def _damage(path: Path, offset: int, length: int = 64) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        original = handle.read(length)
        handle.seek(offset)
        handle.write(bytes(b ^ 0x5A for b in original))


def test_a_backup_that_does_not_match_its_checksum_is_refused(
        db: Ctxdb, settings: Settings, tmp_path: Path) -> None:
    populate(db)
    made = backup.backup(settings, tmp_path / "ctxdb.backup")
    db.projects.create("Only in the live database")
    before = content_of(settings)
    _damage(Path(made["file"]), made["bytes"] // 2, 1)
    with pytest.raises(BackupInvalidError, match="does not match its checksum"):
        backup.restore(settings, made["file"], force=True)
    assert content_of(settings) == before


def test_a_damaged_backup_without_checksum_is_refused_before_anything_changes(
        db: Ctxdb, settings: Settings, tmp_path: Path) -> None:
    populate(db)
    made = backup.backup(settings, tmp_path / "ctxdb.backup")
    Path(made["checksum_file"]).unlink()
    db.projects.create("Only in the live database")
    before = content_of(settings)
    damaged = Path(made["file"])
    if settings.is_postgres:
        _damage(damaged, made["bytes"] // 2, 256)  # inside the compressed table data
    else:
        page = 4096
        for number in range(1, made["bytes"] // page):  # every b-tree page header but the 1st
            _damage(damaged, number * page, 8)
    expected = "not a readable pg_dump" if settings.is_postgres else "integrity|not a usable"
    with pytest.raises(BackupInvalidError, match=expected):
        backup.restore(settings, made["file"], force=True)
    assert content_of(settings) == before


def test_files_that_are_not_backups_are_refused(
        db: Ctxdb, settings: Settings, tmp_path: Path) -> None:
    populate(db)
    before = content_of(settings)
    text = tmp_path / "notes.txt"
    text.write_text("not a backup")
    with pytest.raises(BackupInvalidError, match="neither a SQLite backup"):
        backup.restore(settings, text, force=True)
    with pytest.raises(BackupInvalidError, match="no backup file"):
        backup.restore(settings, tmp_path / "missing.db", force=True)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    expected = "cannot be restored into a PostgreSQL" if settings.is_postgres else "not a ctxdb"
    with pytest.raises(BackupInvalidError, match=expected):
        backup.restore(settings, foreign, force=True)
    assert content_of(settings) == before


def test_backup_refuses_to_overwrite_a_file_unless_forced(
        db: Ctxdb, settings: Settings, tmp_path: Path) -> None:
    populate(db)
    target = tmp_path / "ctxdb.backup"
    target.write_text("keep me")
    with pytest.raises(BackupTargetExistsError):
        backup.backup(settings, target)
    assert target.read_text() == "keep me"
    assert backup.backup(settings, target, force=True)["tables"]["projects"] == 1
    with pytest.raises(ValidationError, match="format"):
        backup.backup(settings, tmp_path / "x", fmt="zip")
    assert not (tmp_path / "x").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_sqlite_backup_never_writes_over_the_live_files(tmp_path: Path) -> None:
    settings = load_settings(env={"HOME": str(tmp_path)}, url=str(tmp_path / "live.db"))
    with Ctxdb.open(settings) as db:
        populate(db)
        for suffix in ("", "-wal", "-shm", "-writers"):
            with pytest.raises(ValidationError, match="live database"):
                backup.backup(settings, f"{settings.sqlite_path}{suffix}", force=True)
    with pytest.raises(ValidationError, match="no database"):
        backup.backup(settings.replace(url=str(tmp_path / "none.db")), tmp_path / "b.db")
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "b.db").exists()


def test_restore_reports_progress(db: Ctxdb, settings: Settings, tmp_path: Path) -> None:
    populate(db)
    stages: list[str] = []

    class Phases:
        def start(self, phase: str, total: int | None) -> None:
            stages.append(phase)

        def advance(self, amount: int) -> None:
            pass

    made = backup.backup(settings, tmp_path / "ctxdb.backup", progress=Phases())
    backup.restore(settings, made["file"], force=True, progress=Phases())
    assert "checking the backup" in stages and "writing to disk" in stages


def without_derived(content: Content) -> Content:
    """The content a bundle carries: search indexes are rebuilt, with new row ids."""
    from ctxdb.storage.tables import is_derived

    return {name: rows for name, rows in content.items() if not is_derived(name)}


def test_a_bundle_backup_round_trips(db: Ctxdb, settings: Settings, tmp_path: Path) -> None:
    pid = populate(db)
    before = without_derived(content_of(settings))
    made = backup.backup(settings, tmp_path / "ctxdb.bundle.gz", fmt="bundle")
    assert made["format"] == "bundle" and made["tables"]["context_items"] == 3
    db.context.store(pid, {"after": "the backup"})
    db.projects.create("Made later")
    with pytest.raises(DatabaseNotEmptyError):
        backup.restore(settings, made["file"])
    restored = backup.restore(settings, made["file"], force=True)
    assert restored["format"] == "bundle" and restored["checksum"] == "verified"
    assert without_derived(content_of(settings)) == before
    hits = db.context.search(pid, "PayPal")  # the search index is rebuilt from the rows
    assert hits


def test_postgres_falls_back_to_a_bundle_without_pg_dump(
        db: Ctxdb, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    populate(db)
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump, no pg_restore
    made = backup.backup(settings, tmp_path / "ctxdb.backup")
    assert made["format"] == ("bundle" if settings.is_postgres else "sqlite")
    with pytest.raises(ValidationError, match="backed up as"):
        backup.backup(settings, tmp_path / "other",
                      fmt="sqlite" if settings.is_postgres else "pg_dump")


def test_a_damaged_bundle_is_refused(db: Ctxdb, settings: Settings, tmp_path: Path) -> None:
    populate(db)
    made = backup.backup(settings, tmp_path / "ctxdb.bundle", fmt="bundle")
    Path(made["checksum_file"]).unlink()
    text = Path(made["file"]).read_text("utf-8")
    Path(made["file"]).write_text(text.replace("use Stripe", "use Stripf"), "utf-8")
    db.projects.create("Only in the live database")
    before = content_of(settings)
    with pytest.raises(BackupInvalidError, match="damaged"):
        backup.restore(settings, made["file"], force=True)
    assert content_of(settings) == before


def test_a_bundle_of_one_project_is_not_a_backup(
        db: Ctxdb, settings: Settings, tmp_path: Path) -> None:
    pid = populate(db)
    one = db.bundles.export(tmp_path / "project.bundle", pid)
    db.projects.create("Only in the live database")
    before = content_of(settings)
    with pytest.raises(BackupInvalidError, match="export of one project"):
        backup.restore(settings, one["path"], force=True)
    assert content_of(settings) == before


def test_a_backup_to_a_full_disk_is_a_typed_error_leaving_nothing(
        db: Ctxdb, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    from ctxdb.errors import OutputWriteError

    def full(_path: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(backup, "fsync_file", full)  # the disk fills as the backup is flushed
    target = tmp_path / "backups" / "ctxdb.backup"
    with pytest.raises(OutputWriteError) as refused:
        backup.backup(settings, target)
    assert refused.value.message == f"cannot write the backup {target}: No space left on device"
    assert list(target.parent.iterdir()) == []
