"""Moving a whole database: ``db copy`` SQLite → PostgreSQL against a raw COPY, and bundle
export and import on SQLite, measured in the same run.

- **db copy**: a SQLite database of ``--items`` context items (one project) copied into an
  empty, migrated PostgreSQL database by ``ctxdb.service.operations.dbcopy.copy_database``
  (the whole command: read-only snapshot, copy in one transaction with COPY, then every table
  read back on both sides and compared by row count and content checksum), against a raw copy with
  the bare drivers: ``SELECT`` every table of the file with ``sqlite3`` and ``COPY`` it into
  the same PostgreSQL tables with psycopg, identity counters set, no verification. The copy
  phase alone (ctxdb's report times it apart from the verification) is a row of its own.
  Both sides write into the same schema, so both pay for the search index's triggers.
- **export / import** (SQLite): ``db.bundles.export`` of that database to a bundle file, and
  ``db.bundles.import_bundle`` of it into an empty database (verified first, one
  transaction), against a raw JSON Lines dump (rows as JSON objects, no canonical form, no
  checksums) and a raw load of it (``executemany``, no verification). Their goal is absolute:
  at least 20,000 items per second.

The target database is emptied before every repetition, outside the timed part.

Usage:
    python bench/data_ops.py [--items N] [--repetitions N] [--backend sqlite|all]
                             [--pg-url URL] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

from ctxdb.service import Ctxdb
from ctxdb.service.operations.dbcopy import copy_database
from ctxdb.settings import Settings
from ctxdb.storage.tables import TABLES
from data import Mix, bench_settings, seeded_project
from harness import Result, format_table, measure_sides
from run import DEFAULT_PG_URL, machine, scratch_database

COPY_TARGET = 0.5  # ctxdb's db copy at least half the raw COPY's items per second
ITEMS_PER_SECOND = 20_000.0  # export and import, absolute


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000,
                        help="context items in the source database (default 1,000,000)")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "all"), default="all",
                        help="sqlite: export and import only (no PostgreSQL needed)")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="server to use; the bench creates and drops its own database")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def source_database(workdir: Path, items: int) -> Settings:
    settings = bench_settings(str(workdir / "source.db"), workdir)
    mix = Mix(critical=items // 100, high=items // 5, medium=items * 2 // 5, low=0)
    mix = Mix(mix.critical, mix.high, mix.medium, items - mix.critical - mix.high - mix.medium)
    with Ctxdb.open(settings) as db:
        seeded_project(db, "bench", mix)
    return settings


# --- db copy -----------------------------------------------------------------------------------


def empty_postgres(url: str) -> None:
    import psycopg

    names = ", ".join(t.name for t in TABLES)  # CASCADE empties the search index too
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


# The search index's source tables, and the index built in one statement per kind: what a
# careful programmer does by hand for a bulk load (triggers off, the index built at the end).
SEARCH_SOURCES = {"context_items": "context", "memories": "memory", "session_events": "event"}
BUILD_SEARCH_INDEX = (
    "INSERT INTO search_documents (project_id, kind, item_id, content_type, priority, body, "
    "occurred_at) SELECT project_id, 'context', item_id, content_type, priority, body, "
    "occurred_at FROM search_context_source",
    "INSERT INTO search_documents (project_id, kind, memory_id, content_type, namespace, body, "
    "expires_at, occurred_at) SELECT project_id, 'memory', memory_id, content_type, namespace, "
    "body, expires_at, occurred_at FROM search_memory_source",
    "INSERT INTO search_documents (project_id, kind, event_id, content_type, body, occurred_at) "
    "SELECT project_id, 'event', event_id, content_type, body, occurred_at "
    "FROM search_event_source",
)


def raw_copy(source: Path, url: str, index_once: bool = False) -> None:
    """Every table of the SQLite file COPYed into PostgreSQL with the bare drivers; with
    ``index_once`` the search triggers are off during the load and the index is built at the
    end (the same work as ctxdb's copy), else the triggers index row by row."""
    import psycopg

    lite = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        with psycopg.connect(url) as conn, conn.cursor() as cursor:
            if index_once:
                for name in SEARCH_SOURCES:
                    cursor.execute(f"ALTER TABLE {name} DISABLE TRIGGER USER")
            for table in TABLES:
                columns = ", ".join(table.column_names)
                rows = lite.execute(f"SELECT {columns} FROM {table.name} "
                                    f"ORDER BY {', '.join(table.key)}")
                with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                if table.identity:
                    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table.name}', "
                                   f"'{table.identity}'), coalesce(max({table.identity}), 0) "
                                   f"+ 1, false) FROM {table.name}")
            if index_once:
                for statement in BUILD_SEARCH_INDEX:
                    cursor.execute(statement)
                for name in SEARCH_SOURCES:
                    cursor.execute(f"ALTER TABLE {name} ENABLE TRIGGER USER")
            conn.commit()
    finally:
        lite.close()


def measure_copy(source: Settings, target: Settings, items: int,
                 repetitions: int) -> list[Result]:
    phases: list[float] = []

    def ctxdb_side() -> tuple[float, int]:
        empty_postgres(target.url)
        started = time.perf_counter()
        report = copy_database(source, target, batch_size=5_000)
        elapsed = time.perf_counter() - started
        phases.append(report["copy_seconds"] / items)
        return elapsed, items

    def raw_side(index_once: bool) -> Any:
        def side() -> tuple[float, int]:
            empty_postgres(target.url)
            started = time.perf_counter()
            raw_copy(source.sqlite_path, target.url, index_once)
            return time.perf_counter() - started, items
        return side

    ctxdb_s, raw_s, bulk_s = measure_sides([ctxdb_side, raw_side(False), raw_side(True)],
                                           repetitions, warmups=0)
    raw_rate, bulk_rate = 1 / statistics.median(raw_s), 1 / statistics.median(bulk_s)
    whole = Result("db copy SQLite → PostgreSQL, whole command", "sqlite→postgres", "ops/s",
                   1 / statistics.median(ctxdb_s), raw_rate, COPY_TARGET, len(ctxdb_s),
                   "items/s; ctxdb includes reading both sides back to verify every table; "
                   "raw: COPY, the search index kept by its triggers row by row",
                   {"ctxdb_seconds_per_op": ctxdb_s, "raw_seconds_per_op": raw_s})
    copy_only = Result("db copy SQLite → PostgreSQL, copy phase", "sqlite→postgres", "ops/s",
                       1 / statistics.median(phases), raw_rate, COPY_TARGET, len(phases),
                       "items/s; the same runs, without the verification",
                       {"ctxdb_seconds_per_op": phases, "raw_seconds_per_op": raw_s})
    same_work = Result("db copy, whole command, vs COPY indexing once", "sqlite→postgres",
                       "ops/s", 1 / statistics.median(ctxdb_s), bulk_rate, COPY_TARGET,
                       len(ctxdb_s), "items/s; raw: COPY with the search triggers off and the "
                       "index built by one INSERT … SELECT per kind at the end, as ctxdb does",
                       {"ctxdb_seconds_per_op": ctxdb_s, "raw_seconds_per_op": bulk_s})
    copy_same_work = Result("db copy, copy phase, vs COPY indexing once", "sqlite→postgres",
                            "ops/s", 1 / statistics.median(phases), bulk_rate, COPY_TARGET,
                            len(phases), "items/s; the same runs, without the verification",
                            {"ctxdb_seconds_per_op": phases, "raw_seconds_per_op": bulk_s})
    return [whole, copy_only, same_work, copy_same_work]


# --- export and import (SQLite) -------------------------------------------------------------


def raw_export(source: Path, path: Path) -> None:
    """Every row of every table as a JSON object per line, with the bare driver."""
    lite = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        with path.open("w", encoding="utf-8") as out:
            for table in TABLES:
                columns = table.column_names
                for row in lite.execute(f"SELECT {', '.join(columns)} FROM {table.name}"):
                    record = {"table": table.name, "row": dict(zip(columns, row, strict=True))}
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        lite.close()


def raw_import(path: Path, target: Path) -> None:
    """The raw dump loaded with ``executemany``, one transaction, no checks."""
    lite = sqlite3.connect(target, isolation_level=None)
    try:
        lite.execute("PRAGMA foreign_keys = ON")
        lite.execute("BEGIN IMMEDIATE")
        by_table = {t.name: t.column_names for t in TABLES}
        with path.open(encoding="utf-8") as lines:
            for name, rows in _grouped(json.loads(line) for line in lines):
                columns = by_table[name]
                marks = ", ".join("?" for _ in columns)
                lite.executemany(f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})",
                                 [[r[c] for c in columns] for r in rows])
        lite.execute("COMMIT")
    finally:
        lite.close()


def _grouped(records: Any) -> Any:
    name, batch = None, []
    for record in records:
        if record["table"] != name or len(batch) >= 5_000:
            if batch:
                yield name, batch
            name, batch = record["table"], []
        batch.append(record["row"])
    if batch:
        yield name, batch


def fresh_sqlite(workdir: Path, name: str) -> Settings:
    """An empty, migrated database file (made outside the timed part)."""
    path = workdir / name
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    settings = bench_settings(str(path), workdir)
    with Ctxdb.open(settings):
        pass
    return settings


def measure_bundles(source: Settings, workdir: Path, items: int,
                    repetitions: int) -> list[Result]:
    bundle, dump = workdir / "bench.jsonl", workdir / "raw.jsonl"

    def export_side() -> tuple[float, int]:
        with Ctxdb.open(source) as db:
            started = time.perf_counter()
            db.bundles.export(bundle, overwrite=True)
            return time.perf_counter() - started, items

    def raw_export_side() -> tuple[float, int]:
        started = time.perf_counter()
        raw_export(source.sqlite_path, dump)
        return time.perf_counter() - started, items

    exports = measure_sides([export_side, raw_export_side], repetitions, warmups=0)

    def import_side() -> tuple[float, int]:
        target = fresh_sqlite(workdir, "imported.db")
        with Ctxdb.open(target) as db:
            started = time.perf_counter()
            db.bundles.import_bundle(bundle)
            return time.perf_counter() - started, items

    def raw_import_side() -> tuple[float, int]:
        target = fresh_sqlite(workdir, "raw-imported.db")
        started = time.perf_counter()
        raw_import(dump, target.sqlite_path)
        return time.perf_counter() - started, items

    imports = measure_sides([import_side, raw_import_side], repetitions, warmups=0)
    return [_absolute("export to a bundle", exports,
                      "items/s; raw: rows dumped as JSON lines, no canonical form or checksums"),
            _absolute("import a bundle", imports,
                      "items/s; ctxdb verifies the whole file first; raw: executemany of the "
                      "raw dump, no checks")]


def _absolute(operation: str, samples: list[list[float]], note: str) -> Result:
    ctxdb_s, raw_s = samples
    return Result(operation, "sqlite", "ops/s", 1 / statistics.median(ctxdb_s),
                  1 / statistics.median(raw_s), ITEMS_PER_SECOND, len(ctxdb_s), note,
                  {"ctxdb_seconds_per_op": ctxdb_s, "raw_seconds_per_op": raw_s},
                  absolute=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="ctxdb-bench-data-") as scratch:
        workdir = Path(scratch)
        log(f"seeding {args.items:,} items ...")
        source = source_database(workdir, args.items)
        log("export and import ...")
        results += measure_bundles(source, workdir, args.items, args.repetitions)
        if args.backend == "all":
            with scratch_database(args.pg_url) as url:
                target = bench_settings(url, workdir)
                with Ctxdb.open(target):
                    pass  # migrated once, outside the measurements
                log("db copy ...")
                results += measure_copy(source, target, args.items, args.repetitions)
    info = machine()
    print(f"whole-database operations, {args.items:,} context items, same run; "
          f"{info['date']}, Python {info['python']}, {info['cpus']} CPUs")
    print("ratio = ctxdb / raw (items per second); targets: db copy a ratio, export and "
          "import an absolute rate")
    print(format_table(results))
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": info, "items": args.items,
             "results": [r.to_dict() for r in results]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
