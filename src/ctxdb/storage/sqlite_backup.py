"""SQLite backup and restore through SQLite's online backup API.

Backup: the source connection opens a read transaction first and keeps it for the whole copy.
In WAL mode that snapshot never blocks a writer, and because the copy reads only from it, the
backup is one consistent state of the database however many processes write meanwhile (a
backup stepped without that snapshot restarts whenever another process commits, and may never
finish under steady writes). The copy is written to a temporary file beside the target,
switched to a rollback journal (so that it is one self-contained file), checked, fsynced and
only then renamed over the target, and the directory is fsynced.

Restore: the backup is opened read-only and checked first; the pages are then copied *into*
the live database through a connection opened like any other (the backup API writes through
the pager, under the database's write lock, and through its WAL). The live file and its
``-wal``/``-shm`` files are never renamed, truncated or deleted by ctxdb, and other processes
see either the old content or the restored one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ctxdb.errors import (
    BackupInvalidError,
    DatabaseUnavailableError,
    StorageError,
    ValidationError,
)
from ctxdb.progress import Progress
from ctxdb.settings import Settings
from ctxdb.storage import backups
from ctxdb.storage.dialect import SQLITE
from ctxdb.storage.sqlite_connect import connect

# Pages copied per step: small enough for a progress bar to move, large enough to be quick.
PAGES_PER_STEP = 256
SQLITE_MAGIC = b"SQLite format 3\x00"



def is_sqlite_file(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def live_files(database: Path) -> set[Path]:
    """The database file and the files SQLite (and ctxdb's writers' turns, sqlite_turns.py)
    keep beside it, which nothing may replace."""
    return {database, *(Path(f"{database}{suffix}")
                        for suffix in ("-wal", "-shm", "-journal", "-writers"))}


def user_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name").fetchall()
    return [str(name) for (name,) in rows]


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per table (the migrations bookkeeping included), for summaries and comparisons."""
    return {table: int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
            for table in user_tables(conn)}


def schema_version(conn: sqlite3.Connection) -> int:
    """The latest applied migration, 0 when the file has no ctxdb schema."""
    if "schema_migrations" not in user_tables(conn):
        return 0
    return int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
               .fetchone()[0])


def integrity(conn: sqlite3.Connection) -> str:
    """``ok``, or the first problems ``PRAGMA integrity_check`` found."""
    problems = [str(row[0]) for row in conn.execute("PRAGMA integrity_check(20)").fetchall()]
    return "ok" if problems == ["ok"] else "; ".join(problems)


class _PagesCopied:
    """SQLite's backup callback (pages left of pages in all) told as the steps of one phase."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._done: int | None = None

    def __call__(self, _status: int, remaining: int, total: int) -> None:
        if self._done is None:
            self._progress.start("copying pages", total)
            self._done = 0
        self._progress.advance(total - remaining - self._done)
        self._done = total - remaining


def _step_reporter(progress: Progress | None) -> Callable[[int, int, int], None] | None:
    return None if progress is None else _PagesCopied(progress)


def online_backup(database: Path, target: Path, settings: Settings,
                  progress: Progress | None = None) -> int:
    """Copy a consistent snapshot of ``database`` into the new file ``target``.

    Returns the schema version of the snapshot. ``target`` is left in rollback-journal mode.
    """
    source = connect(database, settings)
    try:
        source.execute("BEGIN")  # the snapshot; the first read below starts it
        version = schema_version(source)
        with closing(sqlite3.connect(str(target), isolation_level=None)) as copy:
            source.backup(copy, pages=PAGES_PER_STEP, progress=_step_reporter(progress))
            copy.execute("PRAGMA journal_mode = DELETE")
        source.execute("ROLLBACK")
        return version
    except sqlite3.Error as exc:
        raise StorageError(f"backup of {database} failed: {exc}") from exc
    finally:
        source.close()


@contextmanager
def open_read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection that cannot change ``path`` (a backup being checked or restored from)."""
    uri = f"file:{quote(str(path))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise BackupInvalidError(f"cannot open {path} as a SQLite database: {exc}",
                                 file=str(path)) from exc
    try:
        yield conn
    finally:
        conn.close()


def inspect_backup(path: Path, newest_known: int) -> dict[str, Any]:
    """Check a SQLite backup file; returns its schema version and rows per table.

    Refuses (``BackupInvalidError``) a damaged file, a file without a ctxdb schema, and one
    whose schema is newer than this ctxdb knows.
    """
    with open_read_only(path) as conn:
        try:
            verdict = integrity(conn)
            version = schema_version(conn)
            counts = row_counts(conn) if verdict == "ok" else {}
        except sqlite3.DatabaseError as exc:
            raise BackupInvalidError(f"{path} is not a usable SQLite database: {exc}",
                                     file=str(path)) from exc
    if verdict != "ok":
        raise BackupInvalidError(f"{path} failed its integrity check: {verdict}",
                                 file=str(path), integrity=verdict)
    if version == 0:
        raise BackupInvalidError(f"{path} is a SQLite database but not a ctxdb backup "
                                 "(it has no schema_migrations)", file=str(path))
    if version > newest_known:
        raise BackupInvalidError(
            f"{path} has schema version {version}, newer than this ctxdb ({newest_known}); "
            "restore it with a newer ctxdb", file=str(path), schema_version=version)
    return {"schema_version": version, "tables": counts, "integrity": verdict}


def live_row_counts(database: Path, settings: Settings) -> dict[str, int]:
    """Rows per table of the live database (empty when the file does not exist yet)."""
    if not database.exists():
        return {}
    with closing(connect(database, settings)) as conn:
        return row_counts(conn)


def restore_into(backup: Path, database: Path, settings: Settings,
                 progress: Progress | None = None) -> str:
    """Copy every page of ``backup`` into the live ``database``; returns its integrity check."""
    with open_read_only(backup) as source, closing(connect(database, settings)) as live:
        try:
            source.backup(live, pages=PAGES_PER_STEP, progress=_step_reporter(progress))
        except sqlite3.OperationalError as exc:
            raise DatabaseUnavailableError(
                f"could not restore into {database}: {exc} (a page size that differs from "
                "the live database's cannot be restored into a WAL database)") from exc
        return integrity(live)


class SQLiteBackups(backups.Backups):
    """A SQLite file made with the online backup API; restored page by page into the live
    database through SQLite."""

    format = "sqlite"
    dialect = SQLITE
    title = "SQLite"
    described = "a SQLite"

    @staticmethod
    def recognizes(path: Path) -> bool:
        return is_sqlite_file(path)

    def protected_files(self) -> set[Path]:
        return live_files(self.settings.sqlite_path)

    def back_up(self, target: Path, progress: Progress) -> backups.BackupContents:
        database = self.settings.sqlite_path
        if not database.exists():
            raise ValidationError(f"there is no database at {database} to back up",
                                  location=str(database))
        version = online_backup(database, target, self.settings, progress)
        progress.start("checking the copy", None)
        contents = inspect_backup(target, max(self.latest_version, version))
        if contents["schema_version"] != version:  # a defence: the copy is the snapshot read
            raise BackupInvalidError(f"the copy has schema version {contents['schema_version']}"
                                     f", the database had {version}")
        return backups.BackupContents(version, contents["tables"], contents["integrity"])

    def inspect(self, path: Path) -> backups.BackupContents:
        contents = inspect_backup(path, self.latest_version)
        return backups.BackupContents(contents["schema_version"], contents["tables"],
                                      contents["integrity"])

    def live_row_counts(self) -> dict[str, int]:
        return live_row_counts(self.settings.sqlite_path, self.settings)

    def restore(self, source: Path, progress: Progress) -> None:
        verdict = restore_into(source, self.settings.sqlite_path, self.settings, progress)
        if verdict != "ok":  # never expected: the source was checked and the copy is SQLite's
            raise BackupInvalidError(
                f"the restored database failed its integrity check: {verdict}")
