"""The contenders of bench/peers.py by the names its ``--contenders`` takes."""

from __future__ import annotations

from peer_base import Contender
from peer_postgres import CtxdbPostgres, LangGraphPostgres, RawPostgres
from peer_sqlite import (
    AgentsSession,
    CtxdbSQLite,
    LangGraphSQLite,
    RawSQLite,
    RawSQLiteInThread,
)

# In the table's order: each backend's raw floor first, ratios are against it.
CONTENDERS: dict[str, type[Contender]] = {
    "raw-sqlite": RawSQLite,
    "agents-sqlite": AgentsSession,
    "langgraph-sqlite": LangGraphSQLite,
    "ctxdb-sqlite": CtxdbSQLite,
    "raw-postgres": RawPostgres,
    "langgraph-postgres": LangGraphPostgres,
    "ctxdb-postgres": CtxdbPostgres,
    "raw-sqlite-thread": RawSQLiteInThread,
}
# What runs unless --contenders says otherwise: every contender but the diagnostic one.
DEFAULT_CONTENDERS = [kind for kind in CONTENDERS if kind != "raw-sqlite-thread"]
RAW_OF = {"sqlite": "raw-sqlite", "postgres": "raw-postgres"}
