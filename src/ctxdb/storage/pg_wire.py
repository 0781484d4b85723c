"""The statements of ctxdb's units of work sent with libpq's own calls (psycopg's ``PGconn``,
its generators and its ``Transformer``, all compiled code), not through psycopg's cursors.

A cursor's Python (its query conversion, its prepared statements' bookkeeping, its pipeline's
queues, its row maker) cost more instructions per store than all of ctxdb's own layers: a
store's two round trips of four statements went through it eight times. Here a unit's
statements are dumped, sent in one pipeline ending with one Sync, and their answers read back
by one wait of the connection (``BoundedConnection.wait``, with its timeout) for the whole
round trip. Literal SQL of the rarer paths (migrations, COPY, server-side cursors) still goes
through psycopg's cursors.

Each named query is prepared on the server on its first use on a connection and executed by
name after that, so the server parses and plans it once; psycopg's own prepared statements
are switched off on ctxdb's connections (``pg_connection.py``), as its ``rollback()`` would
deallocate every statement of the connection, these too.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg
from psycopg import errors as pg_errors
from psycopg import generators, pq
from psycopg.abc import PQGen
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq.abc import PGconn, PGresult

from ctxdb.errors import StorageError

# A statement of a unit: a named query's compiled text (psycopg's %(name)s placeholders) and
# its parameters, or literal SQL without parameters (BEGIN, COMMIT, a scope).
Statement = tuple[str | bytes, dict[str, Any] | None]

TUPLES_OK = pq.ExecStatus.TUPLES_OK
COMMAND_OK = pq.ExecStatus.COMMAND_OK
FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC
BAD = pq.ConnStatus.BAD
# Statements a connection keeps prepared at most; past that, a query is sent unnamed (parsed
# and planned each time). ctxdb has a few hundred named queries, each with a few variants of
# parameter types (psycopg gives an int the smallest integer type that holds it).
MAX_PREPARED = 500
# Errors of a statement prepared before that the server no longer has (26000), or whose
# result changed since (0A000, "cached plan must not change result type": a migration by
# another process): the connection's statements are prepared anew from then on.
STALE_STATEMENTS = frozenset({"26000", "0A000"})
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


@functools.cache
def positional(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """A compiled query with ``$n`` placeholders, and the parameter each ``n`` names."""
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        if match[1] is None:  # %% stands for a literal percent sign
            return "%"
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return _PLACEHOLDER.sub(placeholder, sql).encode(), tuple(names)


@functools.cache
def _auto_formats(count: int) -> list[PyFormat]:
    return [PyFormat.AUTO] * count


class PreparedStatementsStale(psycopg.OperationalError):
    """A statement prepared on this connection was gone or stale on the server; nothing of
    the unit ran past it, and its statements are prepared anew: running the unit again
    succeeds (a connection error without a SQLSTATE, which the retry rules run again)."""


class _Message(NamedTuple):
    """One statement as sent: by name if ``name``; its Parse first if ``prepare``."""

    sql: bytes
    params: Sequence[Any] | None
    types: Sequence[int] | None
    formats: Sequence[pq.Format] | None
    name: bytes | None
    prepare: bool


class Wire:
    """One connection's statements (see the module's docstring). Used by one thread at a
    time, as the connection is."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._pgconn = conn.pgconn
        self._transformer = Transformer(conn)
        self._encoding = conn.info.encoding
        self._prepared: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self._names = itertools.count()

    def simple(self, sql: bytes) -> list[PGresult]:
        """``sql`` (one or more statements, no parameters) as one simple-query message."""
        self._pgconn.send_query(sql)
        results: list[PGresult] = self._conn.wait(generators.execute(self._pgconn))
        self._raise_first_error(results)
        return results

    def exchange(self, statements: Sequence[Statement], pipeline: bool = True
                 ) -> list[PGresult]:
        """Each statement's result, all sent in one pipeline (one round trip), or one by one
        without ``pipeline``. The first error is raised once every answer is in: the server
        runs none of the statements after it."""
        messages: list[_Message] = []
        try:
            for sql, params in statements:
                messages.append(self._message(sql, params))
            if not pipeline:
                return [self._one_by_one(message) for message in messages]
            groups = self._pipelined(messages)
        except BaseException:
            # Whether their Parse ran is not known: prepared anew on their next use.
            for message in messages:
                if message.prepare:
                    self._unprepare(message)
            raise
        results = self._without_parses(messages, groups)
        self._raise_first_error(results, messages)
        return results

    def _pipelined(self, messages: Sequence[_Message]) -> list[list[PGresult]]:
        """The messages in one pipeline and their answers, up to its Sync."""
        pgconn = self._pgconn
        pgconn.enter_pipeline_mode()
        try:
            for message in messages:
                self._send(message)
            pgconn.pipeline_sync()
            groups: list[list[PGresult]] = self._conn.wait(_pipeline_answers(pgconn))
        except BaseException:
            _abandon_pipeline(pgconn)
            raise
        pgconn.exit_pipeline_mode()
        return groups

    def rows(self, result: PGresult, limit: int | None = None) -> list[dict[str, Any]]:
        """The rows of a statement's result (the first ``limit``), each a dict by column."""
        if result.status != TUPLES_OK:
            return []
        count = result.ntuples if limit is None else min(limit, result.ntuples)
        names = [(result.fname(column) or b"").decode() for column in range(result.nfields)]
        self._transformer.set_pgresult(result)
        rows: list[dict[str, Any]] = self._transformer.load_rows(
            0, count, lambda values: dict(zip(names, values, strict=True)))
        return rows

    @staticmethod
    def rowcount(result: PGresult) -> int:
        """Rows the statement wrote or read, as psycopg's ``Cursor.rowcount`` tells."""
        if result.status == TUPLES_OK:
            return result.ntuples
        count = result.command_tuples
        return -1 if count is None else count

    def forget(self) -> None:
        """Drop the prepared statements (after literal SQL that may have changed what they
        read: a migration)."""
        if self._prepared:
            self._prepared.clear()
            self.simple(b"DEALLOCATE ALL")

    def _message(self, sql: str | bytes, params: dict[str, Any] | None) -> _Message:
        if isinstance(sql, bytes):
            return _Message(sql, None, None, None, None, False)
        text, names = positional(sql)
        try:
            values = [(params or {})[name] for name in names]
        except KeyError as exc:
            raise psycopg.ProgrammingError(f"query parameter missing: {exc}") from None
        dumped = self._transformer.dump_sequence(values, _auto_formats(len(values)))
        types, formats = tuple(self._transformer.types or ()), self._transformer.formats
        key = (text, types)
        name = self._prepared.get(key)
        if name is not None:
            return _Message(text, dumped, types, formats, name, False)
        if len(self._prepared) >= MAX_PREPARED:
            return _Message(text, dumped, types, formats, None, False)
        # Known as prepared at once: a second use in the same pipeline follows the Parse.
        name = self._prepared[key] = f"ctxdb_{next(self._names)}".encode()
        return _Message(text, dumped, types, formats, name, True)

    def _send(self, message: _Message) -> None:
        sql, params, types, formats, name, prepare = message
        if prepare and name is not None:
            self._pgconn.send_prepare(name, sql, param_types=types)
        if name is not None:
            self._pgconn.send_query_prepared(name, params, param_formats=formats)
        else:
            self._pgconn.send_query_params(sql, params, param_formats=formats,
                                           param_types=types)

    def _one_by_one(self, message: _Message) -> PGresult:
        """One statement in a round trip of its own (libpq without pipeline mode)."""
        if message.prepare and message.name is not None:
            self._pgconn.send_prepare(message.name, message.sql, param_types=message.types)
            parsed = self._conn.wait(generators.execute(self._pgconn))
            self._raise_first_error(parsed)
            message = message._replace(prepare=False)
        self._send(message)
        results: list[PGresult] = self._conn.wait(generators.execute(self._pgconn))
        self._raise_first_error(results, (message,))
        return results[-1]

    def _without_parses(self, messages: Sequence[_Message],
                        groups: list[list[PGresult]]) -> list[PGresult]:
        """Each statement's result, the answers to the Parse messages taken out; a statement
        whose Parse the server did not run is not known as prepared."""
        results: list[PGresult] = []
        answers = iter(groups)
        for message in messages:
            parsed = next(answers, None) if message.prepare else None
            if message.prepare and (parsed is None or parsed[-1].status != COMMAND_OK):
                self._unprepare(message)
            answer = next(answers, None)
            if answer is None:  # the answers ended early: the connection is gone
                raise psycopg.OperationalError("the server's answers ended early")
            # A Parse the server refused is the statement's error (it did not run).
            failed = parsed is not None and parsed[-1].status == FATAL_ERROR
            results.append(parsed[-1] if parsed is not None and failed else answer[-1])
        return results

    def _unprepare(self, message: _Message) -> None:
        key = (message.sql, tuple(message.types or ()))
        if self._prepared.get(key) == message.name:
            del self._prepared[key]

    def _raise_first_error(self, results: Sequence[PGresult],
                           messages: Sequence[_Message] = ()) -> None:
        for number, result in enumerate(results):
            if result.status != FATAL_ERROR:
                continue
            error = pg_errors.error_from_result(result, encoding=self._encoding)
            # Run by a name prepared before (not by a Parse of this round trip).
            by_name = (number < len(messages) and messages[number].name is not None
                       and not messages[number].prepare)
            if by_name and error.sqlstate in STALE_STATEMENTS:
                self._prepared.clear()  # their names are not used again
                raise PreparedStatementsStale(
                    f"a prepared statement was stale: {error}") from error
            raise error


def _abandon_pipeline(pgconn: PGconn) -> None:
    """After a failure half-way through a pipeline (a lost connection, a timeout, an
    interrupt): out of pipeline mode, or, with answers left unread, the connection closed
    (broken: the pool discards it), never left for the next unit in between."""
    if pgconn.status == BAD:
        return
    with contextlib.suppress(psycopg.Error):
        pgconn.exit_pipeline_mode()
    if pgconn.pipeline_status != pq.PipelineStatus.OFF:
        pgconn.finish()


def _pipeline_answers(pgconn: PGconn) -> PQGen[list[list[PGresult]]]:
    """The answers of a pipeline up to its Sync, one list per statement (and per Parse)."""
    yield from generators.send(pgconn)
    groups: list[list[PGresult]] = []
    while True:
        results = yield from generators.fetch_many(pgconn)
        if not results or results[0].status == PIPELINE_SYNC:
            return groups
        groups.append(results)


def first_value(result: PGresult) -> bytes:
    """The first column of the first row, as text."""
    value = result.get_value(0, 0) if result.ntuples else None
    if value is None:
        raise StorageError("PostgreSQL returned no row where one was expected")
    return value
