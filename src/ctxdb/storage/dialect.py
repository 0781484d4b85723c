"""Everything that differs between SQLite and PostgreSQL SQL, in one place.

Queries are written once, in files under ``queries/``, using ``:name`` parameters and a few
``$TOKENS`` for the real differences. Each backend compiles the text once per process:

- ``$NOW``            current time from the database clock, as the stored timestamp type
- ``$AGO(:param)``    the database clock minus ``:param`` seconds
- ``$IN(:param)``     the database clock plus ``:param`` seconds (NULL when ``:param`` is
                      NULL: an expiry time that may be absent)
- ``$FOR_UPDATE``     row lock on PostgreSQL; nothing on SQLite, whose write transactions
                      (BEGIN IMMEDIATE) already hold the database write lock
- ``$SKIP_LOCKED``    ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; nothing on SQLite

Besides these: how to ask whether a table exists, and transaction-scoped advisory locks
(PostgreSQL) where SQLite's single writer lock already serializes.
"""


from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# Numbers of the advisory locks ctxdb takes; one place so that they never collide.
LOCK_MIGRATIONS = 4242001
LOCK_PROJECT_CREATION = 4242002

_SQLITE_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_AGO = re.compile(r"\$AGO\((:[A-Za-z_]\w*)\)")
_IN = re.compile(r"\$IN\((:[A-Za-z_]\w*)\)")


@dataclass(frozen=True)
class Dialect:
    name: str
    now: str
    ago: Callable[[str], str]
    later: Callable[[str], str]
    for_update: str
    skip_locked: str
    param_style: Callable[[str], str]
    table_exists: str  # one parameter, :name; returns a count
    advisory_lock: Callable[[int], str]  # a transaction-scoped lock on a number

    def compile(self, sql: str) -> str:
        sql = _AGO.sub(lambda m: self.ago(m.group(1)), sql)
        sql = _IN.sub(lambda m: self.later(m.group(1)), sql)
        sql = (sql.replace("$NOW", self.now)
                  .replace("$FOR_UPDATE", self.for_update)
                  .replace("$SKIP_LOCKED", self.skip_locked))
        return self.param_style(sql)


def _pyformat(sql: str) -> str:
    # psycopg reads % as the start of a placeholder, so literal percent signs are doubled first.
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


SQLITE = Dialect(
    name="sqlite",
    now=_SQLITE_NOW,
    ago=lambda p: f"strftime('%Y-%m-%dT%H:%M:%fZ','now','-'||{p}||' seconds')",
    later=lambda p: f"strftime('%Y-%m-%dT%H:%M:%fZ','now','+'||{p}||' seconds')",
    for_update="",
    skip_locked="",
    param_style=lambda sql: sql,  # sqlite3 understands :name natively
    table_exists="SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = :name",
    advisory_lock=lambda key: "",  # BEGIN IMMEDIATE already holds the one write lock
)

POSTGRES = Dialect(
    name="postgres",
    now="date_trunc('milliseconds', now())",
    ago=lambda p: f"(date_trunc('milliseconds', now()) - {p} * interval '1 second')",
    later=lambda p: f"(date_trunc('milliseconds', now()) + {p} * interval '1 second')",
    for_update="FOR UPDATE",
    skip_locked="FOR UPDATE SKIP LOCKED",
    param_style=_pyformat,
    table_exists=(
        "SELECT count(*) AS n FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name = %(name)s"
    ),
    advisory_lock=lambda key: f"SELECT pg_advisory_xact_lock({int(key)})",
)
