"""What every contender of bench/peers.py offers, and the helpers they share.

Every contender writes the same payloads into a store of its own (a fresh SQLite file or a
fresh PostgreSQL database) and offers the same four things: a durable write, a point read by
the key the write gave (where the store has one), loading every item of one project
(namespace, session) and an independent count of its rows, made with the bare driver, which
is how the benchmark checks that every acknowledged write is there.

Durability is the same for all of them: SQLite in WAL mode with ``synchronous=FULL`` on the
connection each contender actually writes with, PostgreSQL with ``synchronous_commit=on``
(the server's default, which ctxdb also sets). Where a peer takes a connection in its
constructor (LangGraph's ``SqliteStore``) it is handed one with those pragmas; where it opens
its own (the OpenAI Agents SDK's ``SQLiteSession`` sets WAL itself and leaves ``synchronous``
at SQLite's default) :func:`sqlite_default_synchronous` checks what that default is.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

BUSY_TIMEOUT_S = 30.0  # ctxdb's default busy timeout, given to every SQLite contender
WARMUP_WRITES = 20  # untimed writes of each contender before its timed ones, per run
PROJECT = "bench-project"  # the project (namespace, session) of the contenders without ids
SQLITE_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


@dataclass
class Writes:
    """What a run of writes did, item by item: the key to read each acknowledged one by
    (``None`` where the store refused the write), each acknowledged write's seconds, and the
    errors of the refused ones."""

    keys: list[Any] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def acknowledged(self, key: Any, seconds: float) -> None:
        self.keys.append(key)
        self.latencies.append(seconds)

    def failed(self, error: Exception) -> None:
        self.keys.append(None)
        self.errors.append(f"{type(error).__name__}: {error}")

    @property
    def count(self) -> int:
        return len(self.latencies)


def durable_sqlite(path: str, **connect: Any) -> sqlite3.Connection:
    """A connection in WAL mode with ``synchronous=FULL`` and ctxdb's busy timeout."""
    conn: sqlite3.Connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, **connect)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        raise RuntimeError(f"{path}: journal_mode is {mode}, not wal")
    conn.execute("PRAGMA synchronous = FULL")
    level = conn.execute("PRAGMA synchronous").fetchone()[0]
    if level != 2:
        raise RuntimeError(f"{path}: synchronous is {level}, not FULL (2)")
    return conn


def sqlite_default_synchronous() -> str:
    """The ``synchronous`` a new connection to a WAL database gets when it sets none (what
    ``SQLiteSession``'s connections run with)."""
    with tempfile.TemporaryDirectory() as folder:
        conn = sqlite3.connect(str(Path(folder) / "probe.db"))
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            level = int(conn.execute("PRAGMA synchronous").fetchone()[0])
        finally:
            conn.close()
    return SQLITE_NAMES.get(level, str(level))


def sqlite_count(path: str, sql: str, *params: Any) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(sql, params).fetchone()[0])
    finally:
        conn.close()


def postgres_count(url: str, sql: str, *params: Any) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(sql, params).fetchone()
        return int(row[0]) if row else 0


class Contender(ABC):
    """One store under test, opened on ``location`` (a file path or a PostgreSQL URL)."""

    name: ClassVar[str]  # as printed in the table
    backend: ClassVar[str]  # "sqlite" or "postgres"
    reads_by_key: ClassVar[bool] = True
    # How durability was set, for the report.
    durability: ClassVar[str]

    def __init__(self, location: str, scratch: Path, project: str) -> None:
        self.location, self.scratch, self.project = location, scratch, project

    @classmethod
    @abstractmethod
    def create(cls, location: str, scratch: Path) -> str:
        """Make the store's schema (untimed); returns the project to write into."""

    @abstractmethod
    def write(self, key: str, value: dict[str, Any]) -> Any:
        """One durable write, committed when this returns; the key to read the value by."""

    def write_all(self, items: Sequence[tuple[str, dict[str, Any]]]) -> Writes:
        """Each item written on its own, in order."""
        writes = Writes()
        for key, value in items:
            started = time.perf_counter()
            try:
                read_key = self.write(key, value)
            except Exception as exc:  # a refused write is counted and reported, not fatal
                writes.failed(exc)
            else:
                writes.acknowledged(read_key, time.perf_counter() - started)
        return writes

    def read(self, key: Any) -> dict[str, Any]:
        raise NotImplementedError(f"{self.name} has no read by key")

    @abstractmethod
    def load_all(self) -> list[dict[str, Any]]:
        """Every item of the project."""

    @classmethod
    @abstractmethod
    def count(cls, location: str, project: str) -> int:
        """Rows of ``project`` in the store, counted with the bare driver."""

    @abstractmethod
    def close(self) -> None:
        """Release the store's connections."""


class LangGraphStore(Contender):
    """A LangGraph ``BaseStore`` (SQLite or PostgreSQL): a namespace per project, the item's
    key its id; the subclass opens ``self.store`` and sets ``self.namespace``."""

    store: Any
    namespace: tuple[str, ...]

    @classmethod
    def create(cls, location: str, scratch: Path) -> str:
        cls(location, scratch, PROJECT).close()  # its setup() makes its tables
        return PROJECT

    def write(self, key: str, value: dict[str, Any]) -> Any:
        self.store.put(self.namespace, key, value)
        return key

    def read(self, key: Any) -> dict[str, Any]:
        item = self.store.get(self.namespace, key)
        assert item is not None, key
        return item.value

    def load_all(self) -> list[dict[str, Any]]:
        return [item.value for item in self.store.search(self.namespace, limit=10**9)]


async def timed_writes(items: Sequence[tuple[str, dict[str, Any]]],
                       write: Callable[[str, dict[str, Any]], Awaitable[object]]) -> Writes:
    """``Contender.write_all`` for a contender whose writes are awaited: each item written
    on its own, in order, its key acknowledged once its write returned."""
    writes = Writes()
    for key, value in items:
        started = time.perf_counter()
        try:
            await write(key, value)
        except Exception as exc:  # a refused write is counted and reported, not fatal
            writes.failed(exc)
        else:
            writes.acknowledged(key, time.perf_counter() - started)
    return writes
