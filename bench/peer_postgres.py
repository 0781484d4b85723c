"""The PostgreSQL contenders of bench/peers.py (their contract: bench/peer_base.py).

Each gets a database of its own on the same server, and none sets anything on its
connections that the others do not have: ``synchronous_commit`` is the server's ``on``.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from peer_base import PROJECT, Contender, LangGraphStore, postgres_count
from peer_sqlite import CtxdbSQLite


class RawPostgres(Contender):
    """The floor on PostgreSQL: psycopg 3, one ``INSERT`` in autocommit mode (its own
    transaction, committed before ``execute`` returns), ``jsonb`` values."""

    name, backend = "raw psycopg 3", "postgres"
    durability = "synchronous_commit=on (the server's default)"

    @classmethod
    def create(cls, location: str, scratch: Path) -> str:
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("CREATE TABLE items (project text NOT NULL, key text NOT NULL, "
                         "value jsonb NOT NULL, PRIMARY KEY (project, key))")
        return PROJECT

    def __init__(self, location: str, scratch: Path, project: str) -> None:
        import psycopg

        super().__init__(location, scratch, project)
        self.conn = psycopg.connect(location, autocommit=True)

    def write(self, key: str, value: dict[str, Any]) -> Any:
        self.conn.execute("INSERT INTO items (project, key, value) VALUES (%s, %s, %s)",
                          (self.project, key, json.dumps(value)))
        return key

    def read(self, key: Any) -> dict[str, Any]:
        row = self.conn.execute("SELECT value FROM items WHERE project = %s AND key = %s",
                                (self.project, key)).fetchone()
        assert row is not None, key
        return dict(row[0])

    def load_all(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT value FROM items WHERE project = %s", (self.project,))
        return [row[0] for row in rows]

    @classmethod
    def count(cls, location: str, project: str) -> int:
        return postgres_count(location, "SELECT count(*) FROM items WHERE project = %s",
                              project)

    def close(self) -> None:
        self.conn.close()


class LangGraphPostgres(LangGraphStore):
    """LangGraph's ``PostgresStore`` (``langgraph.store.postgres``) as its
    ``from_conn_string`` makes it (one connection, autocommit, each batch in a pipeline)."""

    name, backend = "LangGraph PostgresStore", "postgres"
    durability = "synchronous_commit=on (the server's default)"

    def __init__(self, location: str, scratch: Path, project: str) -> None:
        from langgraph.store.postgres import PostgresStore

        super().__init__(location, scratch, project)
        self.stack = ExitStack()
        self.store = self.stack.enter_context(PostgresStore.from_conn_string(location))
        self.store.setup()
        self.namespace = ("projects", project)

    @classmethod
    def count(cls, location: str, project: str) -> int:
        return postgres_count(location, "SELECT count(*) FROM store WHERE prefix = %s",
                              f"projects.{project}")

    def close(self) -> None:
        self.stack.close()


class CtxdbPostgres(CtxdbSQLite):
    backend = "postgres"
    durability = "its defaults: synchronous_commit=on, set on every connection"

    @classmethod
    def count(cls, location: str, project: str) -> int:
        return postgres_count(location, "SELECT count(*) FROM context_items "
                              "WHERE project_id = %s", project)
