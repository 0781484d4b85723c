"""Storage: one interface (:class:`Storage`), a SQLite and a PostgreSQL backend behind it."""

from __future__ import annotations

from ctxdb.settings import Settings
from ctxdb.storage.base import Row, Storage, Tx
from ctxdb.storage.migrate import Migrator

__all__ = ["Migrator", "Row", "Storage", "Tx", "connect_storage", "open_storage"]


def connect_storage(settings: Settings, read_only: bool = False) -> Storage:
    """Connect to the database named by the settings, without checking its schema.

    ``read_only``: the database refuses every write made through this storage (a SQLite file
    opened read-only, PostgreSQL sessions with read-only transactions).
    """
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
