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
  privilege) is the same the next time, and is reported at once;
- every connection runs with ``synchronous_commit=on`` and the UTC time zone;
- a unit of work that fails with a serialization failure, a deadlock or a dropped connection
  is run again as a whole, which is safe because every insert carries an idempotency key;
- except when the connection drops after COMMIT was sent: the server may have committed, and
  running the unit again would repeat a change that happened (a second audit row, or "already
  deleted" for a delete that worked). A write learns its transaction id in the same round trip
  as BEGIN, so a commit that got no answer is looked up (``txid_status``) instead of guessed;
- statements whose outcome nobody reads (audit and history rows, :meth:`Tx.defer`) travel
  with the next statement or with the COMMIT in one pipeline, instead of a round trip each;
- ``jsonb`` comes back as text and ``timestamptz`` as ISO-8601 text, exactly as SQLite stores
  them, so the layers above never see a driver-specific type.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ctxdb.errors import (
    ConfigError,
    DatabaseTimeoutError,
    DatabaseUnavailableError,
    StorageError,
)
from ctxdb.settings import Settings
from ctxdb.storage.base import RawTx, Row, Storage, Tx
from ctxdb.storage.dialect import POSTGRES
from ctxdb.storage.queries import compiled_queries, document_writers
from ctxdb.storage.retry import RETRY_BUDGET, with_retries

if TYPE_CHECKING:
    from ctxdb.storage.health import Health

try:
    import psycopg
    from psycopg.adapt import Loader
    from psycopg.rows import dict_row
    from psycopg.types.string import TextLoader

    from ctxdb.storage.pg_pool import (
        BoundedConnection,
        ConnectionPool,
        NoAnswer,
        connect,
        connection_parameters,
    )
    from ctxdb.storage.postgres_errors import first_line, is_transient, translate
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigError(
        "PostgreSQL support needs the postgres extra: pip install 'ctxdb[postgres]'"
    ) from exc

T = TypeVar("T")
_cursor_names = itertools.count()
# psycopg logs what it also raises (and what ctxdb reports as one error); without a handler of
# the application's, Python would print those lines to stderr, before a CLI's JSON error.
logging.getLogger("psycopg").addHandler(logging.NullHandler())

# One simple-query message, so knowing the transaction id costs no extra round trip.
# (txid_* rather than the pg_*_xact_id names of PostgreSQL 13+, to work from version 10 on.)
_BEGIN_WITH_ID = b"BEGIN; SELECT txid_current()"
_COMMIT_OUTCOME = "SELECT txid_status(%s)"
# How long a commit whose answer was lost may stay "in progress" while its backend winds up.
_OUTCOME_PATIENCE = 5.0
# Pipeline mode needs libpq 14 or newer; with an older one, deferred statements run at once.
_PIPELINE = psycopg.Pipeline.is_supported()


class TimestampTextLoader(Loader):
    """Render ``timestamptz`` (server time zone UTC) as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""

    def load(self, data: Any) -> str:
        text = bytes(data).decode()
        stamp, _, _zone = text.partition("+")
        day, _, clock = stamp.partition(" ")
        seconds, _, fraction = clock.partition(".")
        return f"{day}T{seconds}.{(fraction + '000')[:3]}Z"


def _configure(conn: psycopg.Connection[Any], settings: Settings, read_only: bool) -> None:
    conn.adapters.register_loader("jsonb", TextLoader)
    conn.adapters.register_loader("json", TextLoader)
    conn.adapters.register_loader("timestamptz", TimestampTextLoader)
    statements = ["SET TIME ZONE 'UTC'", "SET synchronous_commit = on",
                  f"SET statement_timeout = {round(settings.pg_statement_timeout * 1000)}"]
    if read_only:
        statements.append("SET default_transaction_read_only = on")
    # One simple-query message (bytes, no parameters): one round trip for all of them.
    conn.execute("; ".join(statements).encode())


def _rollback_if_possible(conn: psycopg.Connection[Any]) -> None:
    """Roll back after a failed unit; a connection that cannot is discarded by the pool."""
    if not conn.broken:
        with contextlib.suppress(psycopg.Error):  # the unit's own error is the one to report
            conn.rollback()


def _scalar(cursor: psycopg.Cursor[Any]) -> Any:
    row = cursor.fetchone()
    if row is None:
        raise StorageError("PostgreSQL returned no row where one was expected")
    return row[0]


class PostgresTx(RawTx):
    def __init__(self, conn: psycopg.Connection[Any], queries: dict[str, str]) -> None:
        self._conn = conn
        self._queries = queries
        self._deferred: list[tuple[str, dict[str, Any]]] = []
        self._document_writers = document_writers()

    def _named(self, query: str) -> str:
        if query in self._document_writers:
            self.may_write_documents = True
        return self._queries[query]

    def _literal(self) -> None:
        """Before literal SQL, which may write anything: the deferred statements, then note it."""
        self.flush()
        self.may_write_documents = True

    def defer(self, query: str, **params: Any) -> None:
        if _PIPELINE:
            self._deferred.append((self._named(query), params))
        else:
            self.execute(query, **params)

    @contextlib.contextmanager
    def _after_deferred(self) -> Iterator[None]:
        """Sends the deferred statements, then what the block sends, in one pipeline: one
        round trip for all. An error in any of them is raised when the block ends."""
        if not self._deferred:
            yield
            return
        deferred, self._deferred = self._deferred, []
        with self._conn.pipeline():
            for sql, params in deferred:
                self._conn.execute(sql, params)
            yield

    def flush(self) -> None:
        """Runs the deferred statements now (before a statement a pipeline cannot carry)."""
        with self._after_deferred():
            pass

    def commit(self) -> None:
        """COMMIT, with the deferred statements before it in the same round trip."""
        if not self._deferred:
            self._conn.commit()
            return
        with self._after_deferred():
            # As a statement of the pipeline: conn.commit() would end the pipeline with a
            # second synchronization, a round trip more than the one this saves.
            self._conn.execute("COMMIT")

    def _cursor(self, query: str, params: dict[str, Any]) -> psycopg.Cursor[Any]:
        cursor = self._conn.cursor(row_factory=dict_row)
        with self._after_deferred():
            cursor.execute(self._named(query), params)
        return cursor

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
        with self._cursor(query, params) as cursor:
            return list(cursor.fetchall())

    def one(self, query: str, **params: Any) -> Row | None:
        with self._cursor(query, params) as cursor:
            row: Row | None = cursor.fetchone()
            return row

    def stream(self, query: str, **params: Any) -> Iterator[Row]:
        # A server-side cursor, so that rows not consumed are never sent over the network.
        self.flush()
        name = f"ctxdb_stream_{next(_cursor_names)}"
        with self._conn.cursor(name=name, row_factory=dict_row) as cursor:
            cursor.itersize = 256
            cursor.execute(self._named(query), params)
            yield from cursor

    def execute(self, query: str, **params: Any) -> int:
        with self._cursor(query, params) as cursor:
            return int(cursor.rowcount)

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

    def lock(self, key: int) -> None:
        self.flush()
        self._conn.execute(POSTGRES.advisory_lock(key))

    def script(self, sql: str) -> None:
        # Without parameters psycopg sends the text as one simple query: many statements run.
        self._literal()
        self._conn.execute(sql.encode())


class PostgresStorage(Storage):
    dialect = POSTGRES
    keeps_dead_index_entries = True  # until a vacuum, which ctxdb must not rely on

    def __init__(self, settings: Settings, read_only: bool = False) -> None:
        self.settings = settings
        self.read_only = read_only
        self.url = settings.url
        self._queries = compiled_queries(POSTGRES)
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
            _configure(conn, self.settings, self.read_only)
        except BaseException:
            conn.close()
            raise
        return conn

    def describe_url(self) -> str:
        # Never print a password that may be part of the URL.
        info = psycopg.conninfo.conninfo_to_dict(self.url)
        return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname')}"

    def describe(self) -> str:
        return f"postgres: {self.describe_url()}"

    def _transaction(self, unit: Callable[[Tx], T]) -> T:
        with self._pool.connection() as conn, conn.transaction():
            tx = PostgresTx(conn, self._queries)
            result = unit(tx)
            tx.flush()
            return result

    def _write_transaction(self, unit: Callable[[Tx], T]) -> T:
        """Like :meth:`_transaction`, but a COMMIT that got no answer is resolved, not redone."""
        committing = False
        try:
            with self._pool.connection() as conn:
                cursor = conn.execute(_BEGIN_WITH_ID)
                cursor.nextset()
                xid = int(_scalar(cursor))
                tx = PostgresTx(conn, self._queries)
                try:
                    result = unit(tx)
                except BaseException:
                    _rollback_if_possible(conn)
                    raise
                committing = True
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
            if committing and self._committed(xid):
                return result
            if committing and isinstance(exc, NoAnswer):
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
                    status = _scalar(conn.execute(_COMMIT_OUTCOME, (xid,)))
            except (psycopg.Error, StorageError):
                return False
            if status != "in progress" or time.monotonic() > deadline:
                return bool(status == "committed")
            time.sleep(0.01)

    def _statement(self, unit: Callable[[Tx], T]) -> T:
        """Run a unit of one statement on an autocommit connection: no BEGIN, no COMMIT."""
        with self._pool.connection() as conn:
            tx = PostgresTx(conn, self._queries)
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
        return self._guarded(lambda tx: tx.one(query, **params), write=False,
                             run=self._statement)

    def health(self) -> Health:
        from ctxdb.storage.postgres_health import PostgresHealth

        return PostgresHealth(self)

    def close(self) -> None:
        self._pool.close()
