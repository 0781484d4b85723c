"""The PostgreSQL side of one unit of work (:class:`PostgresTx`); how each connection is set
up is in :mod:`ctxdb.storage.pg_connection`, how its named queries travel in
:mod:`ctxdb.storage.pg_wire`. Imported by :mod:`ctxdb.storage.postgres` once the postgres
extra is known to be installed.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.pq.abc import PGresult
from psycopg.rows import dict_row

from ctxdb.errors import StorageError
from ctxdb.storage.base import RawTx, Row
from ctxdb.storage.dialect import POSTGRES
from ctxdb.storage.pg_pool import BoundedConnection
from ctxdb.storage.pg_wire import Statement, first_value
from ctxdb.storage.queries import document_writers

_cursor_names = itertools.count()
# Pipeline mode needs libpq 14 or newer; with an older one, deferred statements run at once.
PIPELINE = psycopg.Pipeline.is_supported()
# A write transaction's first statements (see PostgresTx.begin): one simple-query message
# where pipelines are not supported or a COMMIT travels with the unit's last statement
# (commit_with), separate statements of the first pipeline otherwise (a pipeline carries one
# statement per message).
# (txid_* rather than the pg_*_xact_id names of PostgreSQL 13+, to work from version 10 on.)
_BEGIN = b"BEGIN"
_TRANSACTION_ID = b"SELECT txid_current()"
_COMMIT = b"COMMIT"
# The column by which a named query answers with its transaction's id itself (txid_current()
# AS transaction_id), sparing the statement above: see PostgresTx._run.
CARRIED_ID = "transaction_id"
_CARRIES_ID = re.compile(r"\bAS\s+transaction_id\b", re.IGNORECASE)


@functools.cache
def carries_id(sql: str) -> bool:
    """Whether a query answers with its transaction's id (in the column ``CARRIED_ID``)."""
    return _CARRIES_ID.search(sql) is not None


def scalar(cursor: psycopg.Cursor[Any]) -> Any:
    row = cursor.fetchone()
    if row is None:
        raise StorageError("PostgreSQL returned no row where one was expected")
    return row[0]


class PostgresTx(RawTx):
    chains_writes = True

    def __init__(self, conn: BoundedConnection, queries: dict[str, str]) -> None:
        self._conn = conn
        self._wire = conn.wire()
        self._queries = queries
        self._deferred: list[Statement] = []
        self._document_writers = document_writers()
        # The transaction id (see begin()); None until the server has answered with it.
        self.transaction_id: int | None = None
        # Whether the id's own statement was left out for a query that carries the id.
        self._id_carried = False
        # See look_ahead(): what to ask after each statement that may write a document, and
        # the latest answer (with what it asked) while no such statement came after it.
        self._look: tuple[str, dict[str, Any]] | None = None
        self._looked: tuple[tuple[str, dict[str, Any]], list[Row]] | None = None
        # What begin() defers: BEGIN, the id's statement and the scope's (see commit_with()).
        self._begin: list[bytes] = []
        # What begin_reading() defers: BEGIN and the scope's statement.
        self._opening: list[Statement] = []
        # Whether the transaction was committed with its last statement (commit_with()).
        self.committed = False
        # See prefetch(): the answers of the reads sent ahead, in the order announced.
        self._prefetched: list[tuple[tuple[str, dict[str, Any]], list[Row]]] = []

    def look_ahead(self, query: str, **params: Any) -> None:
        if PIPELINE:
            self._look = (query, params)

    def looked(self, query: str, **params: Any) -> list[Row] | None:
        answer, self._looked = self._looked, None
        if answer is None or answer[0] != (query, params):
            return None
        return answer[1]

    def begin(self, scope: bytes) -> None:
        """Begin a write transaction, learning its id (so that a COMMIT whose answer is lost
        can be looked up) and setting ``scope`` (a statement, or nothing) inside it.

        With pipelines these travel with the transaction's first statement instead of in a
        round trip of their own: a store is one round trip shorter. Nothing depends on the
        server having begun before then, since nothing is sent before then either; and
        :meth:`commit` makes sure the id is known before the COMMIT leaves.
        """
        self._begin = [_BEGIN, _TRANSACTION_ID] + ([scope] if scope else [])
        if not PIPELINE:
            self._send_begin()
            return
        self._deferred[:0] = [(sql, None) for sql in self._begin]

    def begin_reading(self, begin: bytes, scope: bytes) -> None:
        """Begin a transaction that only reads (``begin``: BEGIN with its isolation level),
        with ``scope`` (a statement, or nothing) inside it. With pipelines they travel with
        the unit's first statement instead of in a round trip of their own; a unit that
        sends no statement sends neither, nor a COMMIT (see commit())."""
        statements = [begin, scope] if scope else [begin]
        if not PIPELINE:
            self._wire.simple(b"; ".join(statements))
            return
        self._opening = [(sql, None) for sql in statements]
        self._deferred[:0] = self._opening

    def defer_scope(self, scope: bytes) -> None:
        """Send ``scope`` (a statement) first, in the pipeline of the next statement, with no
        BEGIN: outside a transaction block, the statements of one pipeline run as one
        implicit transaction (PostgreSQL's extended query protocol commits at the
        pipeline's synchronization), so the scope holds for them and ends with them. Only
        with pipelines (PIPELINE): without, each statement would be a transaction."""
        if not PIPELINE:
            raise StorageError("a scope without a transaction needs pipeline mode")
        self._deferred.append((scope, None))

    def _send_begin(self) -> None:
        """BEGIN, the id and the scope as one simple-query message, learning the id."""
        results = self._wire.simple(b"; ".join(self._begin))
        self.transaction_id = int(first_value(results[1]))

    def prefetch(self, reads: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """The reads in one pipeline, after the deferred statements (the BEGIN among them, for
        a unit's first reads): one round trip for all."""
        self._check_open()
        if not PIPELINE or not reads:
            return
        results = self._round_trip([(self._named(query), params) for query, params in reads])
        for read, result in zip(reads, results, strict=True):
            rows = [self._without_id(row) for row in self._wire.rows(result)]
            self._prefetched.append((read, rows))

    def _answered(self, query: str, params: dict[str, Any]) -> list[Row] | None:
        """The prefetched answer of this read if it is the next one announced; otherwise
        what is left is dropped (this statement may write what those read)."""
        if not self._prefetched:
            return None
        announced, rows = self._prefetched.pop(0)
        if announced == (query, params):
            return rows
        self._prefetched.clear()
        return None

    def _named(self, query: str) -> str:
        if self._document_writers[query]:
            self.may_write_documents = True
            self._looked = None  # what was looked ahead may be missing this one's documents
        return self._queries[query]

    def _literal(self) -> None:
        """Before literal SQL, which may write anything: the deferred statements, then note it."""
        self._check_open()
        self.flush()
        self.may_write_documents = True
        self._looked = None

    def defer(self, query: str, **params: Any) -> None:
        self._check_open()
        if PIPELINE:
            self._deferred.append((self._named(query), params))
        else:
            self.execute(query, **params)

    def _round_trip(self, statements: Sequence[Statement],
                    look: tuple[str, dict[str, Any]] | None = None,
                    commit: bool = False) -> list[PGresult]:
        """Sends the deferred statements, then ``statements``, then the ``look``, then the
        COMMIT if ``commit``, in one pipeline: one round trip for all (one by one without
        pipelines). An error in any of them is raised once all are answered (the
        statements after it are not run). Returns the results of ``statements``."""
        deferred, self._deferred = self._deferred, []
        sent = [*deferred, *statements]
        if look is not None:
            sent.append((self._queries[look[0]], look[1]))
        if commit:
            # As a statement of the pipeline: a COMMIT of its own would be a round trip more.
            sent.append((_COMMIT, None))
        if not sent:
            return []
        results = self._wire.exchange(sent, pipeline=PIPELINE)
        for (sql, _params), result in zip(deferred, results, strict=False):
            if sql is _TRANSACTION_ID:
                self.transaction_id = int(first_value(result))
        end = len(deferred) + len(statements)
        if look is not None:
            self._looked = (look, self._wire.rows(results[end]))
        return results[len(deferred):end]

    def flush(self) -> None:
        """Runs the deferred statements now (before a statement a pipeline cannot carry)."""
        self._round_trip(())

    def commit(self) -> None:
        """COMMIT, with the deferred statements before it in the same round trip; but never
        before the transaction's id is known, so that a lost answer can be looked up."""
        if self.committed:  # with the unit's last statement (commit_with)
            return
        if self._opening and self._deferred == self._opening:  # a read unit that sent nothing
            self._deferred = []
            return
        if self.transaction_id is None and any(sql is _BEGIN for sql, _ in self._deferred):
            self.flush()  # a unit that only deferred statements: the id first
        self._know_id()
        if self._deferred or self._conn.pgconn.transaction_status != TransactionStatus.IDLE:
            self._round_trip((), commit=True)

    def commit_with(self, query: str, **params: Any) -> Row | None:
        """The statement, the look after it (see look_ahead()) and the COMMIT in one
        pipeline, so that the rows the statement locks are held for the server's work and
        the commit's flush only, not for a round trip of the client and its Python.

        The COMMIT leaves only once the transaction id is known (see commit()): when BEGIN
        is still waiting to be sent, it goes first, with the id and the scope, as one
        simple-query message, before anything is locked; the round trip this costs is the
        one the COMMIT of its own no longer does. If the look finds documents without their
        terms, a transaction of their own is begun at once (as begin() would), in which the
        storage gives them their terms (Storage.indexing) and which it then commits.

        Taken only where nothing can be missing from this transaction after it: with
        pipelines, and, for a statement that may write a search document, once the look
        travels with it (the storage knows the schema). Elsewhere this is :meth:`one`, and
        the storage commits when the unit returns.
        """
        writes_documents = self._document_writers[query]
        # A statement that writes no document sends no look, so after an earlier one that
        # may have (or literal SQL: the storage's first probes), the storage must still look
        # after the unit, in this transaction: no COMMIT with it then.
        if not PIPELINE or (writes_documents and self._look is None) \
                or (self.may_write_documents and not writes_documents):
            return self.one(query, **params)
        self._check_open()
        begun = [(sql, None) for sql in self._begin]
        if begun and self._deferred[:len(begun)] == begun:
            del self._deferred[:len(begun)]
            self._send_begin()
        self._know_id()
        sql = self._named(query)
        look = self._look if writes_documents else None
        # From here on the COMMIT may have left: a lost answer is looked up by the id.
        self.committed = True
        rows = self._wire.rows(self._round_trip([(sql, params)], look, commit=True)[0], 1)
        if self._looked is not None and self._looked[1]:
            self._reopen()
        return self._without_id(rows[0]) if rows else None

    def _reopen(self) -> None:
        """Begin a new transaction after commit_with(), as begin() does."""
        self.committed, self.transaction_id, self._id_carried = False, None, False
        self._deferred[:0] = [(sql, None) for sql in self._begin]

    def _check_open(self) -> None:
        """Before any statement is sent: what was prefetched and not taken yet is dropped
        (this statement may write what those reads read; see prefetch())."""
        self._prefetched.clear()
        if self.committed:
            raise StorageError("a statement after the transaction was committed with its "
                               "last one (commit_with)")

    def _know_id(self) -> None:
        if self.transaction_id is None and self._id_carried:
            # The statement that was to bring the id wrote no row (a unit that then failed
            # or took another way): ask for it, as begin() would have.
            self._deferred.insert(0, (_TRANSACTION_ID, None))
            self.flush()

    def _run(self, query: str, params: dict[str, Any]) -> PGresult:
        """The result of the named query (sent with what travels with it)."""
        self._check_open()
        sql = self._named(query)
        if carries_id(sql) and (_TRANSACTION_ID, None) in self._deferred:
            # This statement answers with the id itself, in the same round trip as the id's
            # own statement would: one statement fewer (a store's first pipeline).
            self._deferred.remove((_TRANSACTION_ID, None))
            self._id_carried = True
        # After a statement that may write a search document, the look for the documents
        # without index terms, in the same round trip (the store's own: three were two).
        look = self._look if self._document_writers[query] else None
        return self._round_trip([(sql, params)], look)[0]

    def one_raw(self, sql: str, params: dict[str, Any]) -> Row | None:
        self._literal()
        with self._conn.cursor(row_factory=dict_row) as cursor:
            row: Row | None = cursor.execute(sql, params).fetchone()
            return row

    def all_raw(self, sql: str, params: dict[str, Any]) -> list[Row]:
        self._literal()
        with self._conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(sql, params or None)
            if cursor.description is None:  # a statement without a result, such as SET
                return []
            return list(cursor.fetchall())

    def all(self, query: str, **params: Any) -> list[Row]:
        answered = self._answered(query, params)
        if answered is not None:
            return answered
        return [self._without_id(row) for row in self._wire.rows(self._run(query, params))]

    def one(self, query: str, **params: Any) -> Row | None:
        answered = self._answered(query, params)
        if answered is not None:
            return answered[0] if answered else None
        rows = self._wire.rows(self._run(query, params), limit=1)
        return self._without_id(rows[0]) if rows else None

    def _without_id(self, row: Row) -> Row:
        """The row without the transaction id a query carries (kept: see _run)."""
        if CARRIED_ID in row:
            carried = row.pop(CARRIED_ID)
            if self.transaction_id is None:
                self.transaction_id = int(carried)
        return row

    def stream(self, query: str, **params: Any) -> Iterator[Row]:
        # A server-side cursor, so that rows not consumed are never sent over the network.
        self._check_open()
        self.flush()
        name = f"ctxdb_stream_{next(_cursor_names)}"
        with self._conn.cursor(name=name, row_factory=dict_row) as cursor:
            cursor.itersize = 256
            cursor.execute(self._named(query), params)
            yield from cursor

    def execute(self, query: str, **params: Any) -> int:
        return self._wire.rowcount(self._run(query, params))

    def execute_raw(self, sql: str, params: dict[str, Any]) -> int:
        self._literal()
        with self._conn.cursor() as cursor:
            return int(cursor.execute(sql, params or None).rowcount)

    def rows_raw(self, sql: str, params: dict[str, Any], batch: int) -> Iterator[tuple[Any, ...]]:
        self._literal()
        name = f"ctxdb_rows_{next(_cursor_names)}"
        with self._conn.cursor(name=name) as cursor:
            cursor.itersize = batch
            cursor.execute(sql, params or None)
            yield from cursor

    def execute_many_raw(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._literal()
        with self._conn.cursor() as cursor:
            cursor.executemany(sql, rows)

    def copy_raw(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._literal()
        with self._conn.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The connection, for what the driver does itself: what was deferred is sent first
        (the BEGIN among it)."""
        self.flush()
        return self._conn

    def lock(self, key: int) -> None:
        self._check_open()
        self._round_trip([(POSTGRES.advisory_lock(key).encode(), None)])

    def script(self, sql: str) -> None:
        # Without parameters psycopg sends the text as one simple query: many statements run.
        self._literal()
        self._conn.execute(sql.encode())
        self._wire.forget()  # a migration may have changed what the prepared ones read

