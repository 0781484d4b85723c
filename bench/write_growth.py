"""Whether a store gets slower as the database grows, on one long-lived connection.

One process stores N items one after another into a fresh database (one pooled connection on
PostgreSQL, as a server or a worker holds it) and prints the mean latency of each tenth of
the run, then the ratio of the last window's mean to the first window's (goal <= 1.15: a
process that stores its 100,000th item as fast as its first). Issue 14 found PostgreSQL
going from 1.9 ms to 6.2 ms within 14,000 stores: a plan cached for the life of the
connection, made when the tables were empty, walked every live item on each store.

Usage:
    python bench/write_growth.py [--items N] [--window N] [--backend sqlite|postgres|all]
                                 [--pg-url URL] [--json FILE] [--check]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

from cases import _contents
from ctxdb.service import Ctxdb
from data import bench_settings
from run import DEFAULT_PG_URL, scratch_database

GOAL = 1.15
DISTINCT_CONTENTS = 1_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000, help="stores in all")
    parser.add_argument("--window", type=int,
                        help="stores in the first and last windows (default: a tenth)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="server to use; the bench creates and drops its own database")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 when a ratio is above the goal")
    args = parser.parse_args(argv)
    args.window = args.window or max(args.items // 10, 1)
    if args.items < 2 or not 1 <= args.window <= args.items // 2:
        parser.error("--items must be at least 2 and --window at most half of it")
    return args


@contextmanager
def database(backend: str, pg_url: str, scratch: Path) -> Iterator[Ctxdb]:
    """A fresh ctxdb database of ``backend`` with one connection, closed (and dropped)
    afterwards."""
    if backend == "sqlite":
        with Ctxdb.open(bench_settings(str(scratch / "growth.db"), scratch)) as db:
            yield db
        return
    with scratch_database(pg_url) as url:
        settings = bench_settings(url, scratch).replace(pool_min_size=1, pool_max_size=1)
        with Ctxdb.open(settings) as db:
            yield db


def store_latencies(db: Ctxdb, items: int) -> list[float]:
    """Seconds each of ``items`` stores took, in order, into one new project."""
    project = db.projects.create("write growth")["project_id"]
    contents = _contents(DISTINCT_CONTENTS, seed=11)
    latencies = []
    for number in range(items):
        started = time.perf_counter()
        db.context.store(project, contents[number % DISTINCT_CONTENTS], priority="HIGH")
        latencies.append(time.perf_counter() - started)
    return latencies


def summary(backend: str, latencies: list[float], window: int) -> dict[str, Any]:
    tenth = max(len(latencies) // 10, 1)
    first, last = latencies[:window], latencies[-window:]
    ratio = statistics.fmean(last) / statistics.fmean(first)
    return {
        "backend": backend, "items": len(latencies), "window": window,
        "first_mean_ms": statistics.fmean(first) * 1e3,
        "last_mean_ms": statistics.fmean(last) * 1e3,
        "first_p50_ms": statistics.median(first) * 1e3,
        "last_p50_ms": statistics.median(last) * 1e3,
        "ratio": ratio, "p50_ratio": statistics.median(last) / statistics.median(first),
        "goal": GOAL, "passed": ratio <= GOAL,
        "tenths_mean_ms": [statistics.fmean(latencies[start:start + tenth]) * 1e3
                           for start in range(0, len(latencies) - tenth + 1, tenth)],
    }


def report(result: dict[str, Any]) -> str:
    tenths = " ".join(f"{mean:.2f}" for mean in result["tenths_mean_ms"])
    window = f"{result['window']:,}"
    return (f"{result['backend']:8s} {result['items']:,} stores; mean ms per tenth: {tenths}\n"
            f"{'':8s} first {window}: mean {result['first_mean_ms']:.3f} ms "
            f"(p50 {result['first_p50_ms']:.3f}); last {window}: mean "
            f"{result['last_mean_ms']:.3f} ms (p50 {result['last_p50_ms']:.3f}); "
            f"ratio {result['ratio']:.2f}x (p50 {result['p50_ratio']:.2f}x), goal <= "
            f"{GOAL:.2f}x: {'PASS' if result['passed'] else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ("sqlite", "postgres") if args.backend == "all" else (args.backend,)
    results = []
    with tempfile.TemporaryDirectory(prefix="ctxdb-growth-") as scratch:
        for backend in backends:
            print(f"{backend}: storing {args.items:,} items ...", file=sys.stderr, flush=True)
            with database(backend, args.pg_url, Path(scratch)) as db:
                latencies = store_latencies(db, args.items)
            results.append(summary(backend, latencies, args.window))
            print(report(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"results": results}, indent=2) + "\n")
    return 1 if args.check and not all(r["passed"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
