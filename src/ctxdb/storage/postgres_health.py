"""Health probes of a PostgreSQL database (see storage/health.py).

PostgreSQL enforces foreign keys itself, so instead of looking for orphan rows (a scan of
every referencing table) the probe checks that every foreign key is validated and that its
enforcement triggers are enabled: those are the only ways orphans can get in. Index
structure is verified with the ``amcheck`` extension when the database has it installed.
"""

from __future__ import annotations

import time
from typing import Any

from ctxdb.errors import StorageError
from ctxdb.storage.base import Tx, raw
from ctxdb.storage.dialect import POSTGRES
from ctxdb.storage.health import (
    Health,
    IntegrityReport,
    SettingProbe,
    Statistics,
    StorageSize,
)
from ctxdb.storage.postgres import PostgresStorage
from ctxdb.storage.queries import compiled_queries

_NOT_VALIDATED = """
SELECT c.conrelid::regclass::text AS table_name, c.conname AS name
FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
WHERE c.contype = 'f' AND n.nspname = current_schema() AND NOT c.convalidated
ORDER BY 1, 2"""
_DISABLED_TRIGGERS = """
SELECT DISTINCT c.conrelid::regclass::text AS table_name, c.conname AS name
FROM pg_trigger t
JOIN pg_constraint c ON c.oid = t.tgconstraint
JOIN pg_namespace n ON n.oid = c.connamespace
WHERE c.contype = 'f' AND n.nspname = current_schema() AND t.tgenabled = 'D'
ORDER BY 1, 2"""
_BTREE_INDEXES = """
SELECT c.oid::bigint AS oid, c.relname AS name
FROM pg_index x
JOIN pg_class c ON c.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am a ON a.oid = c.relam
WHERE n.nspname = current_schema() AND a.amname = 'btree'
ORDER BY c.relname"""
_INDEX_CHECK = "SELECT bt_index_check(%(oid)s::oid::regclass, %(heap)s)"
_AMCHECK = """
SELECT has_function_privilege(p.oid, 'EXECUTE') AS allowed
FROM pg_extension e
JOIN pg_depend d ON d.refobjid = e.oid AND d.deptype = 'e'
JOIN pg_proc p ON p.oid = d.objid
WHERE e.extname = 'amcheck' AND p.proname = 'bt_index_check' AND p.pronargs = 2"""
# SQLSTATE class XX: data_corrupted (XX001), index_corrupted (XX002).
_CORRUPTION = "XX"


# The index behind the UNIQUE constraint of a table on exactly the given columns, in order.
_UNIQUE_INDEX = """
SELECT i.relname AS name FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class i ON i.oid = c.conindid
WHERE n.nspname = current_schema() AND c.contype = 'u' AND t.relname = %(table)s
  AND ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
            ORDER BY k.ord) = %(columns)s::text[]
"""


# ctxdb's tables with what PostgreSQL counts of them. reltuples is -1 until a table is first
# analyzed (PostgreSQL 14 and newer); the counters restart after a crash, so they are a
# lower bound. n_dead_tup rows of the table's average width approximate what VACUUM frees.
_TABLE_STATISTICS = """
SELECT c.relname AS name, c.reltuples, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze,
       greatest(s.last_analyze, s.last_autoanalyze) AS analyzed_at,
       CASE WHEN c.reltuples > 0
            THEN pg_table_size(c.oid) / c.reltuples ELSE 0 END AS row_bytes
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE n.nspname = current_schema() AND c.relkind = 'r'
ORDER BY c.relname"""


# A table without statistics is a finding from this size on: below it, any plan reads a
# few pages (and a new database's tables all start without).
STATISTICS_MIN_ROWS = 1_000
# The planner's estimate of the rows of an index's table (-1: never analyzed or vacuumed).
_INDEXED_TABLE_ROWS = """
SELECT t.reltuples FROM pg_class i
JOIN pg_index x ON x.indexrelid = i.oid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE n.nspname = current_schema() AND i.relname = %(index)s"""


# The change feed's wake-up (migration 0016): the statement trigger on the audit log, whether
# it is enabled ('D': disabled) and whether its function still notifies the feed's channel.
_FEED_TRIGGER = """
SELECT t.tgenabled::text AS enabled,
       position('ctxdb_changes' IN pg_get_functiondef(p.oid)) > 0 AS notifies
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc p ON p.oid = t.tgfoid
WHERE n.nspname = current_schema() AND c.relname = 'audit_log'
  AND t.tgname = 'audit_log_notify'"""


class PostgresHealth(Health):
    storage: PostgresStorage
    foreign_key_guarantee = "every foreign key is validated and enforced by PostgreSQL"
    full_text_index = "idx_search_documents_vector"  # the GIN index of the tsvector column

    def __init__(self, storage: PostgresStorage) -> None:
        super().__init__(storage)

    def change_feed_wakeup_problems(self) -> list[str] | None:
        row = self.storage.read(lambda tx: raw(tx).one_raw(_FEED_TRIGGER, {}))
        if row is None:
            return ["the trigger audit_log_notify on audit_log is missing"]
        problems = []
        if row["enabled"] == "D":
            problems.append("the trigger audit_log_notify on audit_log is disabled")
        if not row["notifies"]:
            problems.append("the trigger's function no longer notifies ctxdb_changes")
        return problems

    def connection_settings(self) -> list[SettingProbe]:
        def unit(tx: Tx) -> list[SettingProbe]:
            def show(name: str) -> str:
                row = raw(tx).one_raw(f"SHOW {name}", {})
                return "" if row is None else str(next(iter(row.values())))

            return [
                SettingProbe("synchronous_commit", show("synchronous_commit"), "on"),
                SettingProbe("TimeZone", show("TimeZone"), "UTC"),
                # "replica" switches foreign-key triggers off for the session.
                SettingProbe("session_replication_role", show("session_replication_role"),
                             "origin"),
                SettingProbe("server_version", show("server_version")),
            ]

        started = time.monotonic()
        probes = self.storage.read(unit)
        elapsed_ms = (time.monotonic() - started) * 1000
        return [*probes, SettingProbe("pool", f"reachable ({elapsed_ms:.0f} ms)")]

    def integrity(self, thorough: bool) -> IntegrityReport:
        amcheck = self.storage.read(lambda tx: raw(tx).one_raw(_AMCHECK, {}))
        if amcheck is None:
            return IntegrityReport("", unavailable="the amcheck extension is not installed "
                                   "(CREATE EXTENSION amcheck)")
        if not amcheck["allowed"]:
            return IntegrityReport("", unavailable="this role may not run amcheck's "
                                   "bt_index_check (GRANT EXECUTE on it)")
        indexes = self.storage.read(lambda tx: raw(tx).all_raw(_BTREE_INDEXES, {}))
        problems, damaged = [], []
        for index in indexes:
            try:
                # One transaction per index: a corrupt one fails only its own check.
                self._check_index(int(index["oid"]), thorough)
            except StorageError as exc:
                if not str(exc.details.get("sqlstate") or "").startswith(_CORRUPTION):
                    raise  # not a finding about the index (a lock timeout, a cancel, …)
                problems.append(f"index {index['name']}: {exc.message}")
                damaged.append(str(index["name"]))
        return IntegrityReport("amcheck", tuple(problems), tuple(damaged), bool(damaged))

    def _check_index(self, oid: int, heap: bool) -> None:
        self.storage.read(lambda tx: raw(tx).all_raw(_INDEX_CHECK, {"oid": oid, "heap": heap}))

    def foreign_key_problems(self) -> list[str]:
        def unit(tx: Tx) -> list[str]:
            problems = [f"foreign key {row['name']} of {row['table_name']} is NOT VALID: "
                        "rows written before it was added are unchecked"
                        for row in raw(tx).all_raw(_NOT_VALIDATED, {})]
            problems += [f"foreign key {row['name']} of {row['table_name']} is not enforced: "
                         "its triggers are disabled"
                         for row in raw(tx).all_raw(_DISABLED_TRIGGERS, {})]
            return problems

        return self.storage.read(unit)

    def query_plan(self, query: str, params: dict[str, Any]) -> list[str]:
        sql = "EXPLAIN " + compiled_queries(POSTGRES)[query]

        def unit(tx: Tx) -> list[str]:
            # Tiny or fresh tables make a sequential scan the cheapest plan whatever the
            # indexes; forbidding it (for this transaction only) shows which index the
            # planner would pick when the table is large.
            raw(tx).all_raw("SET LOCAL enable_seqscan = off", {})
            return [str(row["QUERY PLAN"]) for row in raw(tx).all_raw(sql, params)]

        return self.storage.read(unit)

    def unique_index(self, table: str, columns: tuple[str, ...]) -> str | None:
        row = self.storage.read(lambda tx: raw(tx).one_raw(
            _UNIQUE_INDEX, {"table": table, "columns": list(columns)}))
        return None if row is None else str(row["name"])

    def index_names(self) -> set[str]:
        rows = self.storage.read(lambda tx: raw(tx).all_raw(
            "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()",
            {}))
        return {str(row["name"]) for row in rows}

    def reindex_statement(self, index: str) -> str:
        return f'REINDEX INDEX "{index}";'

    def size(self) -> StorageSize:
        row = self.storage.read(lambda tx: raw(tx).one_raw(
            "SELECT pg_database_size(current_database()) AS n", {}))
        return StorageSize(int(row["n"]) if row else 0)

    def statistics(self) -> Statistics:
        def unit(tx: Tx) -> tuple[list[Any], tuple[str, ...]]:
            rows = raw(tx).all_raw(_TABLE_STATISTICS, {})
            # reltuples is set by ANALYZE and VACUUM in the table's own transaction; the
            # counters of pg_stat_user_tables arrive later, so they do not tell the size.
            unanalyzed = tuple(str(r["name"]) for r in rows if float(r["reltuples"]) < 0
                               and self._holds(tx, str(r["name"]), STATISTICS_MIN_ROWS))
            return rows, unanalyzed

        rows, unanalyzed = self.storage.read(unit)
        changed = sum(int(r["n_mod_since_analyze"] or 0) for r in rows)
        dead = sum(int(r["n_dead_tup"] or 0) * float(r["row_bytes"] or 0) for r in rows)
        times = [r["analyzed_at"] for r in rows if r["analyzed_at"] is not None]
        oldest = str(min(times)) if times else None
        return Statistics(unanalyzed, changed, int(dead), oldest)

    @staticmethod
    def _holds(tx: Tx, table: str, rows: int) -> bool:
        """Whether ``table`` holds at least ``rows`` rows (counted up to there only)."""
        found = raw(tx).one_raw(f'SELECT count(*) AS n FROM (SELECT 1 FROM "{table}" '
                                f"LIMIT {rows}) t", {})
        return bool(found and int(found["n"]) >= rows)

    def optimize(self, vacuum: bool) -> list[str]:
        # VACUUM (not FULL) and ANALYZE take locks that let reads and writes go on; VACUUM
        # cannot run inside a transaction, so each table gets its own statement in
        # autocommit. Every table is vacuumed whatever ``vacuum``: on a server with
        # autovacuum off (as some are) nothing else frees dead rows.
        tables = [str(r["name"]) for r in self.storage.read(
            lambda tx: raw(tx).all_raw(_TABLE_STATISTICS, {}))]
        steps = [f'VACUUM (ANALYZE) "{table}"' for table in tables]
        for step in steps:
            self._autocommit(step)
        return steps

    def _autocommit(self, statement: str) -> None:
        def unit(tx: Tx) -> None:
            raw(tx).script(statement)

        # The storage's own guard: its errors translated and retried like every other call.
        self.storage._guarded(unit, write=False, run=self.storage._statement)

    def analyze_after_load(self) -> None:
        # The planner keeps the statistics of the tables as they were (none, or empty,
        # after a migration) until ANALYZE runs; autovacuum, which would run it, may be off.
        self.storage.write(lambda tx: raw(tx).script("ANALYZE"))

    def estimated_rows(self, index: str) -> int | None:
        row = self.storage.read(lambda tx: raw(tx).one_raw(_INDEXED_TABLE_ROWS,
                                                           {"index": index}))
        if row is None or float(row["reltuples"]) < 0:
            return None
        return int(row["reltuples"])

    def checkpoint(self) -> None:
        return None
