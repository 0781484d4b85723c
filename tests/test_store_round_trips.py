"""A store's statements and round trips (issue 14), and the look for documents without index
terms that PostgreSQL sends with the statement that wrote one (``RawTx.look_ahead``).

The look is answered before later statements of the unit run: when one of them may write a
document too, that answer must not be used, or a document would be committed without its
terms (and missing from search). These tests write several documents in one unit, in every
way a unit can, and check that each is searchable and none is left without terms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from ctxdb.service import Ctxdb
from ctxdb.settings import load_settings
from ctxdb.storage import Tx
from ctxdb.storage.pg_wire import Wire
from item_numbers import check_increasing


def _refused(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a store's statement went through a psycopg cursor, not pg_wire.py")


def _pending(db: Ctxdb) -> list[Any]:
    return db.storage.read(lambda tx: tx.all("search_pending_documents", after=0, limit=10))


def _assert_left_as_the_backend_may(db: Ctxdb) -> None:
    """No document committed without its terms (PostgreSQL), or fewer than may wait for a
    search or a later write (SQLite's Dialect.pending_limit)."""
    limit = db.storage.dialect.pending_limit
    assert len(_pending(db)) < limit if limit else _pending(db) == []


def test_documents_written_after_the_look_are_indexed(db: Ctxdb, pid: str) -> None:
    db.context.store(pid, {"note": "warmup"})  # the first write learns the schema
    first = db.context.item_values(pid, {"note": "quokka ledger"}, "HIGH", "code", None, None,
                                   None, None, None)
    second = db.context.item_values(pid, {"note": "wombat invoices"}, "HIGH", "code", None,
                                    None, None, None, None)

    def unit(tx: Tx) -> None:
        db.context.store_in_tx(tx, first, None)
        db.context.store_in_tx(tx, second, None)
        # A deferred statement that writes a document, after both looks were answered.
        tx.defer("supersede_item", item_id=db.context.store_in_tx(tx, {
            **first, "idempotency_key": "third"}, None)["item_id"], superseded_by=None)

    db.storage.write(unit)
    _assert_left_as_the_backend_may(db)
    for word in ("quokka", "wombat", "invoice"):
        assert db.context.search(pid, word)["items"], word
    assert _pending(db) == []  # a search leaves none waiting


def test_a_memory_put_and_a_store_in_one_unit_are_both_indexed(db: Ctxdb, pid: str) -> None:
    db.context.store(pid, {"note": "warmup"})
    values = db.context.item_values(pid, {"note": "pangolin"}, "HIGH", "code", None, None,
                                    None, None, None)

    def unit(tx: Tx) -> None:
        db.context.store_in_tx(tx, values, None)
        tx.execute("delete_item", item_id=db.context.store_in_tx(tx, {
            **values, "idempotency_key": "gone"}, None)["item_id"], deleted_by="user:test")

    db.storage.write(unit)
    db.memories.put(pid, "notes:zoo", "animal", {"name": "axolotl"})
    _assert_left_as_the_backend_may(db)
    assert db.context.search(pid, "pangolin")["items"]
    assert [hit["kind"] for hit in db.search.search(pid, "axolotl")] == ["memory"]
    assert _pending(db) == []


@pytest.mark.postgres
def test_a_postgres_store_is_two_round_trips_and_commits_with_its_statement(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BEGIN with the transaction id, then the store, the look and the COMMIT in one
    pipeline: the project's row is not held for a round trip of the client (Tx.commit_with)."""
    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    with Ctxdb.open(load_settings(env=env, url=pg_url, actor="user:test")) as db:
        pid = db.projects.create("round trips")["project_id"]
        db.context.store(pid, {"note": "warmup"})
        round_trips: list[list[str]] = []
        original_simple, original_exchange = Wire.simple, Wire.exchange

        def counting_simple(self: Wire, sql: bytes) -> Any:  # one message: one round trip
            round_trips.append([sql.decode()])
            return original_simple(self, sql)

        def counting_exchange(self: Wire, statements: Any, pipeline: bool = True) -> Any:
            texts = [sql.decode() if isinstance(sql, bytes) else sql for sql, _ in statements]
            round_trips.append(["store" if "INSERT INTO context_items" in text else
                                "look" if "terms IS NULL" in text else text
                                for text in texts] if pipeline else ["one by one"])
            return original_exchange(self, statements, pipeline)

        monkeypatch.setattr(Wire, "simple", counting_simple)
        monkeypatch.setattr(Wire, "exchange", counting_exchange)
        monkeypatch.setattr(psycopg.Cursor, "execute", _refused)
        db.context.store(pid, {"note": "two round trips"})
        monkeypatch.undo()
        assert round_trips == [["BEGIN; SELECT txid_current()"], ["store", "look", "COMMIT"]]
        assert db.context.search(pid, "round")["items"]


@pytest.mark.postgres
def test_the_look_goes_only_with_a_statement_that_may_write_a_document(
        pg_url: str, tmp_path: Path) -> None:
    """A read in a write unit sends no look after it: only statements that may leave a
    document without its terms do (the look is a statement on the server's time)."""
    from ctxdb.storage.base import raw

    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    with Ctxdb.open(load_settings(env=env, url=pg_url, actor="user:test")) as db:
        pid = db.projects.create("looks")["project_id"]
        db.context.store(pid, {"note": "warmup"})
        values = db.context.item_values(pid, {"note": "okapi"}, "HIGH", "code", None, None,
                                        None, None, None)

        def unit(tx: Tx) -> tuple[Any, Any]:
            raw(tx).look_ahead("search_pending_documents", after=0, limit=7)
            tx.one("get_project", project_id=pid)
            after_read = raw(tx).looked("search_pending_documents", after=0, limit=7)
            raw(tx).look_ahead("search_pending_documents", after=0, limit=7)
            db.context.store_in_tx(tx, values, None)
            after_store = raw(tx).looked("search_pending_documents", after=0, limit=7)
            return after_read, after_store

        after_read, after_store = db.storage.write(unit)
        assert after_read is None
        assert after_store is not None


@pytest.mark.postgres
def test_a_store_holds_its_projects_row_only_while_the_server_works(
        pg_url: str, tmp_path: Path) -> None:
    """The COMMIT travels with the store (Tx.commit_with): once the unit has the store's
    answer, the project's row is free (the store holds it FOR KEY SHARE from migration 0029,
    FOR UPDATE before), and an archive of the project, which locks it FOR UPDATE, does not
    wait."""
    from ctxdb.service.usecases.context_insert import draw_and_insert

    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    with Ctxdb.open(load_settings(env=env, url=pg_url, actor="user:test")) as db:
        pid = db.projects.create("row held")["project_id"]
        warm = db.context.store(pid, {"note": "warmup"})  # the first write learns the schema
        values = db.context.item_values(pid, {"note": "okapi"}, "HIGH", "code", None, None,
                                        None, None, None)

        def unit(tx: Tx) -> Any:
            row = draw_and_insert(tx, values, "user:test", last=True)
            with psycopg.connect(pg_url, autocommit=True) as other:
                other.execute("SET lock_timeout = '2s'")  # held: LockNotAvailable
                other.execute("SELECT 1 FROM projects WHERE project_id = %s FOR UPDATE",
                              (pid,))
            return row

        stored = db.storage.write(unit)["sequence_number"]
        after = db.context.store(pid, {"note": "next"})["sequence_number"]
        check_increasing(db, [warm["sequence_number"], stored, after])


@pytest.mark.postgres
def test_documents_the_store_s_look_finds_are_indexed_after_its_commit(
        pg_url: str, tmp_path: Path) -> None:
    """A store commits with its statement; documents without terms that its look finds
    (written by others) get their terms in a transaction of their own right after."""
    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    with Ctxdb.open(load_settings(env=env, url=pg_url, actor="user:test")) as db:
        pid = db.projects.create("look after commit")["project_id"]
        first = db.context.store(pid, {"note": "narwhal"})
        with psycopg.connect(pg_url, autocommit=True) as other:  # as a writer of old would
            other.execute("UPDATE search_documents SET terms = NULL WHERE item_id = %s",
                          (first["item_id"],))
        assert not db.context.search(pid, "narwhal")["items"]
        second = db.context.store(pid, {"note": "dugong"})
        check_increasing(db, [first["sequence_number"], second["sequence_number"]])
        assert _pending(db) == []
        for word in ("narwhal", "dugong"):
            assert db.context.search(pid, word)["items"], word


@pytest.mark.postgres
def test_nothing_runs_after_the_statement_a_transaction_committed_with(
        pg_url: str, tmp_path: Path) -> None:
    """A statement after a unit's commit_with is refused, not run outside its transaction."""
    from ctxdb.errors import StorageError
    from ctxdb.service.usecases.context_insert import draw_and_insert

    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    with Ctxdb.open(load_settings(env=env, url=pg_url, actor="user:test")) as db:
        pid = db.projects.create("after commit")["project_id"]
        db.context.store(pid, {"note": "warmup"})
        values = db.context.item_values(pid, {"note": "tapir"}, "HIGH", "code", None, None,
                                        None, None, None)

        def unit(tx: Tx) -> None:
            draw_and_insert(tx, values, "user:test", last=True)
            tx.one("get_project", project_id=pid)

        with pytest.raises(StorageError, match="commit_with"):
            db.storage.write(unit)
