"""Backup and restore in each backend's own format: one interface, one implementation per backend.

``ctxdb backup`` and ``ctxdb restore`` (``service/operations/backup.py``) decide what is
allowed: which format, whether a database holding data may be replaced, what a restore is
checked against, the audit row. How a backend copies itself is here: :class:`Backups` with
``SQLiteBackups``
(``sqlite_backup.py``: SQLite's online backup API) and ``PostgresBackups`` (``pg_tools.py``:
pg_dump, pg_restore and psql). The export bundle, the format both backends share, is the
service layer's.

Like the services that use them, these take the settings, not an open storage: a backup or a
restore must work on a database whose schema is behind or absent.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ctxdb.progress import Progress
from ctxdb.settings import Settings
from ctxdb.storage.dialect import Dialect
from ctxdb.storage.migrate import migration_files


@dataclass(frozen=True)
class BackupContents:
    """What a backup holds: its schema version, rows per table (``schema_migrations``
    included), and the verdict of the check it passed."""

    schema_version: int
    tables: dict[str, int] = field(default_factory=dict)
    integrity: str = "ok"


class Backups(abc.ABC):
    """Backups of the database the settings name, in its backend's native format."""

    format: ClassVar[str]  # the native format's name, as ``ctxdb backup --format`` takes it
    dialect: ClassVar[Dialect]
    title: ClassVar[str]  # the backend, as a sentence names it
    described: ClassVar[str]  # a backup of the native format, as a sentence names it

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def latest_version(self) -> int:
        """The newest schema version this ctxdb knows for the backend."""
        return len(migration_files(self.dialect))

    @staticmethod
    @abc.abstractmethod
    def recognizes(path: Path) -> bool:
        """Whether the file is a backup in this format (by its first bytes)."""

    def available(self) -> bool:
        """Whether the native format can be written and read here (its tools exist)."""
        return True

    def protected_files(self) -> set[Path]:
        """Files a backup must never be written over (the live database's own)."""
        return set()

    @abc.abstractmethod
    def back_up(self, target: Path, progress: Progress) -> BackupContents:
        """Write one consistent snapshot of the database to the new file ``target`` and
        check the copy (refusing one that is not a usable ctxdb backup)."""

    @abc.abstractmethod
    def inspect(self, path: Path) -> BackupContents:
        """Check a backup before it is restored: readable whole, a ctxdb schema, not newer
        than this ctxdb knows (``BackupInvalidError`` otherwise)."""

    @abc.abstractmethod
    def live_row_counts(self) -> dict[str, int]:
        """Rows per table of the live database (empty when there is none yet)."""

    @abc.abstractmethod
    def restore(self, source: Path, progress: Progress) -> None:
        """Replace the live database's content with the checked backup ``source``, all or
        nothing."""


def _implementations() -> list[type[Backups]]:
    from ctxdb.storage.pg_tools import PostgresBackups
    from ctxdb.storage.sqlite_backup import SQLiteBackups

    return [SQLiteBackups, PostgresBackups]


def backups(settings: Settings) -> Backups:
    """The backups of the database the settings name."""
    from ctxdb.storage import dialect_of

    dialect = dialect_of(settings)
    return next(kind for kind in _implementations() if kind.dialect is dialect)(settings)


def native_format_of(path: Path) -> type[Backups] | None:
    """The backend whose native backup ``path`` is, or ``None`` (not a native backup)."""
    return next((kind for kind in _implementations() if kind.recognizes(path)), None)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (POSIX: fsync the directory)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
