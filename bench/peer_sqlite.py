"""The SQLite contenders of bench/peers.py (their contract: bench/peer_base.py).

The peers are imported inside the classes that use them: ctxdb's own environment does not
have them, and the ctxdb and raw contenders run without them (tests/test_bench_peers.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from peer_base import (
    PROJECT,
    Contender,
    LangGraphStore,
    Writes,
    durable_sqlite,
    sqlite_count,
    timed_writes,
)


class RawSQLite(Contender):
    """The floor: one ``INSERT`` into a two-column-key table, in autocommit mode (the
    statement is its own transaction, committed before ``execute`` returns)."""

    name, backend = "raw sqlite3", "sqlite"
    durability = "its connection: journal_mode=WAL, synchronous=FULL"

    @classmethod
    def create(cls, location: str, scratch: Path) -> str:
        conn = durable_sqlite(location, isolation_level=None)
        conn.execute("CREATE TABLE items (project TEXT NOT NULL, key TEXT NOT NULL, "
                     "value TEXT NOT NULL, PRIMARY KEY (project, key))")
        conn.close()
        return PROJECT

    def __init__(self, location: str, scratch: Path, project: str) -> None:
        super().__init__(location, scratch, project)
        self.conn = durable_sqlite(location, isolation_level=None, check_same_thread=False)

    def write(self, key: str, value: dict[str, Any]) -> Any:
        self.conn.execute("INSERT INTO items (project, key, value) VALUES (?, ?, ?)",
                          (self.project, key, json.dumps(value)))
        return key

    def read(self, key: Any) -> dict[str, Any]:
        row = self.conn.execute("SELECT value FROM items WHERE project = ? AND key = ?",
                                (self.project, key)).fetchone()
        return dict(json.loads(row[0]))

    def load_all(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT value FROM items WHERE project = ? ORDER BY rowid",
                                 (self.project,))
        return [json.loads(row[0]) for row in rows]

    @classmethod
    def count(cls, location: str, project: str) -> int:
        return sqlite_count(location, "SELECT count(*) FROM items WHERE project = ?", project)

    def close(self) -> None:
        self.conn.close()


class RawSQLiteInThread(RawSQLite):
    """A diagnostic, not a peer: the raw ``INSERT`` handed to a worker thread and awaited
    (``asyncio.to_thread``), the way ``SQLiteSession`` runs its writes. It fsyncs and waits
    for every commit as ``RawSQLite`` does; what it measures is a scheduling effect: on a
    machine whose CPUs are busy with other processes, writes handed to ``asyncio``'s pool
    wait less for a CPU after their ``fdatasync`` than writes from the calling thread, at
    about twice the CPU per write; on one CPU they are slower
    (docs/benchmarks.md, "Why SQLiteSession beats the raw driver here"). Its ratio to
    ``raw-sqlite`` tells how much of a loaded run's SQLite ratios is that effect. Not run
    unless named in ``--contenders``."""

    name = "raw sqlite3, each write in a worker thread (diagnostic)"

    def __init__(self, location: str, scratch: Path, project: str) -> None:
        super().__init__(location, scratch, project)
        self.runner = asyncio.Runner()

    def write_all(self, items: Sequence[tuple[str, dict[str, Any]]]) -> Writes:
        return self.runner.run(timed_writes(
            items, lambda key, value: asyncio.to_thread(self.write, key, value)))

    def close(self) -> None:
        super().close()
        self.runner.close()


def as_session_items(value: dict[str, Any]) -> list[Any]:
    """The payload as the one-item list ``add_items`` takes (it stores any JSON object; its
    annotation names the SDK's message shapes)."""
    return [value]


class AgentsSession(Contender):
    """The OpenAI Agents SDK's ``SQLiteSession`` (one session per project), as shipped: its
    async API driven by one event loop, each ``add_items`` of one item awaited in turn."""

    name, backend = "OpenAI Agents SQLiteSession", "sqlite"
    reads_by_key = False  # a session is a list: its items are read newest-first or all
    durability = ("opens its own connections and sets journal_mode=WAL itself; takes no "
                  "pragmas, so synchronous is SQLite's default for WAL")

    @classmethod
    def create(cls, location: str, scratch: Path) -> str:
        from agents.memory import SQLiteSession

        SQLiteSession(PROJECT, location).close()  # makes its tables
        return PROJECT

    def __init__(self, location: str, scratch: Path, project: str) -> None:
        from agents.memory import SQLiteSession

        super().__init__(location, scratch, project)
        self.session = SQLiteSession(project, location)
        self.runner = asyncio.Runner()

    def write(self, key: str, value: dict[str, Any]) -> Any:
        self.runner.run(self.session.add_items(as_session_items(value)))
        return key

    def write_all(self, items: Sequence[tuple[str, dict[str, Any]]]) -> Writes:
        """One coroutine awaiting each write in turn (no event loop started per write)."""
        return self.runner.run(timed_writes(
            items, lambda _key, value: self.session.add_items(as_session_items(value))))

    def load_all(self) -> list[dict[str, Any]]:
        return [dict(item) for item in self.runner.run(self.session.get_items())]

    @classmethod
    def count(cls, location: str, project: str) -> int:
        return sqlite_count(location, "SELECT count(*) FROM agent_messages "
                            "WHERE session_id = ?", project)

    def close(self) -> None:
        self.session.close()
        self.runner.close()


class LangGraphSQLite(LangGraphStore):
    """LangGraph's ``SqliteStore`` (``langgraph.store.sqlite``), a namespace per project,
    built on a connection opened as its ``from_conn_string`` opens one (autocommit, shared
    across threads) plus the pragmas."""

    name, backend = "LangGraph SqliteStore", "sqlite"
    durability = ("handed to its constructor: a connection with journal_mode=WAL, "
                  "synchronous=FULL")

    def __init__(self, location: str, scratch: Path, project: str) -> None:
        from langgraph.store.sqlite import SqliteStore

        super().__init__(location, scratch, project)
        self.conn = durable_sqlite(location, check_same_thread=False, isolation_level=None)
        self.store = SqliteStore(self.conn)
        self.store.setup()
        self.namespace = ("projects", project)

    @classmethod
    def count(cls, location: str, project: str) -> int:
        return sqlite_count(location, "SELECT count(*) FROM store WHERE prefix = ?",
                            f"projects.{project}")

    def close(self) -> None:
        self.conn.close()


class CtxdbSQLite(Contender):
    """ctxdb's library: ``ctxdb.open`` on the store's URL, ``db.context.store`` of a HIGH
    item, ``db.context.get`` by item id, ``db.context.full`` of the project."""

    name = "ctxdb"
    backend = "sqlite"
    durability = "its defaults: journal_mode=WAL, synchronous=FULL"

    @classmethod
    def create(cls, location: str, scratch: Path) -> str:
        import ctxdb
        from data import bench_settings

        with ctxdb.open(bench_settings(location, scratch)) as db:
            return str(db.projects.create("peers bench")["project_id"])

    def __init__(self, location: str, scratch: Path, project: str) -> None:
        import ctxdb
        from data import bench_settings

        super().__init__(location, scratch, project)
        self.db = ctxdb.open(bench_settings(location, scratch))
        # Start-up, as the peers' constructors load theirs: the context service's modules
        # are imported on first use, which would otherwise land in the first timed write.
        self.db.context  # noqa: B018

    def write(self, key: str, value: dict[str, Any]) -> Any:
        return self.db.context.store(self.project, value, priority="HIGH")["item_id"]

    def read(self, key: Any) -> dict[str, Any]:
        return dict(self.db.context.get(key, project_id=self.project)["content"])

    def load_all(self) -> list[dict[str, Any]]:
        grouped = self.db.context.full(self.project)
        return [item["content"] for items in grouped.values() for item in items]

    @classmethod
    def count(cls, location: str, project: str) -> int:
        return sqlite_count(location, "SELECT count(*) FROM context_items "
                            "WHERE project_id = ?", project)

    def close(self) -> None:
        self.db.close()
