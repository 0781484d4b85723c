"""Health probes of the embedded SQLite database (see storage/health.py)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from ctxdb.errors import StorageError
from ctxdb.storage.base import Tx, raw
from ctxdb.storage.dialect import SQLITE
from ctxdb.storage.health import Health, IntegrityReport, SettingProbe, StorageSize
from ctxdb.storage.queries import compiled_queries
from ctxdb.storage.sqlite import SQLiteStorage, connect

_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
# How integrity_check names an index whose entries disagree with its table.
_INDEX_MESSAGE = re.compile(
    r"(?:missing from index|wrong # of entries in index|non-unique entry in index) (\w+)")
_MOST_FOREIGN_KEY_PROBLEMS = 100


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
            # returned then shows that nothing was truncated.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite checkpoint failed: {exc}") from exc
        finally:
            conn.close()
        return self.size()
