"""What a PostgreSQL error means for a unit of work: run it again, or report it as which
ctxdb error (see the retry rules in ``postgres.py``)."""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors

from ctxdb.errors import (
    ConflictError,
    CtxdbError,
    DatabaseTimeoutError,
    DatabaseUnavailableError,
    StatementRefusedError,
)
from ctxdb.settings import Settings
from ctxdb.storage.pg_pool import CheckoutTimeout, NoAnswer

# SQLSTATEs after which the same unit of work may succeed: serialization failure, deadlock,
# the server shutting down, starting up or out of connection slots; and the whole class 08,
# connection exceptions. (A connection that failed on the client's side has no SQLSTATE.)
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03", "53300"})
STATEMENT_TIMEOUT = "57014"  # query_canceled: what statement_timeout raises


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, CheckoutTimeout):
        return True
    if isinstance(exc, NoAnswer | pg_errors.ConnectionTimeout) or not isinstance(
            exc, psycopg.Error):
        return False  # a silent server: running again would wait as long again
    if exc.sqlstate is None:
        return isinstance(exc, psycopg.OperationalError)
    return exc.sqlstate in TRANSIENT_SQLSTATES or exc.sqlstate.startswith("08")


def translate(exc: psycopg.Error, settings: Settings) -> CtxdbError:
    if isinstance(exc, NoAnswer):
        return DatabaseTimeoutError(str(exc), timeout=settings.pg_socket_timeout)
    if exc.sqlstate == STATEMENT_TIMEOUT:
        return DatabaseTimeoutError(
            f"a statement ran longer than pg_statement_timeout "
            f"({settings.pg_statement_timeout:g} s) and was cancelled: {first_line(exc)}",
            timeout=settings.pg_statement_timeout)
    if isinstance(exc, psycopg.IntegrityError):
        return ConflictError(f"the database refused the change: {exc}")
    if exc.sqlstate is None:
        return DatabaseUnavailableError(f"PostgreSQL connection failed: {first_line(exc)}")
    # The SQLSTATE lets a caller tell, say, index corruption (XX002) from a missing privilege.
    return StatementRefusedError(f"PostgreSQL error {exc.sqlstate}: {exc}",
                                 sqlstate=exc.sqlstate)


def first_line(exc: BaseException) -> str:
    """libpq's message without its hint lines (``Is the server running …``)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
