"""The measurements: each pairs a ctxdb call with the raw-driver code doing the same work.

Before timing, every read measurement checks that both sides return the same items, so that
the ratio compares equal work.
"""

from __future__ import annotations

import itertools
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctxdb.service import Ctxdb
from data import Mix, content, seeded_project
from harness import Result, latency_result, measure_pair, measure_sides, throughput_result, timed
from writers import run_writers


@dataclass(frozen=True)
class Sizes:
    repetitions: int
    warmups: int
    stores_per_rep: int
    load_mix: Mix  # the project the CRITICAL and whole-project loads read
    critical_calls: int
    full_calls: int
    pack_mix: Mix
    pack_budget: int
    pack_calls: int
    writer_processes: int
    writes_per_process: int
    writer_repetitions: int


FULL = Sizes(repetitions=7, warmups=1, stores_per_rep=200,
             load_mix=Mix(critical=200, high=1600, medium=1600, low=1600),
             critical_calls=20, full_calls=3,
             pack_mix=Mix(critical=200, high=20_000, medium=40_000, low=39_800),
             pack_budget=50_000, pack_calls=5,
             writer_processes=8, writes_per_process=150, writer_repetitions=5)

QUICK = Sizes(repetitions=3, warmups=1, stores_per_rep=15,
              load_mix=Mix(critical=20, high=160, medium=160, low=160),
              critical_calls=5, full_calls=2,
              pack_mix=Mix(critical=10, high=300, medium=400, low=290),
              pack_budget=5_000, pack_calls=2,
              writer_processes=8, writes_per_process=10, writer_repetitions=1)


def _contents(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [content(rng, number) for number in range(count)]


def _same_items(what: str, ctxdb_items: list[Any], raw_items: list[Any]) -> None:
    ours = [(item["item_id"], item["content"]) for item in ctxdb_items]
    theirs = [(item["item_id"], item["content"]) for item in raw_items]
    if ours != theirs:
        raise AssertionError(f"{what}: ctxdb and the raw driver returned different items")


def _calls(call: Callable[[], Any], count: int) -> Callable[[], tuple[float, int]]:
    def rep() -> tuple[float, int]:
        def work() -> int:
            for _ in range(count):
                call()
            return count
        return timed(work)
    return rep


def single_store(db: Ctxdb, raw: Any, backend: str, sizes: Sizes) -> list[Result]:
    """One item per committed transaction: against a bare insert, and against the same work.

    The second baseline (``raw.store_audited``) writes what ctxdb's rules require of a store
    (sequence number, idempotent insert, audit row) by hand, so the two ratios separate the
    cost of those guarantees from the cost of the library.
    """
    ctxdb_project = db.projects.create("bench ctxdb stores")["project_id"]
    raw_project = db.projects.create("bench raw stores")["project_id"]
    audited_project = db.projects.create("bench raw audited stores")["project_id"]
    contents = _contents(sizes.stores_per_rep, seed=11)
    sequences = itertools.count(1)

    def ctxdb_rep() -> tuple[float, int]:
        def work() -> int:
            for item in contents:
                db.context.store(ctxdb_project, item, priority="HIGH")
            return len(contents)
        return timed(work)

    def raw_rep() -> tuple[float, int]:
        def work() -> int:
            for item in contents:
                raw.store(raw_project, item, "HIGH", next(sequences), secrets.token_hex(16))
            return len(contents)
        return timed(work)

    def audited_rep() -> tuple[float, int]:
        def work() -> int:
            for item in contents:
                raw.store_audited(audited_project, item, "HIGH", secrets.token_hex(16),
                                  db.settings.actor)
            return len(contents)
        return timed(work)

    ours, bare, audited = measure_sides([ctxdb_rep, raw_rep, audited_rep], sizes.repetitions,
                                        sizes.warmups)
    described = f"{sizes.stores_per_rep} stores per repetition"
    return [
        throughput_result("single durable store", backend, 0.85, (ours, bare),
                          f"{described}; raw = BEGIN, INSERT, COMMIT"),
        throughput_result("single durable store, same statements", backend, 0.85,
                          (ours, audited),
                          f"{described}; raw = ctxdb's statements by hand (sequence, "
                          "insert, audit row" + (", transaction id" if backend == "postgres"
                                                  else "") + ")"),
    ]


def loads(db: Ctxdb, raw: Any, backend: str, sizes: Sizes) -> list[Result]:
    mix = sizes.load_mix
    project = seeded_project(db, "bench loads", mix)
    described = f"{mix.critical} CRITICAL among {mix.total} items"
    ours = db.context.page(project, "CRITICAL", limit=1000)["items"]
    _same_items("load CRITICAL", ours, raw.load_critical(project))
    full = db.context.full(project)
    raw_full = raw.load_full(project)
    for priority, items in full.items():
        _same_items(f"load whole project ({priority})", items, raw_full[priority])

    ours_instance = db.instances.launch(project, client="bench")["instance_id"]
    raw_instance = db.instances.launch(project, client="bench")["instance_id"]
    registered = db.context.load_for_instance(ours_instance, project)["critical_context"]
    _same_items("load_for_instance", registered,
                raw.register_and_load_critical(raw_instance, project))

    results = [
        latency_result("load CRITICAL (pure read)", backend, 1.25, measure_pair(
            _calls(lambda: db.context.page(project, "CRITICAL", limit=1000),
                   sizes.critical_calls),
            _calls(lambda: raw.load_critical(project), sizes.critical_calls),
            sizes.repetitions, sizes.warmups),
            f"{described}; ctxdb.context.page(CRITICAL) vs the same SELECT"),
        latency_result("load_for_instance (register + read)", backend, 1.25, measure_pair(
            _calls(lambda: db.context.load_for_instance(ours_instance, project),
                   sizes.critical_calls),
            _calls(lambda: raw.register_and_load_critical(raw_instance, project),
                   sizes.critical_calls),
            sizes.repetitions, sizes.warmups),
            f"{described}; a durable write transaction: raw = heartbeat UPDATE + SELECT"),
        latency_result("load whole project", backend, 1.25, measure_pair(
            _calls(lambda: db.context.full(project), sizes.full_calls),
            _calls(lambda: raw.load_full(project), sizes.full_calls),
            sizes.repetitions, sizes.warmups),
            f"{mix.total} live items grouped by priority"),
    ]
    return results


def pack(db: Ctxdb, raw: Any, backend: str, sizes: Sizes) -> Result:
    mix = sizes.pack_mix
    project = seeded_project(db, "bench pack", mix, seed=13)
    ours = db.context.pack(project, sizes.pack_budget).items
    _same_items("budgeted pack", list(ours), raw.pack(project, sizes.pack_budget))
    samples = measure_pair(
        _calls(lambda: db.context.pack(project, sizes.pack_budget), sizes.pack_calls),
        _calls(lambda: raw.pack(project, sizes.pack_budget), sizes.pack_calls),
        sizes.repetitions, sizes.warmups)
    return latency_result("budgeted pack", backend, 2.0, samples,
                          f"{sizes.pack_budget:,} tokens out of {mix.total:,} items "
                          f"({len(ours)} items fit)")


def concurrent_writers(db: Ctxdb, config_dir: Path, sizes: Sizes) -> Result:
    ctxdb_project = db.projects.create("bench ctxdb writers")["project_id"]
    raw_project = db.projects.create("bench raw writers")["project_id"]
    contents = _contents(sizes.writes_per_process, seed=17)
    url = str(db.settings.sqlite_path)
    n = sizes.writer_processes

    samples = measure_pair(
        lambda: run_writers("ctxdb", n, url, ctxdb_project, contents, config_dir),
        lambda: run_writers("raw", n, url, raw_project, contents, db.settings.busy_timeout_ms),
        sizes.writer_repetitions, warmups=0)
    return throughput_result(f"{n} writer processes", "sqlite", 0.8, samples,
                             f"{n} x {sizes.writes_per_process} stores per repetition, "
                             "one transaction each, one file")
