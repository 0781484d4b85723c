"""Concurrent writers for bench/peers.py: N processes writing into one contender's store.

As in bench/writers.py: processes are started with ``spawn``, open their store, then wait at
a barrier so that start-up is not measured; throughput is every acknowledged write divided by
the time from the first process passing the barrier to the last one finishing. Each process
also reports its slowest acknowledged write and the writes its store refused (a busy timeout,
say), which the report names instead of hiding.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from writers import _collect


@dataclass
class WriterRun:
    seconds: float
    acknowledged: int
    worst_seconds: float
    errors: list[str]


def _writer(kind: str, location: str, scratch: str, project: str, number: int,
            payloads: list[dict[str, Any]], barrier: Any, results: Any) -> None:
    import time

    from peer_contenders import CONTENDERS

    contender = CONTENDERS[kind](location, Path(scratch), project)
    try:
        items = [(f"w{number}-{index}", value) for index, value in enumerate(payloads)]
        barrier.wait()
        started = time.monotonic()
        writes = contender.write_all(items)
        results.put((started, time.monotonic(), writes.count,
                     max(writes.latencies, default=0.0), writes.errors[:3]))
    finally:
        contender.close()


def run_peer_writers(kind: str, location: str, scratch: Path, project: str, processes: int,
                     payloads: list[dict[str, Any]]) -> WriterRun:
    """``processes`` writers of contender ``kind``, each writing every one of ``payloads``."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_writer, args=(kind, location, str(scratch), project,
                                                     number, payloads, barrier, results))
               for number in range(processes)]
    for worker in workers:
        worker.start()
    # Each report: (started, finished, acknowledged, slowest seconds, first errors).
    reports: list[Any] = _collect(results, workers)
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"a {kind} writer process failed with exit code "
                               f"{worker.exitcode}")
    started = min(report[0] for report in reports)
    finished = max(report[1] for report in reports)
    return WriterRun(finished - started, sum(report[2] for report in reports),
                     max(report[3] for report in reports),
                     [error for report in reports for error in report[4]])
