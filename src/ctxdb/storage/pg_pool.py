"""PostgreSQL connections for ctxdb's processes: each wait bounded, nothing dead kept.

Most ctxdb processes live for one event or one command and use one connection; the MCP
server's threads share a few. psycopg_pool suits neither a server that is down nor a burst of
killed backends: its connections are made by background workers, so a caller waiting for one
never learns why none comes (a refused server cost the whole 30 s checkout wait, attempt
after attempt, and the reason was only logged), and each broken connection scheduled a
replacement that kept retrying for minutes, until every process had grown to its maximum.
So, here:

- a connection is made in the caller's thread, within ``pg_connect_timeout``: a refused
  server is an error at once, a silent one after that timeout, with libpq's reason;
- at most ``max_size`` connections exist; a caller waits at most :data:`CHECKOUT_WAIT` for
  one of them to be free;
- a connection returned broken, or that cannot be brought back to idle, is closed, and so are
  the idle ones (what killed one, a restart, killed them all): the next caller connects anew;
- every connection waits at most ``pg_socket_timeout`` for any one answer of the server (a
  frozen server or a lost network, which the server's statement timeout cannot end), then
  it is closed and the call fails with :class:`NoAnswer`. The kernel is told the same
  through TCP keepalives and ``tcp_user_timeout``.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.abc import PQGen
from psycopg.pq import TransactionStatus

from ctxdb.storage.pg_wire import Wire

RV = TypeVar("RV")

# Seconds a caller waits for a connection while all of them are in use by other threads.
CHECKOUT_WAIT = 5.0
# psycopg's own connect timeout counts whole seconds, at least two, per address tried.
_LIBPQ_MIN_CONNECT_TIMEOUT = 2
# How often psycopg wakes up while waiting (its default), so that Ctrl-C is seen.
_WAIT_INTERVAL = 0.1


class NoAnswer(psycopg.OperationalError):
    """The server did not answer within the socket timeout: the connection was closed."""


class CheckoutTimeout(psycopg.OperationalError):
    """Every connection stayed in use by other threads for the whole checkout wait."""


# What psycopg (3.3 on) raises when a wait given a timeout runs out; a private name of its.
_WAIT_TIMEOUT: type[Exception] = getattr(pg_errors, "_WaitTimeout", NoAnswer)


class BoundedConnection(psycopg.Connection[Any]):
    """A connection whose every wait for the server ends after ``answer_timeout`` seconds."""

    answer_timeout: float | None = None
    _wire: Wire | None = None

    def wire(self) -> Wire:
        """How this connection sends the named queries of a unit (pg_wire.py), with the
        statements it prepared; made on first use."""
        if self._wire is None:
            self._wire = Wire(self)
        return self._wire

    def wait(self, gen: PQGen[RV], interval: float = _WAIT_INTERVAL,
             timeout: float | None = None) -> RV:
        if timeout is not None or self.answer_timeout is None:
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, self.answer_timeout)
        except _WAIT_TIMEOUT:
            pass
        # Half-way through a message exchange: the connection cannot be used again.
        self.pgconn.finish()
        raise NoAnswer(f"PostgreSQL did not answer within {self.answer_timeout:g} s; "
                       "the connection was closed")


def connection_parameters(socket_timeout: float) -> dict[str, Any]:
    """libpq parameters by which the kernel gives up a connection whose peer went silent:
    keepalives for an idle one, ``tcp_user_timeout`` for data that is never acknowledged."""
    seconds = max(1, math.ceil(socket_timeout))
    return {
        "keepalives": 1,
        "keepalives_idle": max(1, seconds // 2),
        "keepalives_interval": max(1, seconds // 6),
        "keepalives_count": 3,
        "tcp_user_timeout": seconds * 1000,
    }


def connect(url: str, timeout: float, answer_timeout: float,
            **params: Any) -> BoundedConnection:
    """A new autocommit connection, or psycopg's error, within ``timeout`` seconds.

    psycopg's own timeout cannot be shorter than two seconds (per address a host name has),
    so the attempt runs in a thread that is left behind when ``timeout`` passes; it ends by
    psycopg's timeout, and closes the connection if one comes too late.
    """
    outcome: dict[str, Any] = {}
    lock = threading.Lock()

    def attempt() -> None:
        try:
            conn = BoundedConnection.connect(
                url, autocommit=True,
                connect_timeout=max(_LIBPQ_MIN_CONNECT_TIMEOUT, math.ceil(timeout)), **params)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc
            return
        with lock:
            if outcome.get("abandoned"):
                conn.close()
                return
            outcome["conn"] = conn

    worker = threading.Thread(target=attempt, name="ctxdb-pg-connect", daemon=True)
    worker.start()
    worker.join(timeout)
    with lock:
        if "conn" in outcome:
            conn: BoundedConnection = outcome["conn"]
            conn.answer_timeout = answer_timeout
            return conn
        if "error" in outcome:
            raise outcome["error"]
        outcome["abandoned"] = True
    raise pg_errors.ConnectionTimeout(f"no answer from the server within {timeout:g} s")


class ConnectionPool:
    """See the module's docstring. ``connect`` makes one configured connection."""

    def __init__(self, connect: Callable[[], BoundedConnection], min_size: int,
                 max_size: int) -> None:
        self._connect = connect
        self._max_size = max(min_size, max_size)
        self._slots = threading.BoundedSemaphore(self._max_size)
        self._lock = threading.Lock()
        self._idle: list[BoundedConnection] = []
        self._closed = False
        try:
            for _ in range(min_size):
                self._idle.append(connect())
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def connection(self) -> Iterator[BoundedConnection]:
        conn = self._checkout()
        try:
            yield conn
        finally:
            self._checkin(conn)

    def _checkout(self) -> BoundedConnection:
        if not self._slots.acquire(timeout=CHECKOUT_WAIT):
            raise CheckoutTimeout(f"all {self._max_size} PostgreSQL connections stayed in use "
                                  f"for {CHECKOUT_WAIT:g} s")
        try:
            with self._lock:
                if self._closed:
                    raise psycopg.InterfaceError("the connection pool is closed")
                conn = self._idle.pop() if self._idle else None
            return conn if conn is not None and not conn.closed else self._connect()
        except BaseException:
            self._slots.release()
            raise

    def _checkin(self, conn: BoundedConnection) -> None:
        try:
            if conn.broken or conn.closed:
                conn.close()
                self.discard_idle()
                return
            if conn.pgconn.transaction_status != TransactionStatus.IDLE:
                try:
                    conn.rollback()
                except psycopg.Error:
                    conn.close()
                    return
            with self._lock:
                if not self._closed:
                    self._idle.append(conn)
                    return
            conn.close()
        finally:
            self._slots.release()

    def discard_idle(self) -> None:
        """Close the idle connections: after one died, they are likely dead too."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.discard_idle()
