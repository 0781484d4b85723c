"""ctxdb side by side with its peers, same payload, same durability, same run.

The contenders (bench/peer_contenders.py): on SQLite the raw ``sqlite3`` driver, the OpenAI
Agents SDK's ``SQLiteSession``, LangGraph's ``SqliteStore`` and ctxdb; on PostgreSQL raw
psycopg 3, LangGraph's ``PostgresStore`` and ctxdb. Every SQLite contender runs in WAL mode
with ``synchronous=FULL``, every PostgreSQL one with ``synchronous_commit=on``; each writes to
a fresh store of its own. In each of ``--runs`` runs:

1. single durable write: ``--items`` payloads of about 490 bytes, one write each, committed
   before the call returns (after a few untimed warm-up writes). All contenders are open at
   once and write in rounds of ``--round`` items, the order rotating every round, so that a
   burst of load from elsewhere on the machine lands on all of them alike;
2. point read by key: ``--reads`` keys (the same random sample for every contender), rounds;
3. load all items of the project: ``--loads`` loads each, rotating;
4. ``--writers`` processes writing ``--writes-per-writer`` items each into one store, one
   contender after another, the order rotating per run; the slowest acknowledged write kept.

After each part the rows are counted with the bare driver, and point reads and the first
load are compared with what was written: a contender losing or changing writes is reported.
Prints the median of the runs and each figure's ratio to the raw driver of its backend.

Usage (``make bench-peers`` makes its own virtual environment with the peers):
    python bench/peers.py [--items 5000] [--runs 3] [--writers 8] [--writes-per-writer 500]
                          [--reads 2000] [--loads 5] [--round 250]
                          [--contenders raw-sqlite,ctxdb-sqlite,...] [--pg-url URL] [--json FILE]
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

from data import WORDS
from hooks import load_average
from peer_base import WARMUP_WRITES, Contender
from peer_contenders import CONTENDERS, DEFAULT_CONTENDERS
from peer_report import Figures, header, report
from peer_writers import run_peer_writers
from run import DEFAULT_PG_URL, scratch_database

VERIFIED_READS = 20  # point reads compared with the payload before any read is timed
# What each peer needs installed (bench/peers-requirements.txt), by the module it imports.
PEER_MODULES = {
    "agents-sqlite": ("agents.memory", "openai-agents"),
    "langgraph-sqlite": ("langgraph.store.sqlite", "langgraph-checkpoint-sqlite"),
    "langgraph-postgres": ("langgraph.store.postgres", "langgraph-checkpoint-postgres"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=5_000, help="single writes per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--writers", type=int, default=8, help="writer processes")
    parser.add_argument("--writes-per-writer", type=int, default=500)
    parser.add_argument("--reads", type=int, default=2_000, help="point reads per run")
    parser.add_argument("--loads", type=int, default=5, help="loads of all items per run")
    parser.add_argument("--round", type=int, default=250,
                        help="writes (and reads) of one contender before the next one's turn")
    parser.add_argument("--contenders", default=",".join(DEFAULT_CONTENDERS),
                        help=f"comma-separated, of: {', '.join(CONTENDERS)} (default: all "
                        "but raw-sqlite-thread, a diagnostic)")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="server to use; the bench creates and drops its own databases")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    args = parser.parse_args(argv)
    args.kinds = [kind.strip() for kind in args.contenders.split(",") if kind.strip()]
    unknown = [kind for kind in args.kinds if kind not in CONTENDERS]
    if unknown or not args.kinds:
        parser.error(f"unknown contenders {unknown}; choose from {', '.join(CONTENDERS)}")
    for name in ("items", "runs", "writers", "writes_per_writer", "round", "loads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.reads < 0:
        parser.error("--reads must not be negative")
    missing = [f"{kind} needs {package}" for kind, (module, package) in PEER_MODULES.items()
               if kind in args.kinds and not importable(module)]
    if missing:
        parser.error(f"peers not installed ({'; '.join(missing)}): `make bench-peers` runs "
                     "this in its own environment with bench/peers-requirements.txt")
    return args


def importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def payloads(count: int, seed: int = 14) -> list[dict[str, Any]]:
    """``count`` context notes of 440 to 540 bytes of JSON (about 490 on average)."""
    rng = random.Random(seed)
    values = []
    for number in range(count):
        target, words = rng.randint(440, 540), []
        value = {"file": f"src/module_{number % 97}.py", "kind": "decision", "note": ""}
        while len(json.dumps(value)) < target:
            words.append(rng.choice(WORDS))
            value["note"] = " ".join(words)
        values.append(value)
    return values


def rotated(kinds: list[str], shift: int) -> list[str]:
    shift %= len(kinds)
    return kinds[shift:] + kinds[:shift]


@contextmanager
def fresh_store(kind: str, pg_url: str, scratch: Path) -> Iterator[str]:
    """A new SQLite file (its folder removed afterwards) or PostgreSQL database (dropped)."""
    if CONTENDERS[kind].backend == "postgres":
        with scratch_database(pg_url, "peers_bench_" + kind.replace("-", "_")) as url:
            yield url
        return
    folder = scratch / f"{kind}-{secrets.token_hex(4)}"
    folder.mkdir()
    try:
        yield str(folder / "store.db")
    finally:
        shutil.rmtree(folder)


def canonical(values: list[dict[str, Any]]) -> collections.Counter[str]:
    return collections.Counter(json.dumps(value, sort_keys=True) for value in values)


class SingleProcessRun:
    """One run of parts 1 to 3: every contender open at once, in stores of their own."""

    def __init__(self, args: argparse.Namespace, run: int, values: list[dict[str, Any]],
                 figures: dict[str, Figures]) -> None:
        self.args, self.run, self.values, self.figures = args, run, values, figures
        self.kinds: list[str] = args.kinds
        self.stores: dict[str, str] = {}
        self.projects: dict[str, str] = {}
        self.open: dict[str, Contender] = {}
        self.keys: dict[str, list[Any]] = {kind: [] for kind in self.kinds}
        self.written: dict[str, list[dict[str, Any]]] = {kind: [] for kind in self.kinds}

    def measure(self, scratch: Path) -> None:
        with ExitStack() as stack:
            for kind in self.kinds:
                self.stores[kind] = stack.enter_context(
                    fresh_store(kind, self.args.pg_url, scratch))
                stack.callback(self.close_all)  # on a failure: before any store goes
                self.projects[kind] = CONTENDERS[kind].create(self.stores[kind], scratch)
                self.open[kind] = CONTENDERS[kind](self.stores[kind], scratch,
                                                   self.projects[kind])
            self.write()
            self.point_reads()
            self.load_all()
            self.close_all()
            for kind in self.kinds:  # counted after closing: what the store has committed
                self.figures[kind].single_found += CONTENDERS[kind].count(
                    self.stores[kind], self.projects[kind])

    def close_all(self) -> None:
        while self.open:
            self.open.popitem()[1].close()

    def _write(self, kind: str, items: list[tuple[str, dict[str, Any]]],
               timed: bool = True) -> tuple[float, int]:
        """Seconds and acknowledged writes of one contender's turn."""
        started = time.perf_counter()
        writes = self.open[kind].write_all(items)
        seconds = time.perf_counter() - started
        figures = self.figures[kind]
        figures.single_acknowledged += writes.count
        figures.errors.extend(writes.errors)
        self.written[kind].extend(value for key, (_, value) in zip(writes.keys, items,
                                                                     strict=True)
                                  if key is not None)
        if timed:
            figures.write_latencies.extend(writes.latencies)
            self.keys[kind].extend(writes.keys)  # by position: None where refused
        return seconds, writes.count

    def write(self) -> None:
        for kind in self.kinds:  # untimed: the first statements, caches, imports
            self._write(kind, [(f"warm-{number}", self.values[number % len(self.values)])
                               for number in range(WARMUP_WRITES)], timed=False)
        items = [(f"item-{number}", value) for number, value in enumerate(self.values)]
        seconds = dict.fromkeys(self.kinds, 0.0)
        acknowledged = dict.fromkeys(self.kinds, 0)
        size = self.args.round
        for number, start in enumerate(range(0, len(items), size)):
            for kind in rotated(self.kinds, number + self.run):
                spent, count = self._write(kind, items[start:start + size])
                seconds[kind] += spent
                acknowledged[kind] += count
        for kind in self.kinds:
            self.figures[kind].write_rates.append(acknowledged[kind] / seconds[kind])

    def point_reads(self) -> None:
        kinds = [kind for kind in self.kinds if CONTENDERS[kind].reads_by_key]
        rng = random.Random(self.run)
        positions = rng.sample(range(len(self.values)), min(self.args.reads,
                                                             len(self.values)))
        for kind in kinds:
            for position in positions[:VERIFIED_READS]:
                key = self.keys[kind][position]
                if key is not None and self.open[kind].read(key) != self.values[position]:
                    self.figures[kind].mismatches.append(f"read of item {position}")
        if not positions:
            return
        seconds = dict.fromkeys(kinds, 0.0)
        reads = dict.fromkeys(kinds, 0)
        size = self.args.round
        for number, start in enumerate(range(0, len(positions), size)):
            for kind in rotated(kinds, number + self.run):
                keys = [self.keys[kind][p] for p in positions[start:start + size]]
                keys = [key for key in keys if key is not None]
                contender = self.open[kind]
                started = time.perf_counter()
                for key in keys:
                    contender.read(key)
                seconds[kind] += time.perf_counter() - started
                reads[kind] += len(keys)
        for kind in kinds:
            self.figures[kind].read_rates.append(reads[kind] / seconds[kind])

    def load_all(self) -> None:
        samples: dict[str, list[float]] = {kind: [] for kind in self.kinds}
        for number in range(self.args.loads):
            for kind in rotated(self.kinds, number + self.run):
                started = time.perf_counter()
                loaded = self.open[kind].load_all()
                samples[kind].append(time.perf_counter() - started)
                if number == 0 and canonical(loaded) != canonical(self.written[kind]):
                    self.figures[kind].mismatches.append(
                        f"load of all items: {len(loaded)} loaded, "
                        f"{len(self.written[kind])} written")
        for kind in self.kinds:
            self.figures[kind].load_seconds.append(statistics.median(samples[kind]))


def writers_run(args: argparse.Namespace, run: int, values: list[dict[str, Any]],
                figures: dict[str, Figures], scratch: Path) -> None:
    """Part 4 for every contender, one at a time, in the run's order."""
    for kind in rotated(args.kinds, run):
        with fresh_store(kind, args.pg_url, scratch) as location:
            project = CONTENDERS[kind].create(location, scratch)
            done = run_peer_writers(kind, location, scratch, project, args.writers,
                                    values[:args.writes_per_writer])
            found = CONTENDERS[kind].count(location, project)
        figure = figures[kind]
        figure.writer_rates.append(done.acknowledged / done.seconds)
        figure.writer_worst.append(done.worst_seconds)
        figure.writer_acknowledged += done.acknowledged
        figure.writer_found += found
        figure.errors.extend(done.errors)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    values = payloads(max(args.items, args.writes_per_writer))
    figures = {kind: Figures() for kind in args.kinds}
    load_before = load_average()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ctxdb-peers-") as name:
        scratch = Path(name)
        for run in range(args.runs):
            print(f"run {run + 1} of {args.runs}: single process ...", file=sys.stderr,
                  flush=True)
            SingleProcessRun(args, run, values[:args.items], figures).measure(scratch)
            print(f"run {run + 1} of {args.runs}: {args.writers} writer processes ...",
                  file=sys.stderr, flush=True)
            writers_run(args, run, values, figures, scratch)
    loads = f"{load_before} / {load_average()}"
    print(header(args, values[:args.items], loads, time.monotonic() - started))
    print(report(args, figures))
    if args.json:
        args.json.write_text(json.dumps(
            {"arguments": {k: v for k, v in vars(args).items() if k != "json"},
             "load_average_before_after": loads,
             "contenders": {kind: figure.to_dict() for kind, figure in figures.items()}},
            indent=2, default=str) + "\n")
    broken = [kind for kind in args.kinds if kind.startswith("ctxdb")
              and not figures[kind].intact]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
