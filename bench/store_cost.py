"""Where a durable store's time goes on PostgreSQL: CPU of the client and of the server.

For each way of storing one item per transaction (ctxdb, the bare INSERT baseline, and
ctxdb's own statements written by hand) it prints wall time, CPU time of this process and
CPU time of the server backend serving it, per store. The backend's CPU is read from
``/proc``, so the server must run on this (Linux) machine. Rounds alternate the three sides;
CPU figures are totals over all rounds divided by the number of stores (the kernel counts
CPU in 10 ms ticks, too coarse for one round).

Usage:
    python bench/store_cost.py [--pg-url URL] [--stores N] [--rounds N]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

from cases import _contents
from ctxdb.service import Ctxdb
from data import bench_settings
from raw import RawPostgres
from run import DEFAULT_PG_URL, scratch_database

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--stores", type=int, default=200, help="stores per side per round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    contents = _contents(args.stores, seed=11)
    with tempfile.TemporaryDirectory() as scratch, scratch_database(args.pg_url) as url:
        # One pooled connection, so that one backend does all of ctxdb's work.
        settings = bench_settings(url, Path(scratch)).replace(pool_min_size=1, pool_max_size=1)
        with Ctxdb.open(settings) as db:
            raw = RawPostgres(url)
            try:
                projects = [db.projects.create(f"cost {n}")["project_id"] for n in range(3)]
                ctxdb_pid = db.storage.read(
                    lambda tx: tx.one_raw("SELECT pg_backend_pid() AS pid", {}))["pid"]
                raw_pid = raw.conn.info.backend_pid
                sequences = itertools.count(1)
                sides: dict[str, tuple[Callable[[object], object], int]] = {
                    "ctxdb context.store": (
                        lambda item: db.context.store(projects[0], item, priority="HIGH"),
                        ctxdb_pid),
                    "raw BEGIN/INSERT/COMMIT": (
                        lambda item: raw.store(projects[1], item, "HIGH", next(sequences),
                                               secrets.token_hex(16)), raw_pid),
                    "raw, ctxdb's statements": (
                        lambda item: raw.store_audited(projects[2], item, "HIGH",
                                                       secrets.token_hex(16), "user:bench"),
                        raw_pid),
                }
                report(sides, contents, args.rounds)
            finally:
                raw.close()
    return 0


def report(sides: dict[str, tuple[Callable[[object], object], int]], contents: list[object],
           rounds: int) -> None:
    names = list(sides)
    walls: dict[str, list[float]] = {name: [] for name in names}
    client = dict.fromkeys(names, 0.0)
    server = dict.fromkeys(names, 0.0)
    for number in range(rounds + 1):  # round 0 warms up and is not counted
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            store, pid = sides[name]
            started_server, started_client = backend_cpu(pid), own_cpu()
            started = time.perf_counter()
            for item in contents:
                store(item)
            if number:
                walls[name].append((time.perf_counter() - started) / len(contents))
                client[name] += own_cpu() - started_client
                server[name] += backend_cpu(pid) - started_server
    stores = rounds * len(contents)
    print(f"{'per store, microseconds':26s} {'wall (median)':>14s} {'client CPU':>11s} "
          f"{'server CPU':>11s}")
    for name in names:
        print(f"{name:26s} {statistics.median(walls[name]) * 1e6:14.0f} "
              f"{client[name] / stores * 1e6:11.0f} {server[name] / stores * 1e6:11.0f}")


if __name__ == "__main__":
    sys.exit(main())
