"""Turns at SQLite's write lock for ctxdb's own writers, so that no writer waits for long.

SQLite has one write lock per database. A writer that finds it taken sleeps and tries again,
and its busy handler sleeps longer the longer the writer has already waited: 1, 2, 5, 10, 15,
20 and 25 ms, then 50 and finally 100 ms between tries. So under steady contention (eight
processes storing items, the lock changing hands every millisecond or two) the writers that
have waited longest try least often, and a newcomer, whose first tries come at once, takes
the lock before them: some writes waited seconds while the lock was free a thousand times a
second (issue 14: worst latency 1.5 s with eight writer processes).

So a ctxdb write first takes its turn: an advisory lock (``flock``) on a file beside the
database, ``<database>-writers``, tried every fraction of a millisecond however long the
writer has waited, and held from before ``BEGIN IMMEDIATE`` to after its ``COMMIT`` (or
``ROLLBACK``). The writers of ctxdb thus reach SQLite's lock one at a time and find it free,
and a waiting writer is as likely as any other to be next. An uncontended write pays two
system calls.

The file only orders ctxdb's writers among themselves: SQLite's lock remains what makes writes
exclusive. A writer that is not ctxdb (the ``sqlite3`` shell, another program), a write that
cannot open the file (a read-only folder) and a write that has waited for its turn as long as
the busy timeout go straight to ``BEGIN IMMEDIATE`` and wait there as before; the operating
system drops the lock of a process that dies.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - a system without flock: SQLite's own waiting only
    fcntl = None  # type: ignore[assignment]

from ctxdb.private_files import private_file

# Between two tries at a turn: short against a transaction (a millisecond or more with its
# fsync), random so that waiters do not try in step.
_PAUSE = (0.0001, 0.0005)


# How many fork()s this process is away from the one that imported this module: a child
# counts one more (os.register_at_fork), so that a WriteTurns sees it is in a new process by
# comparing two numbers on each write, where asking os.getpid() is a system call.
_forks = 0


def _count_fork() -> None:
    global _forks
    _forks += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_count_fork)


def turns_path(database: Path) -> Path:
    return Path(f"{database}-writers")


class WriteTurns:
    """One connection's way to its turns (a file descriptor of its own: ``flock`` locks
    belong to an open file, so threads, each with its connection, take turns too)."""

    def __init__(self, database: Path, patience: float) -> None:
        self._path = turns_path(database)
        self._patience = patience
        self._forks = -1
        self._descriptor: int | None = None

    def _file(self) -> int | None:
        # A child process made by fork() shares its parent's open file, and with it the
        # parent's lock: it opens its own.
        if self._forks != _forks:
            self._forks = _forks
            self._descriptor = None
            if fcntl is not None:
                try:
                    private_file(self._path)
                    self._descriptor = os.open(self._path, os.O_RDWR | os.O_CLOEXEC)
                except OSError:  # a folder that cannot hold it: no turns, SQLite's waiting
                    self._descriptor = None
        return self._descriptor

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold this writer's turn for the block (or go on without one, see the module)."""
        held = self.take()
        try:
            yield
        finally:
            self.give_back(held)

    def take(self) -> int | None:
        """Take this writer's turn: the descriptor to hand to :meth:`give_back`, or ``None``
        when going on without one (see the module). :meth:`turn` without its generator, for
        the write path."""
        descriptor = self._file()
        if descriptor is not None and self._take(descriptor):
            return descriptor
        return None

    @staticmethod
    def give_back(held: int | None) -> None:
        if held is not None:
            fcntl.flock(held, fcntl.LOCK_UN)

    def _take(self, descriptor: int) -> bool:
        give_up_at: float | None = None
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                now = time.monotonic()
                if give_up_at is None:
                    give_up_at = now + self._patience
                elif now > give_up_at:
                    return False
                import random  # only a writer that waits: a hook process rarely does

                time.sleep(random.uniform(*_PAUSE))
            except OSError:  # a file system without flock
                return False

    def close(self) -> None:
        if self._descriptor is not None and self._forks == _forks:
            os.close(self._descriptor)
        self._descriptor, self._forks = None, -1
