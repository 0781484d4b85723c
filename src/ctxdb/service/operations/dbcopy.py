"""``ctxdb db copy``: a whole database copied to another one, SQLite or PostgreSQL, verified.

The source is opened read-only (SQLite refuses writes on the connection; PostgreSQL sessions
run read-only transactions) and read in one consistent snapshot, so a copy of a database in
use is the state of one moment, and nothing the copy does can change the source.

The target is first migrated to this ctxdb's schema version. It must hold no rows, unless
``force``: then every row of every table is deleted first, in the same transaction as the
copy. The copy itself is one transaction on the target, filled table by table in batches
(PostgreSQL: COPY; the search index's triggers switched off meanwhile and the index built
once at the end), so a failure leaves the target as it was. Finally both sides are read
again and every table's row count and content checksum (the canonical records of bundles,
see ``records.py``) are compared; a difference raises ``CopyVerificationError`` with the
per-table report.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from typing import Any

from ctxdb.errors import (
    CopyVerificationError,
    SchemaOutdatedError,
    TargetNotEmptyError,
    ValidationError,
)
from ctxdb.progress import NoProgress, Progress
from ctxdb.service.operations.records import RowCodec, TableDigest
from ctxdb.service.operations.schema import location
from ctxdb.settings import Settings
from ctxdb.storage import Migrator, Storage, Tx, connect_storage
from ctxdb.storage.bulk import (
    TableSql,
    bulk_page_cache,
    count_rows,
    delete_all,
    finish_table,
    insert_rows,
    rebuild_derived,
    stream_rows,
    suspend_derived_triggers,
    update_rows,
)
from ctxdb.storage.tables import TABLES, Table

DEFAULT_BATCH = 5_000
MAX_BATCH = 1_000_000


def copy_database(
    source: Settings, target: Settings, *, force: bool = False,
    batch_size: int = DEFAULT_BATCH, dry_run: bool = False, progress: Progress | None = None,
) -> dict[str, Any]:
    """Copy every table of ``source`` into ``target`` and verify the copy; returns a report
    with one row per table (both sides' row counts and checksums)."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValidationError(f"batch size must be between 1 and {MAX_BATCH}, got {batch_size}")
    if location(source) == location(target):
        raise ValidationError(f"the source and the target are the same database: "
                              f"{location(source)}")
    progress = progress or NoProgress()
    with connect_storage(source, read_only=True) as reader:
        version = _source_version(reader, location(source))
        with connect_storage(target) as writer:
            report = {"source": location(source), "target": location(target),
                      "source_backend": reader.dialect.name,
                      "target_backend": writer.dialect.name, "schema_version": version,
                      "dry_run": dry_run, "force": force, "batch_size": batch_size}
            target_version = Migrator(writer).current_version()
            if target_version > version:
                raise SchemaOutdatedError(
                    f"the target database is at schema version {target_version}, newer than "
                    f"this ctxdb ({version}); copy with a newer ctxdb")
            if dry_run:
                return {**report, **_plan(reader, writer, target_version == version, force)}
            Migrator(writer).upgrade()
            copied = reader.snapshot(
                lambda tx: _copy_and_verify(tx, reader, writer, force, batch_size, progress))
            writer.health().analyze_after_load()  # the target's statistics: of empty tables
            return {**report, **copied}


def _source_version(reader: Storage, where: str) -> int:
    migrator = Migrator(reader)
    current, latest = migrator.current_version(), migrator.latest_version
    if current != latest:
        newer = "newer than this ctxdb" if current > latest else "older than this ctxdb"
        raise SchemaOutdatedError(
            f"the source database {where} is at schema version {current}, {newer} "
            f"({latest}); upgrade {'ctxdb' if current > latest else 'it'} first (the copy "
            "never changes its source)", current=current, required=latest)
    return latest


def _statements(storage: Storage) -> list[TableSql]:
    return [TableSql(table, table.column_names, storage.dialect) for table in TABLES]


def _plan(reader: Storage, writer: Storage, target_ready: bool,
          force: bool) -> dict[str, Any]:
    source_rows = reader.snapshot(
        lambda tx: {s.table.name: count_rows(tx, s) for s in _statements(reader)})
    target_rows = writer.read(
        lambda tx: {s.table.name: count_rows(tx, s) for s in _statements(writer)}
    ) if target_ready else {}
    filled = sorted(name for name, rows in target_rows.items() if rows)
    return {
        "target_migrated": target_ready, "target_not_empty": filled,
        "would_copy": not filled or force,
        "tables": [{"table": name, "source_rows": rows,
                    "target_rows": target_rows.get(name, 0)}
                   for name, rows in source_rows.items()],
        "rows": sum(source_rows.values()),
    }


def _copy_and_verify(source: Tx, reader: Storage, writer: Storage, force: bool,
                     batch_size: int, progress: Progress) -> dict[str, Any]:
    source_sql = _statements(reader)
    totals = {s.table.name: count_rows(source, s) for s in source_sql}
    rows = sum(totals.values())
    progress.start("copy", rows)
    started = time.perf_counter()
    writer.write(lambda tx: _fill(tx, source, source_sql, writer, force, batch_size, progress))
    copied = time.perf_counter()
    progress.start("verify", 2 * rows)
    tables = _verify(source, source_sql, writer, batch_size, progress)
    verified = time.perf_counter()
    result = {"rows": rows, "tables": tables,
              "copy_seconds": round(copied - started, 3),
              "verify_seconds": round(verified - copied, 3)}
    if not all(table["match"] for table in tables):
        differ = [t["table"] for t in tables if not t["match"]]
        raise CopyVerificationError(
            f"the copy differs from the source in {', '.join(differ)}; the target holds the "
            "copy as written (copy again with --force), the source is unchanged",
            tables=tables)
    return result


def _fill(target: Tx, source: Tx, source_sql: list[TableSql], writer: Storage, force: bool,
          batch_size: int, progress: Progress) -> None:
    target_sql = {s.table.name: s for s in _statements(writer)}
    filled = sorted(name for name, s in target_sql.items() if count_rows(target, s))
    if filled and not force:
        raise TargetNotEmptyError(
            f"the target database holds rows (in {', '.join(filled)}); copy only into an "
            "empty database, or pass --force to delete everything in it first",
            tables=filled)
    for name in reversed([s.table.name for s in source_sql]) if filled else ():
        delete_all(target, target_sql[name])  # children first
    suspended = suspend_derived_triggers(target, writer.dialect)
    with bulk_page_cache(target, writer.dialect):
        for sql in source_sql:
            _copy_table(target, source, sql, target_sql[sql.table.name], batch_size, progress)
        if suspended is not None:
            rebuild_derived(target, writer.dialect, suspended)


def _copy_table(target: Tx, source: Tx, read: TableSql, write: TableSql, batch_size: int,
                progress: Progress) -> None:
    """Rows go across as the source's driver returns them: both databases accept each
    other's JSON and timestamp text, so only booleans and deferred columns need a hand."""
    table = read.table
    later: list[list[Any]] = []
    rows = _for_target(table, stream_rows(source, read, None, batch_size), later)
    for batch in _batches(rows, batch_size):
        insert_rows(target, write, batch, bulk=True)
        progress.advance(len(batch))
    if later:
        update_rows(target, write, table.deferred, later)
    finish_table(target, write)


def _for_target(table: Table, rows: Iterator[tuple[Any, ...]],
                later: list[list[Any]]) -> Iterable[tuple[Any, ...] | list[Any]]:
    columns = table.column_names
    bools = [columns.index(c) for c in table.columns_of_kind("bool")]
    deferred = [columns.index(c) for c in table.deferred]
    if not bools and not deferred:
        return rows
    keys = [columns.index(k) for k in table.key]

    def adjusted() -> Iterator[list[Any]]:
        for row in rows:
            values = list(row)
            for index in bools:
                if values[index] is not None:
                    values[index] = bool(values[index])
            pointers = [values[i] for i in deferred]
            if any(p is not None for p in pointers):
                later.append(pointers + [values[i] for i in keys])
                for index in deferred:
                    values[index] = None
            yield values

    return adjusted()


def _batches(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _digest(tx: Tx, sql: TableSql, batch_size: int, progress: Progress) -> TableDigest:
    codec, digest = RowCodec(sql.table, sql.columns), TableDigest()
    for values in stream_rows(tx, sql, None, batch_size):
        digest.add(codec.checksum(codec.canonical(values)))
        if digest.rows % batch_size == 0:
            progress.advance(batch_size)
    progress.advance(digest.rows % batch_size)
    return digest


def _verify(source: Tx, source_sql: list[TableSql], writer: Storage, batch_size: int,
            progress: Progress) -> list[dict[str, Any]]:
    target_sql = _statements(writer)

    def target_digests(tx: Tx) -> list[TableDigest]:
        return [_digest(tx, s, batch_size, progress) for s in target_sql]

    copied = writer.snapshot(target_digests)
    report = []
    for sql, theirs in zip(source_sql, copied, strict=True):
        ours = _digest(source, sql, batch_size, progress)
        report.append({"table": sql.table.name, "source_rows": ours.rows,
                       "target_rows": theirs.rows, "source_sha256": ours.sha256,
                       "target_sha256": theirs.sha256,
                       "match": ours.rows == theirs.rows and ours.sha256 == theirs.sha256})
    return report
