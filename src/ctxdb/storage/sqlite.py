"""The embedded SQLite backend (standard library ``sqlite3`` only).

Durability and concurrency rules, applied to every connection this module opens:
WAL journal, ``synchronous=FULL`` unless the user opted into NORMAL, ``busy_timeout`` of at
least 30 s, ``foreign_keys=ON``, explicit transactions (``isolation_level=None``) and
``BEGIN IMMEDIATE`` for every write: a deferred transaction that reads and then writes fails
at once with "database is locked" whatever the timeout, because SQLite cannot upgrade its
read snapshot while another writer has committed.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ctxdb.errors import SearchIndexPendingError, StorageError
from ctxdb.settings import Settings
from ctxdb.storage.base import RawTx, Row, Storage, Tx
from ctxdb.storage.dialect import SQLITE
from ctxdb.storage.queries import compiled_queries, document_writers
from ctxdb.storage.retry import with_retries
from ctxdb.storage.sqlite_connect import connect, is_busy, translate_error
from ctxdb.storage.sqlite_params import NumberedQueries
from ctxdb.storage.sqlite_turns import WriteTurns

if TYPE_CHECKING:
    from ctxdb.storage.change_signal import ChangeSignal
    from ctxdb.storage.group_commit import GroupCommitter
    from ctxdb.storage.health import Health

T = TypeVar("T")

def _first(cursor: sqlite3.Cursor) -> Row | None:
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([c[0] for c in cursor.description], row, strict=True))


@functools.cache
def numbered_queries() -> NumberedQueries:
    """The named queries with numbered placeholders (see sqlite_params.py), made on use."""
    return NumberedQueries(compiled_queries(SQLITE))


class IndexReaders(dict[str, bool]):
    """Query name -> whether it reads the FTS5 index (``$SEARCH_FROM``, ``$SEARCH_MATCH``,
    ``$SEARCH_INDEXED`` all name ``search_fts``), which must then be current: it lacks the
    documents still waiting for their terms (Tx.pending_limit). Answered on first use."""

    def __missing__(self, name: str) -> bool:
        reads = self[name] = "search_fts" in compiled_queries(SQLITE)[name]
        return reads


@functools.cache
def index_readers() -> IndexReaders:
    return IndexReaders()


class IndexBehind(Exception):
    """A read transaction met documents waiting for their index terms before a statement
    that reads the index: the storage abandons it and runs the unit again as a write, which
    gives them their terms first (SQLiteStorage.read). Not a CtxdbError: it never leaves
    the storage."""


class SQLiteTx(RawTx):
    def __init__(self, conn: sqlite3.Connection, queries: dict[str, str],
                 writing: bool = True, index_may_lag: bool = False) -> None:
        self._conn = conn
        self._queries = queries
        self._numbered = numbered_queries()
        self._document_writers = document_writers()
        self._index_readers = index_readers()
        self._writing = writing
        # Whether documents may wait for their terms in this database (its schema's
        # pending_probe): its readers of the index must then bring it current.
        self._index_may_lag = index_may_lag

    def _run(self, query: str, params: dict[str, Any]) -> sqlite3.Cursor:
        if self._document_writers[query]:
            self.may_write_documents = True
        elif self._index_may_lag and self._index_readers[query]:
            self._bring_index_current()
        sql, values = self._numbered[query]
        try:
            bound = values(params)
        except KeyError:  # a value missing: the driver's own error names it, as it did
            return self._conn.execute(self._queries[query], params)
        return self._conn.execute(sql, bound)

    def _bring_index_current(self) -> None:
        """Before a statement that reads the FTS5 index: give their terms to the documents
        that wait for them (a write transaction), or, in a read transaction, which cannot,
        give up the read if any wait (IndexBehind), in the snapshot the read then reads: so
        that a search finds every committed document. One look over the partial index of
        the waiting documents when none wait; the statements that write documents (a store
        and then a search, in one transaction) are seen by the look like any other."""
        cursor = self._conn.execute(self._queries["search_any_pending"])
        try:
            pending = cursor.fetchone()[0]
        finally:
            cursor.close()
        if not pending:
            return
        if not self._writing:
            raise IndexBehind
        from ctxdb.storage.search_engine import index_pending

        index_pending(self)
        self.documents_indexed()  # none waits now: the look after the unit is spared

    def set_terms(self, terms: Sequence[tuple[int, str]]) -> None:
        """In one statement: FTS5 writes its index at the end of each statement that changed
        it (its savepoint), so the terms of a batch of waiting documents given one statement
        each would write as many segments as documents; in one, FTS5 writes one for them
        all. The documents are updated in the order given (json_each's, the outer loop), so
        that FTS5 receives increasing rowids and keeps them all in memory until then."""
        if len(terms) == 1:
            self.execute("search_set_terms", doc_id=terms[0][0], terms=terms[0][1])
        elif terms:
            self.execute("search_set_terms_together", batch=json.dumps(terms))

    def _literal(self) -> sqlite3.Connection:
        """The connection, for literal SQL: it may write anything."""
        self.may_write_documents = True
        return self._conn

    def one_raw(self, sql: str, params: dict[str, Any]) -> Row | None:
        return _first(self._literal().execute(sql, params))

    def all_raw(self, sql: str, params: dict[str, Any]) -> list[Row]:
        cursor = self._literal().execute(sql, params)
        if cursor.description is None:  # a statement without a result, such as REINDEX
            return []
        columns = [column[0] for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def all(self, query: str, **params: Any) -> list[Row]:
        cursor = self._run(query, params)
        columns = [column[0] for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def one(self, query: str, **params: Any) -> Row | None:
        return _first(self._run(query, params))

    def stream(self, query: str, **params: Any) -> Iterator[Row]:
        cursor = self._run(query, params)
        columns = [column[0] for column in cursor.description]
        try:
            for row in cursor:
                yield dict(zip(columns, row, strict=True))
        finally:
            cursor.close()

    def execute(self, query: str, **params: Any) -> int:
        return self._run(query, params).rowcount

    def execute_raw(self, sql: str, params: dict[str, Any]) -> int:
        return self._literal().execute(sql, params).rowcount

    def rows_raw(self, sql: str, params: dict[str, Any], batch: int) -> Iterator[tuple[Any, ...]]:
        cursor = self._literal().execute(sql, params)
        cursor.arraysize = batch
        try:
            yield from cursor
        finally:
            cursor.close()

    def execute_many_raw(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._literal().executemany(sql, rows)

    def lock(self, key: int) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the database's one write lock."""

    def script(self, sql: str) -> None:
        for statement in split_statements(sql):
            self._literal().execute(statement)


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (``executescript`` would COMMIT first)."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        not part.strip() or part.strip().startswith("--") for part in buffer.splitlines()
    ):
        raise StorageError(f"incomplete SQL statement at end of script: {buffer.strip()[:80]}")
    return statements


class SQLiteStorage(Storage):
    dialect = SQLITE

    def __init__(self, settings: Settings, read_only: bool = False) -> None:
        self.settings = settings
        self.read_only = read_only
        self.path = settings.sqlite_path
        self.url = str(self.path)
        # Named in the error of a write that failed each retry: made once, not per write.
        self._describe_transaction = f"SQLite transaction on {self.path}"
        self._queries = compiled_queries(SQLITE)
        self._local = threading.local()
        self._all_connections: list[sqlite3.Connection] = []
        self._all_turns: list[WriteTurns] = []
        self._guard = threading.Lock()
        self._closed = False
        self._group: GroupCommitter | None = None
        if settings.sqlite_group_commit and not read_only:
            self._group = self._new_group_committer()

    def _new_group_committer(self) -> GroupCommitter:
        from ctxdb.storage.group_commit import GroupBackend, GroupCommitter

        return GroupCommitter(GroupBackend(
            connection=self._connection,
            transaction=lambda conn: SQLiteTx(conn, self._queries,
                                              index_may_lag=self._index_may_lag(conn)),
            is_busy=is_busy, translate=translate_error,
            describe=f"SQLite group commit on {self.path}"))

    @property
    def group_commit(self) -> GroupCommitter | None:
        """The committer that writes run through (``sqlite_group_commit``), if on."""
        return self._group

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread: sqlite3 connections must not run two transactions at
        # once, and the async front ends call the core from worker threads.
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StorageError("this storage has been closed")
            conn = connect(self.path, self.settings, self.read_only)
            with self._guard:
                self._all_connections.append(conn)
            self._local.conn = conn
        return conn

    def _turns(self) -> WriteTurns:
        """This thread's turns at the write lock (see sqlite_turns.py)."""
        turns: WriteTurns | None = getattr(self._local, "turns", None)
        if turns is None:
            turns = WriteTurns(self.path, self.settings.busy_timeout_ms / 1000)
            with self._guard:
                self._all_turns.append(turns)
            self._local.turns = turns
        return turns

    def _write_transaction(self, unit: Callable[[Tx], T]) -> T:
        # Everything the transaction needs that is not the database's is made before the
        # turn is taken (the connection, the cursor, the transaction object, the schema's
        # probe on first use): the turn covers BEGIN IMMEDIATE to COMMIT and little else.
        conn = self._connection()
        ends, tx = conn.cursor(), self._new_tx(conn, writing=True)
        turns = self._turns()
        held = turns.take()
        try:
            return self._run_transaction(conn, ends, tx, "BEGIN IMMEDIATE", unit)
        finally:
            turns.give_back(held)

    def _transaction(self, begin: str, unit: Callable[[Tx], T]) -> T:
        conn = self._connection()
        # BEGIN and COMMIT on one cursor, not a new one each (Connection.execute makes one).
        # A named statement still gets its own, dropped once read: a cursor kept would keep
        # its statement running, and a RETURNING of several rows read by Tx.one would then
        # refuse a RELEASE or COMMIT sent on another (group commit's).
        return self._run_transaction(conn, conn.cursor(),
                                     self._new_tx(conn, writing=begin != "BEGIN"), begin, unit)

    def _new_tx(self, conn: sqlite3.Connection, writing: bool) -> SQLiteTx:
        return SQLiteTx(conn, self._queries, writing=writing,
                        index_may_lag=self._index_may_lag(conn))

    @staticmethod
    def _run_transaction(conn: sqlite3.Connection, ends: sqlite3.Cursor, tx: SQLiteTx,
                         begin: str, unit: Callable[[Tx], T]) -> T:
        ends.execute(begin)
        try:
            result = unit(tx)
            ends.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def _index_may_lag(self, conn: sqlite3.Connection) -> bool:
        """Whether documents may wait for their index terms in this database (schema 0027),
        asked once per storage, and again after a migration (Storage.pending_limit)."""
        limit = self.pending_limit
        if limit is None:
            limit = self.probed_pending_limit(lambda probe: _first(conn.execute(probe)))
        return bool(limit)

    def _guarded(self, write: bool, unit: Callable[[Tx], T]) -> T:
        def attempt() -> T:
            try:
                if write:
                    return self._write_transaction(unit)
                return self._transaction("BEGIN", unit)
            except sqlite3.Error as exc:
                if is_busy(exc):
                    raise
                raise translate_error(exc) from exc

        return with_retries(attempt, is_busy, self._describe_transaction)

    def write(self, unit: Callable[[Tx], T]) -> T:
        # With group commit on, the unit joins the writer thread's next transaction (see
        # group_commit.py); a unit that writes again from inside one runs as it always did.
        if self._group is not None and not self._group.in_writer():
            return self._group.submit(self.indexing(unit))
        return self._guarded(True, self.indexing(unit))

    def read(self, unit: Callable[[Tx], T]) -> T:
        try:
            return self._guarded(False, unit)
        except IndexBehind:
            pass
        # The read met documents waiting for their index terms before it read the index: it
        # is run again as a write, which gives them their terms first (SQLiteTx), and takes
        # its turn among the writers (group commit) like any. Not looped: no write commits
        # between the terms given and the search, which runs in the same transaction.
        if self.read_only:
            # Nothing may be written through this storage, so the index cannot be brought
            # current, and a search of it would miss the waiting documents: refused.
            raise SearchIndexPendingError(
                f"the full-text index of {self.path} lacks documents still waiting for their "
                "index terms, and this connection is read-only: open the database writable "
                "(any write, or `ctxdb search`, brings the index current) and try again",
                path=str(self.path))
        return self.write(unit)

    def read_one(self, query: str, **params: Any) -> Row | None:
        if index_readers()[query]:  # the index may have to be brought current: see read()
            return self.read(lambda tx: tx.one(query, **params))

        def attempt() -> Row | None:
            try:
                cursor = self._connection().execute(self._queries[query], params)
                try:
                    return _first(cursor)
                finally:
                    cursor.close()  # ends the statement, and with it its read snapshot
            except sqlite3.Error as exc:
                if is_busy(exc):
                    raise
                raise translate_error(exc) from exc

        return with_retries(attempt, is_busy, f"SQLite read on {self.path}")

    def health(self) -> Health:
        from ctxdb.storage.sqlite_health import SQLiteHealth

        return SQLiteHealth(self)

    def _new_change_signal(self) -> ChangeSignal:
        from ctxdb.storage.change_signal import SQLiteChangeSignal

        return SQLiteChangeSignal(self)

    def close(self) -> None:
        self._close_change_signal()
        if self._group is not None:
            self._group.close()  # every queued write runs and is answered first
        with self._guard:
            self._closed = True
            connections, self._all_connections = self._all_connections, []
            turns, self._all_turns = self._all_turns, []
        for conn in connections:
            conn.close()
        for each in turns:
            each.close()
        self._local = threading.local()
