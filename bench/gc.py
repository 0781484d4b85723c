"""``ctxdb gc`` removing ended instances from a large project: how long it holds the write lock.

A project of ``--items`` context items (default 200,000) written by ``--instances`` ended
instances (default 300, ended long ago) and 20 live ones, every item naming its author
(``created_by``), so that removing an ended instance sets about 600 items' author to NULL. The
same database (a copy of the file, or a PostgreSQL database made from the same template) is
then collected three ways:

- **ctxdb gc**: ``db.retention.collect()`` with the default policy (only the instances have
  work: the items are new). Every write transaction gc runs is timed from its start (on
  SQLite, ``BEGIN IMMEDIATE`` taking the write lock) to its commit, which is how long other
  writers wait at most; a concurrent writer process stores an item per transaction all along
  and reports its worst store.
- **one transaction**: the ended instances deleted by one ``DELETE`` with the bare driver,
  the foreign keys doing the rest (``ON DELETE SET NULL`` on every row that names one), as
  gc did before its batches: with the indexes of schema version 12 ...
- ... and at schema version 11, before those indexes (each delete scans the child tables).

The figure the target is about is the longest write transaction of ctxdb gc: at most 1 s.

Usage:
    python bench/gc.py [--items N] [--instances N] [--backend sqlite|postgres|all]
                       [--pg-url URL] [--batch-size N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

from ctxdb.service import Ctxdb
from ctxdb.service.operations.retention import BATCH
from ctxdb.settings import Settings
from data import ITEM_COLUMNS, Mix, bench_settings, generated_rows
from run import DEFAULT_PG_URL, machine, scratch_database

LONGEST_TARGET = 1.0  # seconds: the longest write transaction of gc
LIVE_INSTANCES = 20
ENDED_AT = "2020-01-01T00:00:00.000Z"  # long before any retention age
DELETE_ENDED = ("DELETE FROM instances WHERE status IN ('completed', 'crashed') "
                "AND ended_at < '2021-01-01T00:00:00.000Z'")


@dataclass
class Outcome:
    backend: str
    variant: str
    transactions: int
    longest_s: float
    total_s: float
    removed: int
    writer_worst_s: float | None = None
    writer_stores: int | None = None
    per_phase: dict[str, tuple[int, float]] | None = None  # transactions, the longest


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--instances", type=int, default=300, help="ended instances")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="server to use; the bench creates and drops its own databases")
    parser.add_argument("--batch-size", type=int, default=BATCH,
                        help=f"gc's batch size (default ctxdb's, {BATCH})")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- the data ----------------------------------------------------------------------------------


def build(settings: Settings, items: int, ended: int) -> str:
    """The project, its instances (``ended`` of them ended long ago) and ``items`` items
    written by them in turn; returns the project id."""
    with Ctxdb.open(settings.replace(max_instances_per_project=LIVE_INSTANCES + 1)) as db:
        project_id: str = db.projects.create("gc bench")["project_id"]
        authors = []
        for number in range(ended + LIVE_INSTANCES):
            instance_id = str(db.instances.launch(project_id, client="bench")["instance_id"])
            if number < ended:
                db.instances.end(instance_id)
            authors.append(instance_id)
    mix = Mix(items // 100, items // 5, items * 2 // 5, 0)
    mix = Mix(mix.critical, mix.high, mix.medium, items - mix.critical - mix.high - mix.medium)
    created = now_text()  # new items: gc's only work is the instances
    rows = ((*row[:8], authors[number % len(authors)], *row[9:10], created)
            for number, row in enumerate(generated_rows(project_id, mix, seed=11)))
    statements = [f"UPDATE instances SET ended_at = '{ENDED_AT}' WHERE status = 'completed'",
                  f"UPDATE projects SET next_sequence = {items}"]
    if settings.is_postgres:
        import psycopg

        with psycopg.connect(settings.url) as conn:
            with conn.cursor() as cursor, cursor.copy(
                    f"COPY context_items ({', '.join(ITEM_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            for sql in statements:
                conn.execute(sql.encode())
            # Where stores draw from a sequence (schema 29 on), it goes past the items too;
            # a base that predates it has none (A/B runs).
            conn.execute(f"SELECT setval(to_regclass('context_item_numbers'), {items}) "
                         "WHERE to_regclass('context_item_numbers') IS NOT NULL".encode())
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE")
    else:
        conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(f"INSERT INTO context_items ({', '.join(ITEM_COLUMNS)}) "
                             f"VALUES ({', '.join('?' for _ in ITEM_COLUMNS)})", rows)
            for sql in statements:
                conn.execute(sql)
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    return project_id


# --- the concurrent writer ---------------------------------------------------------------------


def _writer(url: str, config_dir: str, project_id: str, ready: Any, stop: Any,
            results: Any) -> None:
    """Store an item per transaction until told to stop; report the slowest store."""
    with Ctxdb.open(bench_settings(url, Path(config_dir))) as db:
        worst, stores = 0.0, 0
        while not stop.is_set():
            started = time.perf_counter()
            db.context.store(project_id, {"writer": stores}, priority="LOW")
            worst = max(worst, time.perf_counter() - started)
            stores += 1
            if stores == 3:
                ready.set()
        results.put((worst, stores))


@contextmanager
def concurrent_writer(settings: Settings, project_id: str,
                      config_dir: Path) -> Iterator[Callable[[], Any]]:
    context = multiprocessing.get_context("spawn")  # no connection inherited
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    process = context.Process(target=_writer, args=(
        settings.url, str(config_dir), project_id, ready, stop, results))
    process.start()
    got: list[tuple[float, int]] = []
    try:
        if not ready.wait(60):
            raise RuntimeError("the concurrent writer did not start")
        yield lambda: got[0]
    finally:
        stop.set()
        got.append(results.get(timeout=120))
        process.join(30)


# --- the three ways ----------------------------------------------------------------------------


class Phases:
    """gc's progress: which phase (kind) runs, so that each transaction is put to one."""

    def __init__(self) -> None:
        self.phase = ""

    def start(self, phase: str, total: int | None) -> None:
        self.phase = phase

    def advance(self, amount: int) -> None:
        pass


def timed_writes(db: Ctxdb, phases: Phases) -> dict[str, list[float]]:
    """Time every write transaction of ``db`` from now on, per phase of gc: from the moment
    its work starts (the transaction begun: on SQLite ``BEGIN IMMEDIATE`` holds the write
    lock) to the return of its commit. The wait for the lock before is not counted: it is
    not holding it (a retried attempt counts from its own start)."""
    durations: dict[str, list[float]] = {}
    write = db.storage.write

    def timed(unit: Callable[..., Any]) -> Any:
        began = [0.0]

        def work(tx: Any) -> Any:
            began[0] = time.perf_counter()
            return unit(tx)

        try:
            return write(work)
        finally:
            durations.setdefault(phases.phase, []).append(time.perf_counter() - began[0])

    db.storage.write = timed  # type: ignore[method-assign]
    return durations


def run_gc(backend: str, settings: Settings, project_id: str, batch: int,
           workdir: Path) -> Outcome:
    with Ctxdb.open(settings) as db, concurrent_writer(settings, project_id,
                                                       workdir) as writer:
        phases = Phases()
        durations = timed_writes(db, phases)
        started = time.perf_counter()
        report = db.retention.collect(batch_size=batch, progress=phases)
        total = time.perf_counter() - started
    worst, stores = writer()
    every = [d for phase in durations.values() for d in phase]
    return Outcome(backend, f"ctxdb gc (batches of {batch})", len(every), max(every),
                   total, report["kinds"]["instances"]["done"], worst, stores,
                   {phase: (len(d), round(max(d), 4)) for phase, d in durations.items()})


def run_one_transaction(backend: str, settings: Settings, schema: int) -> Outcome:
    with Ctxdb.open(settings) as db:
        if schema < db.migrator().latest_version:
            db.migrator().downgrade(schema)
    started = time.perf_counter()
    if settings.is_postgres:
        import psycopg

        with psycopg.connect(settings.url) as conn:
            removed = conn.execute(DELETE_ENDED.encode()).rowcount
            conn.commit()
    else:
        conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("BEGIN IMMEDIATE")
            removed = conn.execute(DELETE_ENDED).rowcount
            conn.execute("COMMIT")
        finally:
            conn.close()
    took = time.perf_counter() - started
    return Outcome(backend, f"one DELETE transaction, schema {schema}", 1, took, took, removed)


VARIANTS = ("gc", 12, 11)  # ctxdb gc; one transaction at schema 12, then at schema 11


def run_sqlite(args: argparse.Namespace, workdir: Path) -> list[Outcome]:
    source = bench_settings(str(workdir / "source.db"), workdir)
    log(f"sqlite: building {args.items:,} items, {args.instances} ended instances ...")
    project_id = build(source, args.items, args.instances)
    outcomes = []
    for variant in VARIANTS:
        copy = workdir / f"copy_{variant}.db"
        shutil.copyfile(source.sqlite_path, copy)
        settings = source.replace(url=str(copy))
        log(f"sqlite: {variant} ...")
        outcomes.append(run_gc("sqlite", settings, project_id, args.batch_size,
                               workdir)
                        if variant == "gc" else
                        run_one_transaction("sqlite", settings, int(variant)))
        copy.unlink()
    return outcomes


@contextmanager
def from_template(admin_url: str, template: str) -> Iterator[str]:
    """A new database made from ``template`` (the built data), dropped afterwards."""
    import psycopg

    name = f"{template}_copy"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'.encode())
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path="/" + name))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def run_postgres(args: argparse.Namespace, workdir: Path) -> list[Outcome]:
    outcomes = []
    with scratch_database(args.pg_url) as source_url:
        source = bench_settings(source_url, workdir)
        log(f"postgres: building {args.items:,} items, {args.instances} ended instances ...")
        project_id = build(source, args.items, args.instances)
        template = urlsplit(source_url).path.lstrip("/")
        for variant in VARIANTS:
            with from_template(args.pg_url, template) as url:
                settings = source.replace(url=url)
                log(f"postgres: {variant} ...")
                outcomes.append(run_gc("postgres", settings, project_id,
                                       args.batch_size, workdir)
                                if variant == "gc" else
                                run_one_transaction("postgres", settings, int(variant)))
    return outcomes


def format_outcomes(outcomes: list[Outcome]) -> str:
    header = ("variant", "backend", "transactions", "longest", "total", "removed",
              "writer's worst store")
    rows = [header] + [
        (o.variant, o.backend, f"{o.transactions:,}", f"{o.longest_s:.3f} s",
         f"{o.total_s:.2f} s", f"{o.removed:,}",
         "" if o.writer_worst_s is None
         else f"{o.writer_worst_s:.3f} s ({o.writer_stores:,} stores)")
        for o in outcomes]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                        strict=True)).rstrip()
                     for row in rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="ctxdb-bench-gc-") as scratch:
        workdir = Path(scratch)
        if args.backend in ("sqlite", "all"):
            outcomes.extend(run_sqlite(args, workdir))
        if args.backend in ("postgres", "all"):
            outcomes.extend(run_postgres(args, workdir))
    info = machine()
    print(f"ctxdb gc: {args.instances} ended instances over {args.items:,} items; "
          f"{info['date']}, Python {info['python']}, {info['cpus']} CPUs")
    print(format_outcomes(outcomes))
    for outcome in outcomes:
        for phase, (count, longest) in (outcome.per_phase or {}).items():
            print(f"  {outcome.backend} {phase}: {count:,} transactions, the longest "
                  f"{longest:.3f} s")
    for outcome in outcomes:
        if outcome.variant.startswith("ctxdb gc"):
            verdict = "PASS" if outcome.longest_s <= LONGEST_TARGET else "FAIL"
            print(f"{outcome.backend}: longest write transaction of gc "
                  f"{outcome.longest_s:.3f} s, target <= {LONGEST_TARGET:.0f} s: {verdict}")
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": info, "items": args.items, "instances": args.instances,
             "batch_size": args.batch_size, "target_longest_s": LONGEST_TARGET,
             "results": [asdict(o) for o in outcomes]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
