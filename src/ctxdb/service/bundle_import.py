"""Writing a verified bundle's records into a database, inside one transaction.

Per table: when the table is empty at the start, its records are inserted in batches (COPY on
PostgreSQL); otherwise each record is looked up by primary key first. A row already there
with the same canonical content is skipped, so importing a bundle twice changes nothing; a
row with different content is a conflict, which fails the import (its transaction is rolled
back, nothing is written) unless ``replace`` asks to overwrite it with the bundle's version.

Columns that may point to a later row of the same table (``Table.deferred``) are inserted as
NULL and set once the whole table is in. Identity counters are moved past the imported ids.
Into a database without any rows, the search index's triggers are switched off during the
load and the index is built once at the end, in the same transaction (much faster).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctxdb.errors import BundleError, ImportConflictError
from ctxdb.service.bundle_format import Manifest, read_records
from ctxdb.service.progress import Progress
from ctxdb.service.records import RowCodec
from ctxdb.storage.base import Tx
from ctxdb.storage.bulk import (
    TableSql,
    bulk_page_cache,
    find_row,
    finish_table,
    insert_rows,
    is_empty,
    rebuild_derived,
    suspend_derived_triggers,
    update_rows,
)
from ctxdb.storage.dialect import Dialect
from ctxdb.storage.tables import TABLES, Table, table_named

BATCH_ROWS = 2_000
MAX_LISTED_CONFLICTS = 20


@dataclass
class TableCounts:
    rows: int = 0
    inserted: int = 0
    skipped: int = 0
    replaced: int = 0
    conflicts: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "inserted": self.inserted, "skipped": self.skipped,
                "replaced": self.replaced, "conflicts": self.conflicts}


@dataclass
class ImportOptions:
    write: bool  # False: a dry run, which only counts
    replace: bool
    progress: Progress
    conflicts: list[dict[str, Any]] = field(default_factory=list)


class _TableImport:
    """The records of one table, written (or counted) batch by batch."""

    def __init__(self, tx: Tx, table: Table, columns: tuple[str, ...], dialect: Dialect,
                 options: ImportOptions) -> None:
        self.tx, self.table, self.options = tx, table, options
        self.sql = TableSql(table, columns, dialect)
        self.codec = RowCodec(table, columns)
        self.counts = TableCounts()
        self.was_empty = is_empty(tx, self.sql)
        self._deferred = [c for c in table.deferred if c in columns]
        self._deferred_at = [columns.index(c) for c in self._deferred]
        self._key_at = [columns.index(k) for k in table.key]
        self._others = [c for c in columns if c not in table.key]
        self._pending: list[list[Any]] = []
        self._later: list[list[Any]] = []  # deferred values, then the key

    def add(self, row: dict[str, Any], checksum: str) -> None:
        self.counts.rows += 1
        if self.counts.rows % BATCH_ROWS == 0:
            self.options.progress.advance(BATCH_ROWS)
        if not self.was_empty:
            found = find_row(self.tx, self.sql, {k: row[k] for k in self.table.key})
            if found is not None:
                self._existing(row, checksum, found)
                return
        self.counts.inserted += 1
        if self.options.write:
            self._pending.append(self._values(row))
            if len(self._pending) >= BATCH_ROWS:
                self.flush()

    def _existing(self, row: dict[str, Any], checksum: str, found: tuple[Any, ...]) -> None:
        if self.codec.checksum(self.codec.canonical(found)) == checksum:
            self.counts.skipped += 1
        elif self.options.replace:
            self.counts.replaced += 1
            if self.options.write:
                values = self._values(row)
                by_column = dict(zip(self.sql.columns, values, strict=True))
                keys = [values[i] for i in self._key_at]
                update_rows(self.tx, self.sql, self._others,
                            [[by_column[c] for c in self._others] + keys])
        else:
            self._conflict(row)

    def _conflict(self, row: dict[str, Any]) -> None:
        self.counts.conflicts += 1
        key = {k: row[k] for k in self.table.key}
        if self.options.write:
            raise ImportConflictError(
                f"{self.table.name} {key} already exists with different content; nothing was "
                "imported (--dry-run lists every conflict; --replace overwrites such rows "
                "with the bundle's)", table=self.table.name, key=key)
        if len(self.options.conflicts) < MAX_LISTED_CONFLICTS:
            self.options.conflicts.append({"table": self.table.name, "key": key})

    def _values(self, row: dict[str, Any]) -> list[Any]:
        values = self.codec.values(row)
        if self._deferred_at:
            later = [values[i] for i in self._deferred_at]
            if any(value is not None for value in later):
                self._later.append(later + [values[i] for i in self._key_at])
            for index in self._deferred_at:
                values[index] = None
        return values

    def flush(self) -> None:
        if self._pending:
            insert_rows(self.tx, self.sql, self._pending, bulk=self.was_empty)
            self._pending = []

    def finish(self) -> TableCounts:
        self.options.progress.advance(self.counts.rows % BATCH_ROWS)
        if self.options.write:
            self.flush()
            if self._later:
                update_rows(self.tx, self.sql, self._deferred, self._later)
            finish_table(self.tx, self.sql)
        return self.counts


def import_records(tx: Tx, dialect: Dialect, path: Path, manifest: Manifest,
                   options: ImportOptions) -> dict[str, TableCounts]:
    """Write (or, in a dry run, count) every record of the verified bundle at ``path``."""
    done: dict[str, TableCounts] = {}
    current: _TableImport | None = None
    suspended = None
    if options.write and all(is_empty(tx, TableSql(t, t.key, dialect)) for t in TABLES):
        suspended = suspend_derived_triggers(tx, dialect)
    with bulk_page_cache(tx, dialect):
        for name, row, checksum in read_records(path, manifest):
            if current is None or current.table.name != name:
                if current is not None:
                    done[current.table.name] = current.finish()
                current = _start_table(tx, dialect, name, manifest, options, done)
            current.add(row, checksum)
        if current is not None:
            done[current.table.name] = current.finish()
        if suspended is not None:
            rebuild_derived(tx, dialect, suspended)
    for table in manifest.tables():  # tables without records
        done.setdefault(table.name, TableCounts())
    return done


def _start_table(tx: Tx, dialect: Dialect, name: str, manifest: Manifest,
                 options: ImportOptions, done: dict[str, TableCounts]) -> _TableImport:
    table = table_named(name)
    if table is None or name not in manifest.columns or name in done:
        # Verified, so only a file changed since can get here.
        raise BundleError("the bundle changed while it was being imported; nothing was "
                          "imported")
    return _TableImport(tx, table, manifest.columns[name], dialect, options)
