"""What the PostgreSQL server counts of a test's own writes (pg_stat_user_tables), for tests
that check how often a use case writes a row."""

from __future__ import annotations

from ctxdb.service import Ctxdb
from ctxdb.storage import Tx
from ctxdb.storage.base import raw


def search_document_writes(db: Ctxdb) -> tuple[int, int]:
    """Rows of search_documents inserted and updated so far, as the server counts them. The
    caller's pool has one connection, the one its writes ran on: its statistics are flushed
    first."""
    db.storage.read(lambda tx: raw(tx).one_raw("SELECT pg_stat_force_next_flush()", {}))

    def count(tx: Tx) -> tuple[int, int]:
        row = raw(tx).one_raw("SELECT n_tup_ins, n_tup_upd FROM pg_stat_user_tables "
                              "WHERE relname = 'search_documents'", {})
        assert row is not None
        return int(row["n_tup_ins"]), int(row["n_tup_upd"])

    return db.storage.read(count)
