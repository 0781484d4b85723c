"""ctxdb against the raw database drivers, measured in the same run with the same settings.

Prints one row per measurement: the ctxdb figure, the raw-driver figure, their ratio, the
target ratio and PASS/FAIL. See docs/benchmarks.md for what each measurement does.

Usage:
    python bench/run.py [--quick] [--backend sqlite|postgres|all] [--pg-url URL]
                        [--json FILE] [--check] [--only store,writers,memories,...]

``--check`` makes the exit status 1 when a target is missed (the default only reports:
timings on a shared machine are evidence, not a test).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

import cases
from ctxdb.service import Ctxdb
from data import bench_settings
from harness import Result, format_table
from raw import RawPostgres, RawSQLite

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MEASUREMENTS = ("store", "loads", "pack", "writers", "memories", "search")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="server to use; the bench creates and drops its own database")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 when a target is missed")
    parser.add_argument("--only", type=lambda text: text.split(","), default=list(MEASUREMENTS),
                        metavar="NAME[,NAME]",
                        help=f"run only these measurements, of {', '.join(MEASUREMENTS)}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only) - set(MEASUREMENTS))
    if unknown:
        parser.error(f"unknown measurement(s) {', '.join(unknown)}; "
                     f"choose from {', '.join(MEASUREMENTS)}")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(name: str, db: Ctxdb, raw: Any, backend: str, sizes: cases.Sizes,
            workdir: Path) -> list[Result]:
    """The results of the measurement ``name`` (one of MEASUREMENTS) on ``backend``."""
    if name == "store":
        return cases.single_store(db, raw, backend, sizes)
    if name == "loads":
        return cases.loads(db, raw, backend, sizes)
    if name == "pack":
        return [cases.pack(db, raw, backend, sizes)]
    if name == "memories":
        return cases.memories(db, raw, backend, sizes)
    if name == "search":
        return cases.search(db, raw, backend, sizes)
    return [cases.concurrent_writers(db, backend, workdir, sizes)]


def run_sqlite(sizes: cases.Sizes, workdir: Path, only: list[str]) -> list[Result]:
    results: list[Result] = []
    # One file per measurement, so that a large read fixture does not slow the writes.
    for name in (name for name in MEASUREMENTS if name in only):
        settings = bench_settings(str(workdir / f"{name}.db"), workdir)
        with Ctxdb.open(settings) as db:
            raw = RawSQLite(settings.sqlite_path, settings.busy_timeout_ms)
            try:
                log(f"sqlite: {name} ...")
                results.extend(measure(name, db, raw, "sqlite", sizes, workdir))
            finally:
                raw.close()
    return results


@contextmanager
def scratch_database(admin_url: str, prefix: str = "ctxdb_bench",
                     template: str | None = None) -> Iterator[str]:
    """A fresh PostgreSQL database on the server of ``admin_url`` (a copy of the database
    ``template``, which nobody may be connected to, if given), dropped afterwards."""
    import psycopg

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"{copy}')
        try:
            yield urlunsplit(urlsplit(admin_url)._replace(path="/" + name))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_postgres(sizes: cases.Sizes, admin_url: str, workdir: Path,
                 only: list[str]) -> list[Result]:
    results: list[Result] = []
    with scratch_database(admin_url) as url:
        settings = bench_settings(url, workdir)
        with Ctxdb.open(settings) as db:
            raw = RawPostgres(url)
            try:
                for name in (name for name in MEASUREMENTS if name in only):
                    log(f"postgres: {name} ...")
                    results.extend(measure(name, db, raw, "postgres", sizes, workdir))
            finally:
                raw.close()
    return results


def machine() -> dict[str, Any]:
    return {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "platform": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = cases.QUICK if args.quick else cases.FULL
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="ctxdb-bench-") as scratch:
        workdir = Path(scratch)
        if args.backend in ("sqlite", "all"):
            results.extend(run_sqlite(sizes, workdir, args.only))
        if args.backend in ("postgres", "all"):
            results.extend(run_postgres(sizes, args.pg_url, workdir, args.only))
    info = machine()
    print(f"ctxdb vs raw driver, same run, {'quick' if args.quick else 'full'} sizes; "
          f"{info['date']}, Python {info['python']}, {info['cpus']} CPUs")
    print("ratio = ctxdb / raw (ops/s rows: higher is better; ms rows: lower is better); "
          "figures are medians over the repetitions")
    print(format_table(results))
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": info, "quick": args.quick, "results": [r.to_dict() for r in results]},
            indent=2) + "\n")
    missed = [r for r in results if not r.passed]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
