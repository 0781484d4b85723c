"""Storage: one interface (:class:`Storage`), a SQLite and a PostgreSQL backend behind it."""

from __future__ import annotations

from pathlib import Path

from ctxdb.settings import Settings
from ctxdb.storage.base import Row, Storage, Tx
from ctxdb.storage.dialect import POSTGRES, SQLITE, Dialect
from ctxdb.storage.migrate import Migrator

__all__ = ["Migrator", "Row", "Storage", "Tx", "absent_database", "connect_storage",
           "dialect_of", "open_storage"]


def dialect_of(settings: Settings) -> Dialect:
    """The backend the settings name, without connecting to it."""
    return POSTGRES if settings.is_postgres else SQLITE


def absent_database(settings: Settings) -> Path | None:
    """The embedded database's file when it does not exist yet (opening it would create it);
    ``None`` otherwise, and always for a server, whose databases are known by connecting."""
    if settings.is_postgres or settings.sqlite_path.exists():
        return None
    return settings.sqlite_path


def connect_storage(settings: Settings, read_only: bool = False) -> Storage:
    """Connect to the database named by the settings, without checking its schema.

    ``read_only``: the database refuses every write made through this storage (a SQLite file
    opened read-only, PostgreSQL sessions with read-only transactions).
    """
    if settings.is_server:
        from ctxdb.database_url import server_refusal

        raise server_refusal(settings.url)
    if settings.is_postgres:
        from ctxdb.storage.postgres import PostgresStorage

        return PostgresStorage(settings, read_only)
    from ctxdb.storage.sqlite import SQLiteStorage

    return SQLiteStorage(settings, read_only)


def open_storage(settings: Settings) -> Storage:
    """Connect and make sure the schema is current (upgrading it where that is automatic)."""
    storage = connect_storage(settings)
    try:
        Migrator(storage).ensure_current(settings.migrates_automatically)
    except BaseException:
        storage.close()
        raise
    return storage
