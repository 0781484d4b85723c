"""How ctxdb sets up each PostgreSQL connection: ``jsonb`` as text and ``timestamptz`` as
ISO-8601 text, exactly as SQLite stores them, UTC, ``synchronous_commit=on`` and the
statement timeout. Imported by :mod:`ctxdb.storage.postgres` once the postgres extra is known
to be installed.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.adapt import Loader
from psycopg.types.string import TextLoader

from ctxdb.settings import Settings


class TimestampTextLoader(Loader):
    """Render ``timestamptz`` (server time zone UTC) as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""

    def load(self, data: Any) -> str:
        text = bytes(data).decode()
        stamp, _, _zone = text.partition("+")
        day, _, clock = stamp.partition(" ")
        seconds, _, fraction = clock.partition(".")
        return f"{day}T{seconds}.{(fraction + '000')[:3]}Z"


def configure_connection(conn: psycopg.Connection[Any], settings: Settings,
                         read_only: bool) -> None:
    conn.adapters.register_loader("jsonb", TextLoader)
    conn.adapters.register_loader("json", TextLoader)
    conn.adapters.register_loader("timestamptz", TimestampTextLoader)
    # The named queries are prepared by pg_wire.py: psycopg's own would make its rollback()
    # deallocate every prepared statement of the connection, those too.
    conn.prepare_threshold = None
    statements = ["SET TIME ZONE 'UTC'", "SET synchronous_commit = on",
                  f"SET statement_timeout = {round(settings.pg_statement_timeout * 1000)}"]
    if read_only:
        statements.append("SET default_transaction_read_only = on")
    # One simple-query message (bytes, no parameters): one round trip for all of them.
    conn.execute("; ".join(statements).encode())
