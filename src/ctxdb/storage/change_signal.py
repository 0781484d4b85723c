"""What wakes the readers of the change feed in one process: a thread per storage that calls
its subscribers when the audit log may have grown.

A signal only says "read again": the durable order is the table's (``queries/changes.sql``),
so a wake-up too many costs one cheap read and a missed one at most ``fallback_seconds`` of
delay. The backends differ in how they notice a commit: PostgreSQL LISTENs on one dedicated
connection (``pg_listener.py``, the migration 0016 NOTIFYs on every insert into the log), and
SQLite, where no other process can tell it anything, asks its file at a short interval
whether another connection committed (``PRAGMA data_version``, which reads no table).

Subscribers are called in the signal's thread and must only hand the news on (an event loop's
``call_soon_threadsafe``); the thread starts with the first subscriber and stops at
:meth:`ChangeSignal.close`.
"""

from __future__ import annotations

import abc
import itertools
import sqlite3
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ctxdb.errors import StorageError

if TYPE_CHECKING:
    from ctxdb.storage.sqlite import SQLiteStorage

Wake = Callable[[], None]


class ChangeSignal(abc.ABC):
    """Calls every subscriber when a change may have been committed (and, whatever happened,
    every ``fallback_seconds``)."""

    def __init__(self, name: str, fallback_seconds: float) -> None:
        self.name = name
        self.fallback_seconds = fallback_seconds
        self.stopping = threading.Event()
        self._subscribers: dict[int, Wake] = {}
        self._numbers = itertools.count()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None

    def subscribe(self, wake: Wake) -> Callable[[], None]:
        """Call ``wake`` on every signal from now on; returns the function that stops it."""
        number = next(self._numbers)
        with self._guard:
            if self.stopping.is_set():
                raise StorageError("the change signal has been closed with its storage")
            self._subscribers[number] = wake
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name=self.name,
                                                daemon=True)
                self._thread.start()
        return lambda: self._unsubscribe(number)

    def _unsubscribe(self, number: int) -> None:
        with self._guard:
            self._subscribers.pop(number, None)

    def wake_all(self) -> None:
        with self._guard:
            subscribers = list(self._subscribers.values())
        for wake in subscribers:
            wake()

    def close(self) -> None:
        self.stopping.set()
        with self._guard:
            thread, self._subscribers = self._thread, {}
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    @abc.abstractmethod
    def _watch(self) -> None:
        """The thread: call :meth:`wake_all` on each change noticed until ``stopping``."""


class SQLiteChangeSignal(ChangeSignal):
    """Asks the database file every ``interval`` seconds whether another connection
    committed; wakes the subscribers when one did, and every ``fallback_seconds`` anyway."""

    def __init__(self, storage: SQLiteStorage, interval: float = 0.1,
                 fallback_seconds: float = 5.0) -> None:
        super().__init__("ctxdb-change-poll", fallback_seconds)
        self.storage = storage
        self.interval = interval

    def _watch(self) -> None:
        while not self.stopping.is_set():
            try:
                self._poll()
            except (sqlite3.Error, StorageError):
                # The readers read again and meet the error themselves; this thread waits
                # and opens the file anew.
                self.wake_all()
                self.stopping.wait(self.fallback_seconds)

    def _poll(self) -> None:
        from ctxdb.storage.sqlite_connect import connect

        conn = connect(self.storage.path, self.storage.settings, read_only=True)
        try:
            seen, quiet = None, 0.0
            while not self.stopping.wait(self.interval):
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                quiet += self.interval
                if version != seen or quiet >= self.fallback_seconds:
                    seen, quiet = version, 0.0
                    self.wake_all()
        finally:
            conn.close()
