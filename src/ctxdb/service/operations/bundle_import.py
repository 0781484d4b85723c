"""Writing a verified bundle's records into a database, inside one transaction.

Into a database without any rows, every record is inserted as it is, ids included, in
batches (COPY on PostgreSQL): ``db copy``, restores and moving a whole database rely on
getting the same ids back. The search index's triggers are switched off during such a load and
the index is built once at the end, in the same transaction (much faster).

Into a database that holds rows, each record is placed by ``bundle_merge``: a record already
present is skipped (importing a bundle twice changes nothing), a record whose number another
row holds gets a new one (and every reference to it follows), and a record that is a changed
version of a row of its own project is a conflict, which fails the import (its transaction is
rolled back, nothing is written) unless ``replace`` asks to overwrite that row. No record ever
writes a row of a project that is not the bundle's.

Columns that may point to a later row of the same table (``Table.deferred``) are inserted as
NULL and set once the whole table is in. Identity counters are moved past the imported ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ctxdb.errors import BundleError
from ctxdb.service.operations.bundle_format import Manifest, read_records
from ctxdb.service.operations.bundle_ids import ImportOptions, Merge, TableCounts
from ctxdb.service.operations.bundle_merge import BATCH_ROWS, TableMerge
from ctxdb.service.operations.records import RowCodec
from ctxdb.storage.base import Tx
from ctxdb.storage.bulk import (
    TableSql,
    bulk_page_cache,
    finish_table,
    insert_rows,
    is_empty,
    rebuild_derived,
    suspend_derived_triggers,
    update_rows,
)
from ctxdb.storage.dialect import Dialect
from ctxdb.storage.tables import TABLES, Table, table_named

__all__ = ["ImportOptions", "TableCounts", "import_records"]


class _TableLoad:
    """The records of one table into an empty database, written (or counted) in batches."""

    def __init__(self, tx: Tx, table: Table, columns: tuple[str, ...], dialect: Dialect,
                 options: ImportOptions) -> None:
        self.tx, self.table, self.options = tx, table, options
        self.sql = TableSql(table, columns, dialect)
        self.codec = RowCodec(table, columns)
        self.counts = TableCounts()
        self._deferred = [c for c in table.deferred if c in columns]
        self._deferred_at = [columns.index(c) for c in self._deferred]
        self._key_at = [columns.index(k) for k in table.key]
        self._pending: list[list[Any]] = []
        self._later: list[list[Any]] = []  # deferred values, then the key

    def add(self, row: dict[str, Any], checksum: str) -> None:
        self.counts.rows += 1
        if self.counts.rows % BATCH_ROWS == 0:
            self.options.progress.advance(BATCH_ROWS)
        self.counts.inserted += 1
        if self.options.write:
            self._pending.append(self._values(row))
            if len(self._pending) >= BATCH_ROWS:
                self.flush()

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
            insert_rows(self.tx, self.sql, self._pending, bulk=True)
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
    current: _TableLoad | TableMerge | None = None
    merge = None
    if not all(is_empty(tx, TableSql(t, t.key, dialect)) for t in TABLES):
        merge = Merge(tx, dialect, manifest.header.get("project_id"), options)
    suspended = None
    if options.write and merge is None:
        suspended = suspend_derived_triggers(tx, dialect)
    with bulk_page_cache(tx, dialect):
        for name, row, checksum in read_records(path, manifest):
            if current is None or current.table.name != name:
                if current is not None:
                    done[current.table.name] = current.finish()
                table = _table(name, manifest, done)
                columns = manifest.columns[name]
                current = (_TableLoad(tx, table, columns, dialect, options) if merge is None
                           else TableMerge(merge, table, columns))
            current.add(row, checksum)
        if current is not None:
            done[current.table.name] = current.finish()
        if suspended is not None:
            rebuild_derived(tx, dialect, suspended)
    for table in manifest.tables():  # tables without records
        done.setdefault(table.name, TableCounts())
    return done


def _table(name: str, manifest: Manifest, done: dict[str, TableCounts]) -> Table:
    table = table_named(name)
    if table is None or name not in manifest.columns or name in done:
        # Verified, so only a file changed since can get here.
        raise BundleError("the bundle changed while it was being imported; nothing was "
                          "imported")
    return table
