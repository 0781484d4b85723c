"""Group commit for SQLite: one writer thread commits the write units of many threads together.

SQLite has one write lock per file, and with ``synchronous=FULL`` every COMMIT waits for the
disk. A long-running process with many threads writing at once (``ctxdb serve``) therefore
spends most of its time queueing for the lock and syncing one small transaction at a time.
In this mode :meth:`SQLiteStorage.write` hands its unit to a :class:`GroupCommitter`
instead: one writer thread takes what is queued (at most :data:`MAX_GROUP` units),
``BEGIN IMMEDIATE``, runs each unit inside its own ``SAVEPOINT``, COMMITs once, and only then
wakes each caller with its own result.

What each caller sees is what it would see had its unit run alone:

* a unit that raises is rolled back to its savepoint (its audit row, sequence number and
  search documents with it) and its caller gets its exception; the others go on;
* a unit whose failure cost the whole transaction (SQLite rolls it back on a full disk or
  an I/O error) fails alone too: the units of the group that it took down with it were not
  acknowledged, and run again in a fresh transaction without it;
* a failure of the group itself (BEGIN, COMMIT, a unit that ended the transaction with a
  literal COMMIT or ROLLBACK) fails every unit of the group, and none is acknowledged;
* a busy database (another process holding the lock past the busy timeout) retries the
  whole group, as :func:`with_retries` retries a single unit: units are re-runnable, and
  no result is handed out before the COMMIT that made it true, so nothing is acknowledged
  twice;
* a caller's later reads, on its own connection, see its write: the COMMIT came first.

Closing drains the queue: every unit submitted before :meth:`GroupCommitter.close` is run and
answered, so no acknowledged write is lost at shutdown. A process forked from one with a
running writer starts its own writer on its first write (threads do not survive a fork).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from ctxdb.errors import StorageError
from ctxdb.logs import get_logger
from ctxdb.storage.base import Tx
from ctxdb.storage.retry import with_retries

T = TypeVar("T")
log = get_logger(__name__)

# The most units one transaction carries: bounds how long the last caller of a group waits
# (and how much one failure of the group costs) while still sharing one COMMIT among many.
MAX_GROUP = 64


@dataclass(eq=False)
class _Request:
    """One caller's unit, waiting for the group it joins to commit."""

    unit: Callable[[Tx], Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class _GroupBroken(StorageError):
    """The group's transaction cannot go on: every unit of the group fails with this."""


class _UnitLostTransaction(Exception):
    """The unit at ``index`` failed and SQLite rolled the whole transaction back with it."""

    def __init__(self, index: int, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.index, self.cause = index, cause


@dataclass
class GroupBackend:
    """What the committer needs of the storage: its writer connection, a transaction over
    that connection, how busy errors look and how driver errors are translated."""

    connection: Callable[[], sqlite3.Connection]
    transaction: Callable[[sqlite3.Connection], Tx]
    is_busy: Callable[[BaseException], bool]
    translate: Callable[[sqlite3.Error], Exception]
    describe: str


class GroupCommitter:
    """The queue and the writer thread (started on the first submitted unit)."""

    def __init__(self, backend: GroupBackend, max_group: int = MAX_GROUP) -> None:
        self.backend = backend
        self.max_group = max_group
        self.groups_committed = 0  # for tests and benchmarks: how many COMMITs were shared
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._queue: deque[_Request] = deque()
        self._writer: threading.Thread | None = None
        self._closing = False

    def in_writer(self) -> bool:
        """Whether the calling thread is the writer (a unit that writes again, nested)."""
        return threading.current_thread() is self._writer

    def submit(self, unit: Callable[[Tx], T]) -> T:
        """Queue ``unit``, wait until the group it ran in committed, and return its result
        (or raise its exception, or the group's)."""
        if os.getpid() != self._pid:
            self._reset()  # a forked child: the parent's writer thread is not here
        request = _Request(unit)
        with self._wakeup:
            if self._closing:
                raise StorageError("this storage has been closed")
            self._queue.append(request)
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_groups, daemon=True,
                                                 name="ctxdb-group-commit")
                self._writer.start()
            self._wakeup.notify()
        request.done.wait()
        if request.error is not None:
            raise request.error
        result: T = request.result
        return result

    def close(self) -> None:
        """Refuse new units, let the writer finish every queued one, and wait for it."""
        with self._wakeup:
            self._closing = True
            writer = self._writer
            self._wakeup.notify()
        if writer is not None and os.getpid() == self._pid and writer is not \
                threading.current_thread():
            writer.join()

    def _next_group(self) -> list[_Request] | None:
        with self._wakeup:
            while not self._queue and not self._closing:
                self._wakeup.wait()
            if not self._queue:
                return None  # closing, and nothing left to run
            count = min(len(self._queue), self.max_group)
            return [self._queue.popleft() for _ in range(count)]

    def _write_groups(self) -> None:
        group: list[_Request] = []
        try:
            while (next_group := self._next_group()) is not None:
                group = next_group
                self._commit(group)
                group = []
        finally:
            # At close the queue is empty. Reached early only by a bug: answer everyone still
            # waiting rather than leave them blocked forever (none of theirs was committed).
            with self._wakeup:
                left = group + list(self._queue)
                self._queue.clear()
                if self._writer is threading.current_thread():
                    self._writer = None  # the next unit submitted starts a new writer
            for request in left:
                if not request.done.is_set():
                    request.error = StorageError("the group-commit writer stopped")
                    request.done.set()

    def _commit(self, group: list[_Request]) -> None:
        pending = group
        while pending:
            try:
                outcomes = with_retries(partial(self._attempt, pending), self.backend.is_busy,
                                        self.backend.describe)
            except _UnitLostTransaction as lost:
                # That unit's caller gets its error; the others, rolled back with it and
                # not acknowledged, run again in a fresh transaction without it.
                self._answer(pending[lost.index], None, self._caller_error(lost.cause))
                pending = pending[:lost.index] + pending[lost.index + 1:]
                continue
            except Exception as exc:
                for request in pending:
                    self._answer(request, None, exc)
                return
            self.groups_committed += 1
            for request, (result, error) in zip(pending, outcomes, strict=True):
                self._answer(request, result, error)
            return

    @staticmethod
    def _answer(request: _Request, result: Any, error: BaseException | None) -> None:
        request.result, request.error = result, error
        request.done.set()

    def _caller_error(self, exc: BaseException) -> BaseException:
        return self.backend.translate(exc) if isinstance(exc, sqlite3.Error) else exc

    def _attempt(self, group: list[_Request]) -> list[tuple[Any, BaseException | None]]:
        """One try at the whole group: every unit's outcome, once its COMMIT succeeded."""
        conn = self.backend.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                outcomes = [self._run_unit(conn, index, request.unit)
                            for index, request in enumerate(group)]
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            if self.backend.is_busy(exc):
                raise  # the whole group is tried again (nothing was acknowledged)
            raise self.backend.translate(exc) from exc
        return outcomes

    def _run_unit(self, conn: sqlite3.Connection, index: int,
                  unit: Callable[[Tx], Any]) -> tuple[Any, BaseException | None]:
        conn.execute("SAVEPOINT ctxdb_unit")
        try:
            result = unit(self.backend.transaction(conn))
        except BaseException as exc:  # even SystemExit is the caller's, not the writer's
            if not conn.in_transaction:
                # SQLite rolled the whole transaction back (a full disk, an I/O error):
                # the units before this one are gone too, none of them committed.
                raise _UnitLostTransaction(index, exc) from exc
            if self.backend.is_busy(exc):
                raise
            conn.execute("ROLLBACK TO ctxdb_unit")
            conn.execute("RELEASE ctxdb_unit")
            return None, self._caller_error(exc)
        if not conn.in_transaction:
            # The unit ended the transaction itself (a literal COMMIT or ROLLBACK): what
            # became of the units before it is unknown, so the whole group fails.
            raise _GroupBroken("a unit of work ended the group's transaction itself")
        conn.execute("RELEASE ctxdb_unit")
        return result, None
