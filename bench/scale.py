"""ctxdb as the database grows to 1,000,000 context items over 100 projects.

One database grows 10,000 → 100,000 → 1,000,000 items (``--sizes``). Its 100 projects are
one measured project of a fixed ``--project-items`` items (5,000 by default: 50 CRITICAL, a
fifth HIGH, the rest MEDIUM and LOW, about 60 tokens each) and 99 others that hold the rest,
evenly. Each growth step bulk-loads the missing items round-robin over the projects
(``data.bulk_load_items``: one transaction, the search index built once, then the planner
statistics refreshed as ctxdb does after its own bulk loads), checks through ctxdb that the
loaded items are what ctxdb would have written (counts, CRITICAL items, the search index
agreeing with the items, a loaded item found by a search, the next store's sequence number),
and keeps a copy of the database at that size (SQLite's backup API; PostgreSQL: a database made
from it as a template). Then, on the copies and the grown database, in rounds that take the
sizes in turn so that load from elsewhere on the shared machine falls on every size alike:

- **store**: single durable ``context.store`` calls (into one of the other projects);
- **pack**: ``context.pack`` of the measured project with a 50,000-token budget;
- **load CRITICAL**: ``context.page(project, "CRITICAL")``, its 50 CRITICAL items;
- **search**: ``search.search`` in the measured project, a fixed mix of 200 queries of rare,
  uncommon and common words, two words, phrases, prefixes and ``or``, all kinds, limit 20.

Every call is timed on its own (the whole library call, in process); p50 and p99 per
operation and size, and the search's p50 per class of query. The measured project
does not change size, so what changes between the rows is the database around it. Goals
(issue 14): pack and load CRITICAL at the largest size within 1.5x of their time at the
smallest; search p50 at 1,000,000 items at most 20 ms on SQLite. Timings on a shared machine
are evidence, not a test: the figures are printed as measured, misses included.

Usage:
    python bench/scale.py [--sizes 10000,100000,1000000] [--backend sqlite|postgres|all]
                          [--pg-url URL] [--searches N] [--stores N] [--calls N]
                          [--project-items N] [--keep DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from data import Prose, bench_settings, bulk_load_items
from run import DEFAULT_PG_URL, machine, scratch_database
from scale_data import Layout, growth_rows, search_mix

PACK_BUDGET = 50_000
GROWTH_GOAL = 1.5  # pack and load CRITICAL: largest size / smallest size
SEARCH_P50_GOAL_MS = 20.0  # SQLite, at 1,000,000 items


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="total items of the database at each step, ascending")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="server to use; the bench creates and drops its own database")
    parser.add_argument("--project-items", type=int, default=5_000,
                        help="items of the measured project (fixed while the database grows)")
    parser.add_argument("--searches", type=int, default=200, help="search queries per size")
    parser.add_argument("--stores", type=int, default=200, help="stores per size")
    parser.add_argument("--calls", type=int, default=60, help="packs and CRITICAL loads per size")
    parser.add_argument("--keep", type=Path, help="keep the SQLite file in this folder")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    args.size_list = sorted(int(size.replace("_", "")) for size in args.sizes.split(","))
    if args.size_list[0] < args.project_items + 99:
        parser.error(f"the smallest size must hold the measured project's "
                     f"{args.project_items} items and one item of each other project")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Timings:
    """Seconds of every call of one operation at one size."""

    samples: list[float] = field(default_factory=list)

    def time(self, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        answer = call()
        self.samples.append(time.perf_counter() - started)
        return answer

    def percentile(self, share: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] * 1000


OPERATIONS = ("store", "pack", "load CRITICAL", "search")
ROUNDS = 5


def round_steps(layout: Layout, queries: list[tuple[str, str]], args: argparse.Namespace,
                number: int) -> list[Callable[[Ctxdb, dict[str, Timings]], None]]:
    """One round's share of each operation, as functions of a database and its timings."""
    project, target = layout.measured_id, layout.store_target_id

    def stores(db: Ctxdb, timings: dict[str, Timings]) -> None:
        for index in range(number, args.stores, ROUNDS):
            timings["store"].time(lambda i=index: db.context.store(
                target, {"note": f"stored while measuring, {i}"}, priority="LOW"))

    def packs(db: Ctxdb, timings: dict[str, Timings]) -> None:
        for _ in range(args.calls // ROUNDS):
            timings["pack"].time(lambda: db.context.pack(project, PACK_BUDGET))

    def critical(db: Ctxdb, timings: dict[str, Timings]) -> None:
        for _ in range(args.calls // ROUNDS):
            timings["load CRITICAL"].time(
                lambda: db.context.page(project, "CRITICAL", limit=1000))

    def searches(db: Ctxdb, timings: dict[str, Timings]) -> None:
        for kind, query in queries[number::ROUNDS]:
            timings["search"].time(lambda q=query: db.search.search(project, q))
            timings.setdefault(f"search: {kind}", Timings()).samples.append(
                timings["search"].samples[-1])

    return [stores, packs, critical, searches]


def measure(databases: dict[int, Ctxdb], layout: Layout, queries: list[tuple[str, str]],
            args: argparse.Namespace) -> dict[int, dict[str, Timings]]:
    """Every operation on the database of every size, in rounds: each round runs its share
    of one operation on every size in turn (a different size first each round), then the
    next operation, so that a burst of load elsewhere on the shared machine falls on all
    sizes alike and their ratios hold even when the absolute figures swing."""
    timings = {size: {name: Timings() for name in OPERATIONS} for size in databases}
    sizes = sorted(databases)
    for db in databases.values():  # warm each database's caches once, untimed
        db.context.pack(layout.measured_id, PACK_BUDGET)
        for _, query in queries[:20]:
            db.search.search(layout.measured_id, query)
    for number in range(ROUNDS):
        shift = number % len(sizes)
        for step in round_steps(layout, queries, args, number):
            for size in sizes[shift:] + sizes[:shift]:
                step(databases[size], timings[size])
    return timings


def check_loaded(db: Ctxdb, layout: Layout, prose: Prose) -> None:
    """What ctxdb sees of the bulk-loaded rows: counts, CRITICAL items, the search index,
    and the sequence number of the next store."""
    counts = db.context.counts(layout.measured_id)
    assert sum(c["items"] for c in counts.values()) == layout.project_items, counts
    critical = db.context.page(layout.measured_id, "CRITICAL", limit=1000)["items"]
    assert len(critical) == layout.mix.critical, len(critical)
    status = db.search.index_status()["context"]
    assert status[0] == status[1] == layout.total + layout.stored, status
    newest = layout.newest_note(layout.store_target_id, prose)
    hits = db.search.search(layout.store_target_id, f'"{newest}"', kinds="context")
    assert any(hit["sequence"] == layout.loaded[layout.store_target_id] for hit in hits), newest
    stored = db.context.store(layout.store_target_id, {"note": "sequence check"}, priority="LOW")
    assert stored["sequence_number"] == layout.count_store(), stored


def grow(settings: Settings, layout: Layout, size: int, prose: Prose) -> float:
    """Bulk-load the items that make the database ``size`` items and check them; returns the
    seconds of the load."""
    # A load's statements run for minutes on PostgreSQL: no statement or answer limit then.
    with Ctxdb.open(settings.replace(pg_statement_timeout=0.0,
                                     pg_socket_timeout=3_600.0)) as db:
        started = time.perf_counter()
        rows, last = growth_rows(layout, size, prose)
        bulk_load_items(db, rows, last)
        seconds = time.perf_counter() - started
        check_loaded(db, layout, prose)
    return seconds


def run_backend(backend: str, url: str, config: Path, args: argparse.Namespace,
                prose: Prose) -> list[dict[str, Any]]:
    settings = bench_settings(url, config).replace(max_projects=1_000)
    with Ctxdb.open(settings) as db:
        layout = Layout.create(db, args.project_items)
    with contextlib.ExitStack() as stack:
        urls, loads = {}, {}
        for size in args.size_list:
            log(f"{backend}: loading to {size:,} items …")
            loads[size] = grow(settings, layout, size, prose)
            log(f"{backend}: {size:,} items loaded and checked in {loads[size]:.1f} s")
            urls[size] = url if size == args.size_list[-1] else stack.enter_context(
                snapshot(backend, url, size, args))
        databases = {size: stack.enter_context(Ctxdb.open(settings.replace(url=snapshot_url)))
                     for size, snapshot_url in urls.items()}
        log(f"{backend}: measuring …")
        measured = measure(databases, layout, search_mix(prose, args.searches), args)
    return [{"backend": backend, "size": size, "operation": operation, "load_seconds": loads[size],
             "calls": len(t.samples), "p50_ms": t.percentile(0.5), "p99_ms": t.percentile(0.99)}
            for size, operations in measured.items() for operation, t in operations.items()]


@contextlib.contextmanager
def snapshot(backend: str, url: str, size: int, args: argparse.Namespace) -> Iterator[str]:
    """A copy of the database as it is now, page for page (SQLite's backup API; a PostgreSQL
    database made from it as a template), deleted or dropped afterwards."""
    if backend == "postgres":
        with scratch_database(args.pg_url, prefix="scale_bench",
                              template=urlsplit(url).path.lstrip("/")) as copy_url:
            yield copy_url
        return
    copy = Path(url).with_name(f"scale-{size}.db")
    source, target = sqlite3.connect(url), sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    try:
        yield str(copy)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)


def verdicts(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for backend in sorted({r["backend"] for r in results}):
        rows = {(r["size"], r["operation"]): r for r in results if r["backend"] == backend}
        sizes = sorted({size for size, _ in rows})
        small, large = sizes[0], sizes[-1]
        for operation in ("pack", "load CRITICAL", "store"):
            ratio = rows[large, operation]["p50_ms"] / rows[small, operation]["p50_ms"]
            goal = f"goal <= {GROWTH_GOAL}x" if operation != "store" else "no goal"
            met = "" if operation == "store" else (" PASS" if ratio <= GROWTH_GOAL else " MISS")
            lines.append(f"{backend}: {operation} p50 at {large:,} / at {small:,} = "
                         f"{ratio:.2f}x ({goal}){met}")
        if backend == "sqlite" and large >= 1_000_000:
            p50 = rows[large, "search"]["p50_ms"]
            lines.append(f"sqlite: search p50 at {large:,} = {p50:.1f} ms (goal <= "
                         f"{SEARCH_P50_GOAL_MS:.0f} ms) "
                         f"{'PASS' if p50 <= SEARCH_P50_GOAL_MS else 'MISS'}")
    return lines


def table(results: list[dict[str, Any]]) -> str:
    lines = [f"{'backend':9} {'items':>10} {'operation':24} {'calls':>5} {'p50':>10} "
             f"{'p99':>10}"]
    for r in results:
        lines.append(f"{r['backend']:9} {r['size']:>10,} {r['operation']:24} {r['calls']:>5} "
                     f"{r['p50_ms']:8.2f}ms {r['p99_ms']:8.2f}ms")
    return "\n".join(lines)


def databases(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[str, str]]:
    if args.backend in ("sqlite", "all"):
        folder = args.keep or workdir
        folder.mkdir(parents=True, exist_ok=True)
        yield "sqlite", str(folder / "scale.db")
    if args.backend in ("postgres", "all"):
        with scratch_database(args.pg_url, prefix="scale_bench") as url:
            yield "postgres", url


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prose = Prose()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ctxdb-bench-scale-") as scratch:
        workdir = Path(scratch)
        for backend, url in databases(args, workdir):
            results += run_backend(backend, url, workdir / "config", args, prose)
    info = machine()
    print(f"ctxdb at scale: {args.project_items:,} items in the measured project, 100 "
          f"projects; {info['date']}, Python {info['python']}, {info['cpus']} CPUs")
    print(table(results))
    print("\n".join(verdicts(results)))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "sizes": args.size_list,
                                         "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

