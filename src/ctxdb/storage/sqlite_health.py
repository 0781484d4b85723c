"""Health probes of the embedded SQLite database (see storage/health.py)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from ctxdb.errors import StorageError
from ctxdb.storage.base import Tx, raw
from ctxdb.storage.dialect import SQLITE
from ctxdb.storage.health import (
    Health,
    IntegrityReport,
    SettingProbe,
    Statistics,
    StorageSize,
)
from ctxdb.storage.queries import compiled_queries
from ctxdb.storage.sqlite import SQLiteStorage
from ctxdb.storage.sqlite_connect import connect

_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
# How integrity_check names an index whose entries disagree with its table.
_INDEX_MESSAGE = re.compile(
    r"(?:missing from index|wrong # of entries in index|non-unique entry in index) (\w+)")
_MOST_FOREIGN_KEY_PROBLEMS = 100
# The tables that have statistics (sqlite_stat1 exists once ANALYZE ran).
_ANALYZED_TABLES = ("SELECT DISTINCT tbl FROM sqlite_stat1 WHERE tbl IN "
                    "(SELECT name FROM sqlite_master WHERE type = 'table') ORDER BY 1")
# Rows ANALYZE reads per index: an approximate analysis whose cost does not grow with the
# table, so that it can run while agents write (SQLite's own advice for PRAGMA optimize).
_ANALYSIS_LIMIT = 1000

CHECKPOINT_WAIT_MS = 2_000  # how long a WAL truncation waits for readers to finish


def _synchronous_risk(synchronous: str) -> str:
    if synchronous != "NORMAL":
        return ""
    return ("synchronous=NORMAL (setting sqlite_synchronous) may lose the last commits on a "
            "power loss")


class SQLiteHealth(Health):
    storage: SQLiteStorage
    foreign_key_guarantee = "foreign_key_check: no row refers to a missing row"
    full_text_index = "search_fts"  # the FTS5 virtual table, as EXPLAIN QUERY PLAN names it

    def __init__(self, storage: SQLiteStorage) -> None:
        super().__init__(storage)

    def _pragma(self, tx: Tx, name: str) -> Any:
        row = raw(tx).one_raw(f"PRAGMA {name}", {})
        return None if row is None else next(iter(row.values()))

    def connection_settings(self) -> list[SettingProbe]:
        settings = self.storage.settings

        def unit(tx: Tx) -> list[SettingProbe]:
            level = self._pragma(tx, "synchronous")
            synchronous = _SYNCHRONOUS.get(level, str(level))
            return [
                SettingProbe("journal_mode", str(self._pragma(tx, "journal_mode")), "wal"),
                SettingProbe("synchronous", synchronous, settings.sqlite_synchronous,
                             _synchronous_risk(synchronous)),
                SettingProbe("busy_timeout", f"{self._pragma(tx, 'busy_timeout')} ms",
                             f"{settings.busy_timeout_ms} ms"),
                SettingProbe("foreign_keys", "on" if self._pragma(tx, "foreign_keys") else "off",
                             "on"),
                SettingProbe("sqlite_version", sqlite3.sqlite_version),
            ]

        return self.storage.read(unit)

    def integrity(self, thorough: bool) -> IntegrityReport:
        method = "integrity_check" if thorough else "quick_check"
        try:
            rows = self.storage.read(lambda tx: raw(tx).all_raw(f"PRAGMA {method}", {}))
        except StorageError as exc:
            # A damaged page can stop the check itself ("database disk image is malformed").
            return IntegrityReport(method, (exc.message,))
        # One row may hold several lines, the first headed "*** in database main ***".
        problems = tuple(line.strip() for row in rows
                         for line in str(next(iter(row.values()))).splitlines()
                         if line.strip() and not line.startswith("***"))
        if problems in ((), ("ok",)):
            return IntegrityReport(method)
        # An index that lacks rows or has extra ones is rebuilt from its table by REINDEX;
        # damage to the structure of any b-tree (bad pages, offsets) is not repairable here:
        # even REINDEX and DROP INDEX must read the damaged pages to free them.
        named = [_INDEX_MESSAGE.search(problem) for problem in problems]
        damaged = tuple(dict.fromkeys(match[1] for match in named if match))
        return IntegrityReport(method, problems, damaged, all(named))

    def foreign_key_problems(self) -> list[str]:
        rows = self.storage.read(lambda tx: raw(tx).all_raw("PRAGMA foreign_key_check", {}))
        problems = [f"{row['table']} row {row['rowid']} refers to a missing {row['parent']} row"
                    for row in rows[:_MOST_FOREIGN_KEY_PROBLEMS]]
        if len(rows) > _MOST_FOREIGN_KEY_PROBLEMS:
            problems.append(f"… and {len(rows) - _MOST_FOREIGN_KEY_PROBLEMS} more")
        return problems

    def query_plan(self, query: str, params: dict[str, Any]) -> list[str]:
        sql = "EXPLAIN QUERY PLAN " + compiled_queries(SQLITE)[query]
        rows = self.storage.read(lambda tx: raw(tx).all_raw(sql, params))
        return [str(row["detail"]) for row in rows]

    def unique_index(self, table: str, columns: tuple[str, ...]) -> str | None:
        def unit(tx: Tx) -> str | None:
            for index in raw(tx).all_raw("SELECT name FROM pragma_index_list(:table) "
                                         "WHERE origin = 'u' ORDER BY seq", {"table": table}):
                named = raw(tx).all_raw("SELECT name FROM pragma_index_info(:index) "
                                        "ORDER BY seqno", {"index": index["name"]})
                if tuple(str(row["name"]) for row in named) == columns:
                    return str(index["name"])
            return None

        return self.storage.read(unit)

    def index_names(self) -> set[str]:
        rows = self.storage.read(lambda tx: raw(tx).all_raw(
            "SELECT name FROM sqlite_master WHERE type = 'index'", {}))
        return {str(row["name"]) for row in rows}

    def reindex_statement(self, index: str) -> str:
        return f'REINDEX "{index}";'

    def statistics(self) -> Statistics:
        def unit(tx: Tx) -> Statistics:
            free = int(self._pragma(tx, "freelist_count")) * int(self._pragma(tx, "page_size"))
            return Statistics((), None, free, note="ctxdb plans its SQLite queries without "
                              "statistics, on purpose (docs/doctor.md)")

        return self.storage.read(unit)

    def optimize(self, vacuum: bool) -> list[str]:
        # ctxdb's SQLite queries are planned without statistics, on purpose: SQLite never
        # refreshes them by itself, and figures gathered while a table was small make it
        # scan that table once it is large. So no statistics are created here; those that
        # exist (a manual ANALYZE, as the original guide advises) are refreshed, so that
        # they at least describe the tables as they are now.
        analyzed = [str(r["tbl"]) for r in self.storage.read(lambda tx: raw(tx).all_raw(
            _ANALYZED_TABLES, {}))] if self._has_statistics() else []
        steps = [f"PRAGMA analysis_limit = {_ANALYSIS_LIMIT}"] if analyzed else []
        # One ANALYZE per table, each its own short write: agents' writes wait for one
        # table's sample at most, not for the whole database's.
        steps += [f'ANALYZE "{table}"' for table in analyzed]
        steps += ["VACUUM"] if vacuum else []
        steps += ["PRAGMA wal_checkpoint(PASSIVE)"]
        conn = connect(self.storage.path, self.storage.settings)
        try:
            for step in steps:
                conn.execute(step).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite optimize failed at {step!r}: {exc}") from exc
        finally:
            conn.close()
        return steps

    def estimated_rows(self, index: str) -> int | None:
        if not self._has_statistics():
            return None
        row = self.storage.read(lambda tx: raw(tx).one_raw(
            "SELECT stat FROM sqlite_stat1 WHERE idx = :index", {"index": index}))
        return int(str(row["stat"]).split()[0]) if row else None

    def _has_statistics(self) -> bool:
        return bool(self.storage.read(lambda tx: raw(tx).one_raw(
            "SELECT 1 AS x FROM sqlite_master WHERE name = 'sqlite_stat1'", {})))

    def analyze_after_load(self) -> None:
        # SQLite plans well without statistics, and `ctxdb db optimize` (run by gc) keeps
        # them current once they exist; nothing to do after a load.
        return None

    def _wal_path(self) -> Path:
        return Path(f"{self.storage.path}-wal")

    def size(self) -> StorageSize:
        wal = self._wal_path()
        return StorageSize(self.storage.path.stat().st_size,
                           wal.stat().st_size if wal.exists() else 0)

    def checkpoint(self) -> StorageSize:
        # Its own connection, outside any transaction: a checkpoint cannot run inside one.
        conn = connect(self.storage.path, self.storage.settings)
        try:
            # Busy (another connection reads or writes) leaves the WAL as it is: the size
            # returned then shows that nothing was truncated. A truncation is worth a short
            # wait for readers to finish, not the writers' long busy timeout: a long-running
            # reader would hold `doctor --fix` for half a minute, and a later run truncates.
            conn.execute(f"PRAGMA busy_timeout = {CHECKPOINT_WAIT_MS}")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite checkpoint failed: {exc}") from exc
        finally:
            conn.close()
        return self.size()
