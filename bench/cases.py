"""The measurements: each pairs a ctxdb call with the raw-driver code doing the same work.

Before timing, every read measurement checks that both sides return the same items, so that
the ratio compares equal work.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctxdb.domain.search import parse_query
from ctxdb.service import Ctxdb
from data import Mix, Prose, content, search_rows, seeded_project
from harness import (
    Result,
    latency_result,
    measure_pair,
    measure_sides,
    p95,
    percentile_result,
    throughput_result,
    timed,
)
from raw import VersionConflict
from writers import run_writers


def untimed_indexing(db: Ctxdb, rep: Callable[[], tuple[float, int]]
                     ) -> Callable[[], tuple[float, int]]:
    """A raw side's repetition, then, untimed, the index terms of the search documents its
    statements wrote: ctxdb's triggers give a raw insert its document, and ctxdb's next
    write would otherwise give every one of them its terms, so that the ctxdb side was
    charged the raw side's indexing (400 documents per store repetition, in its first
    store). Only the raw side's: on SQLite ctxdb's own writes leave up to DEFER_LIMIT - 1
    documents waiting for the write that gives a batch its terms, and that work is ctxdb's,
    timed where its next write does it (a raw memory put changes a document written
    before, so the raw side's are told apart by the ids waiting before its repetition)."""
    from ctxdb.storage.base import Tx
    from ctxdb.storage.search_text import index_terms

    def waiting(tx: Tx) -> list[dict[str, Any]]:
        return tx.all("search_pending_documents", after=0, limit=1_000_000)

    def run() -> tuple[float, int]:
        ctxdbs = {row["doc_id"] for row in db.storage.read(waiting)}
        measured = rep()

        def index_theirs(tx: Tx) -> None:
            for row in waiting(tx):
                if row["doc_id"] not in ctxdbs:
                    tx.execute("search_set_terms", doc_id=row["doc_id"],
                               terms=index_terms(row["body"]))

        db.storage.write(index_theirs)
        return measured
    return run


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
    memory_keys: int  # memories each side cycles through
    memory_puts_per_rep: int
    memory_gets_per_rep: int
    search_items: int
    search_rounds: int  # times the query mix runs (each query timed on its own)


FULL = Sizes(repetitions=7, warmups=1, stores_per_rep=200,
             load_mix=Mix(critical=200, high=1600, medium=1600, low=1600),
             critical_calls=20, full_calls=3,
             pack_mix=Mix(critical=200, high=20_000, medium=40_000, low=39_800),
             pack_budget=50_000, pack_calls=5,
             writer_processes=8, writes_per_process=150, writer_repetitions=5,
             memory_keys=50, memory_puts_per_rep=200, memory_gets_per_rep=2_000,
             search_items=100_000, search_rounds=15)

QUICK = Sizes(repetitions=3, warmups=1, stores_per_rep=15,
              load_mix=Mix(critical=20, high=160, medium=160, low=160),
              critical_calls=5, full_calls=2,
              pack_mix=Mix(critical=10, high=300, medium=400, low=290),
              pack_budget=5_000, pack_calls=2,
              writer_processes=8, writes_per_process=10, writer_repetitions=1,
              memory_keys=5, memory_puts_per_rep=10, memory_gets_per_rep=50,
              search_items=2_000, search_rounds=2)


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

    ours, bare, audited = measure_sides(
        [ctxdb_rep, untimed_indexing(db, raw_rep), untimed_indexing(db, audited_rep)],
        sizes.repetitions, sizes.warmups)
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


def concurrent_writers(db: Ctxdb, backend: str, config_dir: Path, sizes: Sizes) -> Result:
    """N processes storing into one project each side: ctxdb's stores against the raw
    driver's bare inserts (each raw writer numbering from a block of its own, where ctxdb's
    writers draw from the project's gapless counter, taking turns at it)."""
    ctxdb_project = db.projects.create("bench ctxdb writers")["project_id"]
    raw_project = db.projects.create("bench raw writers")["project_id"]
    contents = _contents(sizes.writes_per_process, seed=17)
    url = db.settings.url if backend == "postgres" else str(db.settings.sqlite_path)
    n = sizes.writer_processes

    samples = measure_pair(
        lambda: run_writers("ctxdb", n, url, ctxdb_project, contents, config_dir),
        untimed_indexing(db, lambda: run_writers("raw", n, url, raw_project, contents,
                                                 db.settings.busy_timeout_ms)),
        sizes.writer_repetitions, warmups=0)
    return throughput_result(f"{n} writer processes", backend, 0.8, samples,
                             f"{n} x {sizes.writes_per_process} stores per repetition, "
                             "one transaction each, one project per side")


MEMORY_NAMESPACE = "bench:memories"


def memories(db: Ctxdb, raw: Any, backend: str, sizes: Sizes) -> list[Result]:
    """Compare-and-set puts and reads by key, each side on its own memories of one project.

    Each put names the version it expects (the one its previous put made), as a
    read-modify-write loop does; a conflict would be a bug here (nobody else writes), so it
    stops the benchmark.
    """
    project = db.projects.create("bench memories")["project_id"]
    actor = db.settings.actor
    keys = [f"key-{number}" for number in range(sizes.memory_keys)]
    versions = {("ctxdb", key): db.memories.put(project, MEMORY_NAMESPACE, f"ctxdb-{key}",
                                                {"n": 0})["version"] for key in keys}
    for side in ("raw", "audited"):
        versions |= {(side, key): db.memories.put(project, MEMORY_NAMESPACE, f"{side}-{key}",
                                                  {"n": 0})["version"] for key in keys}
    rng = random.Random(19)
    values = [{"n": number, "note": " ".join(rng.choice(("cache", "retry", "phase", "agent"))
                                              for _ in range(12))}
              for number in range(sizes.memory_puts_per_rep)]

    def ctxdb_puts() -> tuple[float, int]:
        def work() -> int:
            for number, value in enumerate(values):
                key = keys[number % len(keys)]
                versions["ctxdb", key] = db.memories.put(
                    project, MEMORY_NAMESPACE, f"ctxdb-{key}", value,
                    expected_version=versions["ctxdb", key], actor=actor)["version"]
            return len(values)
        return timed(work)

    def raw_puts(side: str) -> Callable[[], tuple[float, int]]:
        def rep() -> tuple[float, int]:
            def work() -> int:
                for number, value in enumerate(values):
                    key = keys[number % len(keys)]
                    versions[side, key] = raw.memory_put(
                        project, MEMORY_NAMESPACE, f"{side}-{key}", value, versions[side, key],
                        actor, audited=side == "audited")
                return len(values)
            return timed(work)
        return rep

    try:
        ours, bare, audited = measure_sides(
            [ctxdb_puts, untimed_indexing(db, raw_puts("raw")),
             untimed_indexing(db, raw_puts("audited"))], sizes.repetitions, sizes.warmups)
    except VersionConflict as exc:  # pragma: no cover - a bug, not a measurement
        raise AssertionError(f"raw compare-and-set conflicted: {exc}") from exc
    for key in keys:  # every side wrote what it was asked to
        written = {side: raw.memory_get(project, MEMORY_NAMESPACE, f"{side}-{key}")
                   for side in ("ctxdb", "raw", "audited")}
        if len({(m["version"], json.dumps(m["value"])) for m in written.values()}) != 1:
            raise AssertionError(f"memory put: the sides disagree on {key}")

    reads = [keys[number % len(keys)] for number in range(sizes.memory_gets_per_rep)]
    get_samples = measure_pair(
        _calls_each(lambda key: db.memories.get(project, MEMORY_NAMESPACE, f"ctxdb-{key}"),
                    reads),
        _calls_each(lambda key: raw.memory_get(project, MEMORY_NAMESPACE, f"ctxdb-{key}"),
                    reads),
        sizes.repetitions, sizes.warmups)
    described = f"{sizes.memory_keys} memories per side, cycled"
    puts = f"{sizes.memory_puts_per_rep} puts per repetition, {described}"
    return [
        throughput_result("memory put (compare-and-set)", backend, 0.8, (ours, bare),
                          f"{puts}; raw = BEGIN, UPDATE … WHERE version = expected RETURNING, "
                          "INSERT of the history row, COMMIT"),
        throughput_result("memory put, same statements", backend, 0.8, (ours, audited),
                          f"{puts}; raw = the same plus ctxdb's audit row"
                          + (" and transaction id" if backend == "postgres" else "")),
        throughput_result("memory get by key", backend, 0.5, get_samples,
                          f"{sizes.memory_gets_per_rep} reads per repetition, {described}; raw "
                          "= one SELECT of the live row, value parsed"),
    ]


def _calls_each(
    call: Callable[[Any], Any], arguments: list[Any]
) -> Callable[[], tuple[float, int]]:
    def rep() -> tuple[float, int]:
        def work() -> int:
            for argument in arguments:
                call(argument)
            return len(arguments)
        return timed(work)
    return rep


# The query mix of the search measurement: words of chosen frequency ranks in the made-up
# prose (see data.Prose), and their combinations. "common" is a word in most items: ranking
# every match is the engine's worst case, reported on its own row.
SEARCH_WORDS_PER_ITEM = 40


def search_queries(prose: Prose) -> dict[str, str]:
    return {
        "rare word": prose.word(10_000),
        "uncommon word": prose.word(1_000),
        "frequent word": prose.word(50),
        "two words": f"{prose.word(60)} {prose.word(300)}",
        "phrase": f'"{prose.word(2)} {prose.word(3)}"',
        "prefix": prose.word(500)[:4] + "*",
        "word or word": f"{prose.word(2_000)} or {prose.word(3_000)}",
    }


def search(db: Ctxdb, raw: Any, backend: str, sizes: Sizes) -> list[Result]:
    """p50 of single searches over a project of ``search_items`` items, query by query.

    Every call is timed on its own (ctxdb and raw back to back, alternating which goes
    first); the figure is the median over all calls of the mix. Before timing, both sides
    must find the same records (ctxdb orders them by its own score).
    """
    prose = Prose()
    project = seeded_project(db, "bench search", Mix(0, 0, 0, 0), count=sizes.search_items,
                             rows_of=lambda pid: search_rows(pid, prose, sizes.search_items, 23))
    limit = 20
    engine_of = db.storage.search_engine()
    queries = search_queries(prose)
    common = prose.word(1)
    engine = {text: engine_of.query_text(parse_query(text))
              for text in [*queries.values(), common]}
    for name, text in [*queries.items(), ("common", common)]:
        # ctxdb ranks the best 5 x limit records by relevance again, weighed by priority and
        # age, and adds those with some of the words when there are few with all of them
        # (docs/search.md): its hits with all the words must be among the raw driver's
        # candidates, and be all of them when there are fewer than the limit.
        ours = {(h["kind"], h["id"]) for h in db.search.search(project, text, limit=limit)
                if h["match"] == "all"}
        theirs = {(h["kind"], h["item_id"])
                  for h in raw.search(project, engine[text], max(50, 5 * limit))}
        if not ours <= theirs or (len(theirs) < limit and ours != theirs):
            raise AssertionError(f"search {name!r}: ctxdb and the raw driver disagree")

    def timed_calls(texts: list[str]) -> tuple[list[float], list[float]]:
        ctxdb_s: list[float] = []
        raw_s: list[float] = []
        for round_number in range(sizes.warmups + sizes.search_rounds):
            for index, text in enumerate(texts):
                sides: list[tuple[list[float], Callable[[], Any]]] = [
                    (ctxdb_s, functools.partial(db.search.search, project, text, limit=limit)),
                    (raw_s, functools.partial(raw.search, project, engine[text], limit))]
                if (round_number + index) % 2:
                    sides.reverse()
                for samples, call in sides:
                    started = time.perf_counter()
                    call()
                    if round_number >= sizes.warmups:
                        samples.append(time.perf_counter() - started)
        return ctxdb_s, raw_s

    mix = timed_calls(list(queries.values()))
    worst = timed_calls([common])
    share = {name: prose.document_share(rank, SEARCH_WORDS_PER_ITEM) for name, rank in
             (("rare", 10_000), ("uncommon", 1_000), ("frequent", 50), ("common", 1))}
    items = sizes.search_items
    return [
        percentile_result(
            "search, p50 of a query mix", backend, 20.0, mix,
            f"{items:,} items of ~40 words (Zipf vocabulary of 30,000); {len(queries)} "
            f"queries x {sizes.search_rounds} rounds, each call timed: a rare word (~"
            f"{share['rare'] * items:,.0f} items), an uncommon one (~"
            f"{share['uncommon'] * items:,.0f}), a frequent one (~"
            f"{share['frequent'] * items:,.0f}), two words, a phrase, a prefix, an or; "
            f"top {limit} with snippets; p95 ctxdb {p95(mix[0]) * 1000:.1f} ms, raw "
            f"{p95(mix[1]) * 1000:.1f} ms; raw = the FTS query by hand with the engine's "
            "snippet function", absolute=True),
        percentile_result(
            "search, a word in most items", backend, 1.25, worst,
            f"the most frequent word (~{share['common'] * items:,.0f} of {items:,} items "
            "match, all ranked); ratio target: ctxdb's own cost over the engine's"),
    ]
