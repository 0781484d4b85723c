"""A bulk load's page cache: enlarged on SQLite for the load, then set back, also when the
load fails (a connection setting outlives the transaction); nothing on PostgreSQL."""

from __future__ import annotations

import pytest

from ctxdb.service import Ctxdb
from ctxdb.storage import Tx
from ctxdb.storage.bulk import BULK_CACHE_KIB, bulk_page_cache


def cache_kib(tx: Tx, db: Ctxdb) -> int | None:
    query = db.storage.dialect.cache_kib
    if query is None:
        return None
    row = tx.one_raw(query, {})
    assert row is not None
    return int(row["kib"])


def test_the_cache_is_enlarged_for_the_load_and_set_back(db: Ctxdb, backend: str) -> None:
    dialect = db.storage.dialect
    seen: list[int | None] = []

    def load(tx: Tx) -> None:
        seen.append(cache_kib(tx, db))
        with bulk_page_cache(tx, dialect):
            seen.append(cache_kib(tx, db))
        seen.append(cache_kib(tx, db))

    db.storage.write(load)
    if backend == "postgres":
        assert seen == [None, None, None]
    else:
        assert seen[0] is not None and seen[0] < BULK_CACHE_KIB
        assert seen == [seen[0], BULK_CACHE_KIB, seen[0]]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_failed_load_sets_the_cache_back_too(db: Ctxdb) -> None:
    before = db.storage.read(lambda tx: cache_kib(tx, db))

    def failing(tx: Tx) -> None:
        with bulk_page_cache(tx, db.storage.dialect):
            raise RuntimeError("the load failed")

    with pytest.raises(RuntimeError, match="the load failed"):
        db.storage.write(failing)
    assert db.storage.read(lambda tx: cache_kib(tx, db)) == before
