"""Opening a SQLite connection as ctxdb's rules want it (see ``sqlite.py``'s docstring: WAL,
``synchronous``, the busy timeout, foreign keys, explicit transactions), and telling a busy
database's errors from the others. Apart from ``sqlite.py`` so that each stays short.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from ctxdb.errors import ConflictError, DatabaseUnavailableError, StorageError
from ctxdb.private_files import private_directory, private_file
from ctxdb.settings import Settings

_BUSY_MESSAGES = ("database is locked", "database is busy", "database table is locked")


def connect(path: Path, settings: Settings, read_only: bool = False) -> sqlite3.Connection:
    """Open one connection with ctxdb's settings; the only place connections are made.

    ``read_only`` opens an existing file that this connection cannot change (the source of a
    copy): SQLite itself then refuses every write.
    """
    try:
        if not read_only:
            # Created private (SQLite gives the -wal and -shm files the database's mode).
            private_directory(path.parent)
            private_file(path)
        elif not path.is_file():
            raise DatabaseUnavailableError(f"no SQLite database at {path}")
        conn = sqlite3.connect(
            path.as_uri() + "?mode=ro" if read_only else str(path),
            timeout=settings.busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
            uri=read_only,
        )
    except (OSError, sqlite3.Error) as exc:
        raise DatabaseUnavailableError(f"cannot open SQLite database {path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(settings.busy_timeout_ms)}")
        _ensure_wal(conn, settings.busy_timeout_ms / 1000)
        conn.execute(f"PRAGMA synchronous = {settings.sqlite_synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DatabaseUnavailableError(f"{path} is not a usable SQLite database: {exc}") from exc
    return conn


def _ensure_wal(conn: sqlite3.Connection, patience: float) -> None:
    # WAL is a property of the file. Switching to it needs a moment of exclusive access, and
    # that pragma does not always wait on the busy handler, so a fresh file opened by many
    # processes at once retries here until one of them has switched it.
    deadline = time.monotonic() + patience
    mode = "unknown"
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() == "wal":
                return
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() == "wal":
                return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            # SQLite answers the pragma with the mode it kept when WAL is impossible (for
            # example on a file system without shared memory); never run without WAL.
            raise DatabaseUnavailableError(
                f"cannot switch the database to WAL mode (it stays in {mode!r} mode)")
        time.sleep(0.01)


def is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(
        text in str(exc).lower() for text in _BUSY_MESSAGES
    )


def translate_error(exc: sqlite3.Error) -> StorageError | ConflictError:
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError(f"the database refused the change: {exc}")
    return StorageError(f"SQLite error: {exc}")
