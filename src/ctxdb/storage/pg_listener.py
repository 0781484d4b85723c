"""The change signal of PostgreSQL: one connection per process LISTENing on ``ctxdb_changes``
(see ``change_signal.py``; migration 0016 NOTIFYs on every insert into the audit log).

The connection is the listener's own, outside the pool, and lives as long as the storage.
When it breaks (the server restarted, the backend was terminated, the network went) the
subscribers are woken, so that they read again from their own positions, and the listener
connects anew with a growing pause. Nothing is lost meanwhile: readers read the table, and the
signal wakes them every ``fallback_seconds`` even when no notification came, which also
covers a change that becomes readable without one (a transaction of another database that
held back the settled line; see queries/changes.sql).
"""

from __future__ import annotations

import psycopg

from ctxdb.settings import Settings
from ctxdb.storage.change_signal import ChangeSignal
from ctxdb.storage.pg_pool import connection_parameters

CHANNEL = "ctxdb_changes"


class PostgresChangeSignal(ChangeSignal):
    def __init__(self, settings: Settings, interval: float = 0.5,
                 fallback_seconds: float = 1.0, max_pause: float = 2.0) -> None:
        super().__init__("ctxdb-change-listener", fallback_seconds)
        self.settings = settings
        self.interval = interval
        self.max_pause = max_pause
        # The listening backend's process id while connected (tests and diagnostics).
        self.listener_pid: int | None = None

    def _watch(self) -> None:
        pause = 0.1
        while not self.stopping.is_set():
            try:
                self._listen()
                pause = 0.1
            except psycopg.Error:
                self.listener_pid = None
                self.wake_all()
                self.stopping.wait(pause)
                pause = min(pause * 2, self.max_pause)

    def _listen(self) -> None:
        with psycopg.connect(
                self.settings.url, autocommit=True,
                connect_timeout=max(2, round(self.settings.pg_connect_timeout)),
                **connection_parameters(self.settings.pg_socket_timeout)) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.listener_pid = conn.info.backend_pid
            self.wake_all()  # what was committed while nobody listened
            quiet = 0.0
            while not self.stopping.is_set():
                heard = False
                for _notification in conn.notifies(timeout=self.interval):
                    heard = True
                    self.wake_all()
                quiet = 0.0 if heard else quiet + self.interval
                if quiet >= self.fallback_seconds:
                    quiet = 0.0
                    self.wake_all()
