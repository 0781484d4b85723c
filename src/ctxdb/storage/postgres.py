"""The PostgreSQL backend: psycopg 3 with a connection pool.

- a connection that turns out dead (server restart, terminated backend) fails its unit of
  work with a transient error: the pool closes it and its idle siblings, and the unit runs
  again on a new connection. Connections are not probed on every checkout: that probe is a
  network round trip added to every transaction, a third of a one-row write;
- nothing waits on the server without bound (``storage/pg_pool.py``): connecting takes at
  most ``pg_connect_timeout``, a statement at most ``pg_statement_timeout`` (ended by the
  server), any one answer at most ``pg_socket_timeout`` (a frozen server: the client closes
  the connection); the retries of a unit stop after ``retry.RETRY_BUDGET`` seconds;
- only what may succeed when run again is retried: a lost connection, a serialization
  failure, a deadlock, a server shutting down or refusing connections for a moment. Every
  other error of the server (a value too large for an index, a constraint, a type, a
  privilege) is the same the next time, and is reported at once. A unit is run again as a
  whole, which is safe because every insert carries an idempotency key;
- except when the connection drops after COMMIT was sent: the server may have committed, and
  running the unit again would repeat a change that happened (a second audit row, or "already
  deleted" for a delete that worked). A write learns its transaction id in the same round trip
  as BEGIN, so a commit that got no answer is looked up (``txid_status``) instead of guessed;
- every connection runs with ``synchronous_commit=on`` and the UTC time zone;
- statements whose outcome nobody reads (audit and history rows, :meth:`Tx.defer`) travel
  with the next statement or with the COMMIT in one pipeline, instead of a round trip each;
- ``jsonb`` comes back as text and ``timestamptz`` as ISO-8601 text, exactly as SQLite stores
  them, so the layers above never see a driver-specific type.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ctxdb.errors import ConfigError, DatabaseTimeoutError, DatabaseUnavailableError, StorageError
from ctxdb.settings import Settings
from ctxdb.storage.base import Row, Storage, Tx
from ctxdb.storage.dialect import POSTGRES
from ctxdb.storage.pg_row_security import scope_statement
from ctxdb.storage.queries import compiled_queries
from ctxdb.storage.retry import RETRY_BUDGET, with_retries

if TYPE_CHECKING:
    from ctxdb.storage.change_signal import ChangeSignal
    from ctxdb.storage.health import Health
    from ctxdb.storage.row_security import RowSecurity

try:
    import psycopg

    from ctxdb.storage.pg_connection import configure_connection
    from ctxdb.storage.pg_pool import (
        BoundedConnection,
        ConnectionPool,
        NoAnswer,
        connect,
        connection_parameters,
    )
    from ctxdb.storage.pg_tx import PIPELINE, PostgresTx, scalar
    from ctxdb.storage.postgres_errors import first_line, is_transient, translate
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigError(
        "PostgreSQL support needs the postgres extra: pip install '.[postgres]' in a clone of "
        "ctxdb"
    ) from exc

T = TypeVar("T")
# psycopg logs the errors it also raises: without a handler they would reach stderr as well.
logging.getLogger("psycopg").addHandler(logging.NullHandler())

_COMMIT_OUTCOME = "SELECT txid_status(%s)"
# How long a commit whose answer was lost may stay "in progress" while its backend winds up.
_OUTCOME_PATIENCE = 5.0


def _rollback_if_possible(conn: psycopg.Connection[Any]) -> None:
    """Roll back after a failed unit; a connection that cannot is discarded by the pool."""
    if not conn.broken:
        with contextlib.suppress(psycopg.Error):  # the unit's own error is the one to report
            conn.rollback()


class PostgresStorage(Storage):
    dialect = POSTGRES
    keeps_dead_index_entries = True  # until a vacuum, which ctxdb must not rely on

    def __init__(self, settings: Settings, read_only: bool = False) -> None:
        self.settings = settings
        self.read_only = read_only
        self.url = settings.url
        self._queries = compiled_queries(POSTGRES)
        self._scope = b""  # sent with each BEGIN: the row-level security scope (scoped())
        try:
            self._pool = ConnectionPool(self._connect, settings.pool_min_size,
                                        settings.pool_max_size)
        except psycopg.Error as exc:
            # Unreachable, refused, a wrong password: said at once, in one line.
            raise DatabaseUnavailableError(
                f"cannot connect to PostgreSQL at {self.describe_url()}: {first_line(exc)}"
            ) from exc

    def _connect(self) -> BoundedConnection:
        conn = connect(self.url, self.settings.pg_connect_timeout,
                       self.settings.pg_socket_timeout,
                       **connection_parameters(self.settings.pg_socket_timeout))
        try:
            configure_connection(conn, self.settings, self.read_only)
        except BaseException:
            conn.close()
            raise
        return conn

    def scoped(self, project_ids: Sequence[str] | None) -> PostgresStorage:
        clone = copy.copy(self)
        clone._scope, clone.origin = b"; " + scope_statement(project_ids), self
        return clone

    def row_security(self) -> RowSecurity:
        from ctxdb.storage.pg_row_security import PostgresRowSecurity

        return PostgresRowSecurity(self)

    def describe_url(self) -> str:
        # Never print a password that may be part of the URL.
        info = psycopg.conninfo.conninfo_to_dict(self.url)
        return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname')}"

    def describe(self) -> str:
        return f"postgres: {self.describe_url()}"

    def _transaction(self, unit: Callable[[Tx], T], begin: bytes = b"BEGIN") -> T:
        with self._pool.connection() as conn:
            tx = PostgresTx(conn, self._queries)
            # With the unit's first statement: neither costs a round trip of its own.
            tx.begin_reading(begin, self._scope.removeprefix(b"; "))
            try:
                result = unit(tx)
                tx.commit()
            except BaseException:
                _rollback_if_possible(conn)
                raise
            return result

    def _write_transaction(self, unit: Callable[[Tx], T]) -> T:
        """Like :meth:`_transaction`, but a COMMIT that got no answer is resolved, not redone."""
        committing = returned = False
        try:
            with self._pool.connection() as conn:
                tx = PostgresTx(conn, self._queries)
                tx.begin(self._scope.removeprefix(b"; "))
                try:
                    result = unit(tx)
                except BaseException as exc:
                    # A connection lost in the pipeline of Tx.commit_with: see below.
                    committing = isinstance(exc, psycopg.OperationalError) and tx.committed
                    _rollback_if_possible(conn)
                    raise
                committing = returned = True
                try:
                    tx.commit()
                except psycopg.OperationalError:
                    raise
                except BaseException:  # a deferred statement failed: nothing was committed
                    _rollback_if_possible(conn)
                    raise
                return result
        except psycopg.OperationalError as exc:
            # Asked on another connection, once the dead one is back in the pool.
            # The COMMIT leaves only once the transaction's id is known (PostgresTx.commit):
            # without the id, it was not sent.
            xid = tx.transaction_id if committing else None
            if xid is not None and self._committed(xid):
                if returned:
                    return result
                # Committed with the unit's last statement (Tx.commit_with), whose answer was
                # lost with the COMMIT's: the unit runs again to learn it (it writes nothing
                # the second time), as for any lost connection.
                raise
            if xid is not None and isinstance(exc, NoAnswer):
                raise DatabaseTimeoutError(
                    f"{exc}; the COMMIT was sent, so the change may have been committed "
                    "(a call repeated with the same idempotency key is applied once)",
                    timeout=self.settings.pg_socket_timeout, committed="unknown") from exc
            raise

    def _committed(self, xid: int) -> bool:
        """Whether transaction ``xid``, whose COMMIT got no answer, did commit.

        When that cannot be found out, ``False``: the unit is then run again, as before.
        """
        deadline = time.monotonic() + _OUTCOME_PATIENCE
        while True:
            try:
                with self._pool.connection() as conn:
                    status = scalar(conn.execute(_COMMIT_OUTCOME, (xid,)))
            except (psycopg.Error, StorageError):
                return False
            if status != "in progress" or time.monotonic() > deadline:
                return bool(status == "committed")
            time.sleep(0.01)

    def _statement(self, unit: Callable[[Tx], T]) -> T:
        """Run a unit of one statement on an autocommit connection: no BEGIN, no COMMIT.

        A scoped storage's statement travels after its scope's in one pipeline: the two
        statements, sent with no synchronization between them, are one implicit transaction
        of the server, so the scope (set for the current transaction only) holds for the
        statement and ends with it. One round trip and two statements, where BEGIN, the
        scope, the statement and COMMIT were four statements in three round trips.
        """
        with self._pool.connection() as conn:
            tx = PostgresTx(conn, self._queries)
            if self._scope:
                tx.defer_scope(self._scope.removeprefix(b"; "))
            result = unit(tx)
            tx.flush()
            return result

    def _guarded(self, unit: Callable[[Tx], T], write: bool,
                 run: Callable[[Callable[[Tx], T]], T] | None = None) -> T:
        run = run or (self._write_transaction if write else self._transaction)

        def attempt() -> T:
            try:
                return run(unit)
            except psycopg.Error as exc:
                if is_transient(exc):
                    raise
                raise translate(exc, self.settings) from exc

        return with_retries(attempt, is_transient, "PostgreSQL transaction", RETRY_BUDGET)

    def write(self, unit: Callable[[Tx], T]) -> T:
        return self._guarded(self.indexing(unit), write=True)

    def read(self, unit: Callable[[Tx], T]) -> T:
        return self._guarded(unit, write=False)

    def read_one(self, query: str, **params: Any) -> Row | None:
        # Without pipelines a scope needs the transaction it is set in (see _statement).
        return self._guarded(lambda tx: tx.one(query, **params), write=False,
                             run=self._statement if PIPELINE or not self._scope else None)

    def snapshot(self, unit: Callable[[Tx], T]) -> T:
        # The isolation level in BEGIN itself: it must come before any query (a scope's too).
        return self._guarded(unit, write=False, run=lambda work: self._transaction(
            work, b"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"))

    def health(self) -> Health:
        from ctxdb.storage.postgres_health import PostgresHealth

        return PostgresHealth(self)

    def _new_change_signal(self) -> ChangeSignal:
        from ctxdb.storage.pg_listener import PostgresChangeSignal

        return PostgresChangeSignal(self.settings)

    def close(self) -> None:
        if not self._scope:  # a scoped storage leaves the connections to its origin
            self._close_change_signal()
            self._pool.close()
