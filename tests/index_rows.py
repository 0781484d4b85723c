"""The SQLite search index's rows as a connection beside ctxdb's sees them: ctxdb's own would
bring the index current first (docs/architecture.md, "The SQLite search index brought current
in batches"), and these tests look at what waits before that."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def query_beside(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    """A statement on a connection of its own, in autocommit."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def waiting_documents(path: Path) -> int:
    """Search documents waiting for their index terms."""
    return int(query_beside(
        path, "SELECT count(*) FROM search_documents WHERE terms IS NULL")[0][0])


def index_rows(path: Path, word: str) -> int:
    """Rows of the FTS5 index that hold ``word``."""
    return int(query_beside(
        path, "SELECT count(*) FROM search_fts WHERE search_fts MATCH ?", word)[0][0])
