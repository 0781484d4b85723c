"""Concurrent writers: N processes storing items, one per transaction, into one database (a
SQLite file, or a PostgreSQL database named by its URL).

Processes are started with ``spawn`` (no state inherited from the parent's connections),
open their connection, then wait at a barrier so that start-up is not measured. Throughput
is all items stored divided by the time from the first process passing the barrier to the
last one finishing (``time.monotonic`` is one clock for every process on the machine).
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import secrets
import time
from pathlib import Path
from typing import Any

_sequence_blocks = itertools.count(1)


def _ctxdb_worker(url: str, config_dir: str, project_id: str, contents: list[Any],
                  barrier: Any, results: Any) -> None:
    from ctxdb.service import Ctxdb
    from data import bench_settings

    with Ctxdb.open(bench_settings(url, Path(config_dir))) as db:
        # Start-up, not measured: the context service's modules are imported on first use.
        context = db.context
        barrier.wait()
        started = time.monotonic()
        for item in contents:
            context.store(project_id, item, priority="HIGH")
        results.put((started, time.monotonic(), len(contents)))


def _raw_worker(url: str, busy_timeout_ms: int, project_id: str, contents: list[Any],
                first_sequence: int, barrier: Any, results: Any) -> None:
    from ctxdb.database_url import database_kind
    from raw import RawPostgres, RawSQLite

    raw: RawPostgres | RawSQLite = (RawPostgres(url) if database_kind(url) == "postgres"
                                    else RawSQLite(Path(url), busy_timeout_ms))
    try:
        barrier.wait()
        started = time.monotonic()
        for offset, item in enumerate(contents):
            raw.store(project_id, item, "HIGH", first_sequence + offset, secrets.token_hex(16))
        results.put((started, time.monotonic(), len(contents)))
    finally:
        raw.close()


def run_writers(kind: str, processes: int, url: str, project_id: str,
                contents: list[Any], extra: Any) -> tuple[float, int]:
    """Run ``processes`` writers of ``kind`` (ctxdb or raw) on the database ``url`` (a SQLite
    file's path or a PostgreSQL URL); returns (seconds, items)."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    workers = []
    for _ in range(processes):
        if kind == "ctxdb":
            args: tuple[Any, ...] = (url, str(extra), project_id, contents, barrier, results)
            target: Any = _ctxdb_worker
        else:
            # Each raw writer takes its own block of sequence numbers (ctxdb allocates them
            # from the project's counter inside the transaction instead).
            first = next(_sequence_blocks) * 1_000_000
            args = (url, int(extra), project_id, contents, first, barrier, results)
            target = _raw_worker
        workers.append(context.Process(target=target, args=args))
    for worker in workers:
        worker.start()
    reports = _collect(results, workers)
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"a {kind} writer process failed with exit code {worker.exitcode}")
    started = min(report[0] for report in reports)
    finished = max(report[1] for report in reports)
    return finished - started, sum(report[2] for report in reports)


def _collect(results: Any, workers: list[Any]) -> list[tuple[float, float, int]]:
    """Every worker's report; fails at once (not after a long wait) if a worker died."""
    reports: list[tuple[float, float, int]] = []
    while len(reports) < len(workers):
        try:
            reports.append(results.get(timeout=1))
        except queue.Empty:
            dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            if dead:
                for worker in workers:
                    worker.terminate()
                raise RuntimeError(f"writer processes failed with exit codes {dead}") from None
    return reports
