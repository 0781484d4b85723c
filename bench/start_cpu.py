"""The CPU time one SessionStart costs through ``ctxdb serve`` on PostgreSQL (issue 12).

The fleet's start-up wave (bench/fleet.py: every agent's first event is a SessionStart) is
the PostgreSQL fleet's p99: each start costs both the server and the database. This gives
both, per start of a new session, on a database made for the run (and dropped after): a
project with the fleet's seed items and ``--live`` sessions already started (so its
sibling and instance reads see a fleet's project), a write token, one server
(``--workers 1``); then ``--starts`` SessionStarts of new sessions through ``POST
/v1/hooks``, ``--in-flight`` at a time. The server's CPU (its process tree) and the CPU of
the database's backends (the server's pooled connections, found in ``pg_stat_activity``),
both read from ``/proc``, per start, are the figures.

With ``--against DIR`` (the ``src`` folder of another version of ctxdb) the same runs are
made with that version's server too, interleaved, the order alternating, and the ratios of
the medians are printed. The load average is printed; figures are evidence, not a test.

Usage:
    python bench/start_cpu.py [--starts 400] [--live 1000] [--rounds 3] [--in-flight 4]
                              [--pg-url URL] [--against OTHER/src]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

from ctxdb.domain.agents import RepoIdentity
from ctxdb.domain.hook_events import parse_event
from ctxdb.service import Ctxdb
from data import bench_settings
from fleet import DEFAULT_PG_URL, SEED_ITEMS, scratch_database
from hooks import load_average
from process_cpu import tree_cpu_seconds
from server_cpu import check, hook_body, serving

REPO_KEY = "bench"
WARM_UP = 20  # starts before the measured ones


def prepare(url: str, folder: Path, live: int) -> str:
    """The project (seed items, ``live`` started sessions) and a write token's secret."""
    with Ctxdb.open(bench_settings(url, folder)) as db:
        project_id = str(db.projects.create("bench", repo_key=REPO_KEY)["project_id"])
        secret = str(db.access_tokens.create(project_id, "write")["secret"])
        for priority, count in SEED_ITEMS.items():
            for n in range(count):
                db.context.store(project_id, f"{priority.lower()} rule {n}: keep the build "
                                 "green and the migrations numbered", priority=priority,
                                 content_type="rule")
        for n in range(live):
            repo = RepoIdentity(REPO_KEY, "bench", f"/home/live-{n}", f"live-{n}")
            event = parse_event("claude-code", (
                f'{{"session_id": "live-{n}", "cwd": "/home/live-{n}", '
                '"hook_event_name": "SessionStart", "source": "startup"}'))
            db.hook_events.handle(event, lambda repo=repo: repo)  # type: ignore[misc]
    return secret


def backends(url: str) -> list[int]:
    """The process ids of the database's backends but this one (the server's connections)."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = "
                            "current_database() AND pid <> pg_backend_pid()").fetchall()
    return [int(row[0]) for row in rows]


def cpu(pids: list[int]) -> float:
    return sum(tree_cpu_seconds(pid) for pid in pids)


async def starts(client: httpx.AsyncClient, base: str, first: int, count: int,
                 in_flight: int) -> None:
    async def connection(number: int) -> None:
        for n in range(first + number, first + count, in_flight):
            check(await client.post(f"{base}/v1/hooks",
                                    json=hook_body(n, "SessionStart", source="startup")))

    await asyncio.gather(*(connection(n) for n in range(in_flight)))


async def measure(args: argparse.Namespace, src: str | None) -> tuple[float, float]:
    """Server and database CPU milliseconds per start, one run on a fresh database."""
    with tempfile.TemporaryDirectory(prefix="ctxdb-start-cpu-") as name, \
            scratch_database(args.pg_url, "ctxdb_bench_start") as url:
        folder = Path(name)
        secret = prepare(url, folder, args.live)
        async with serving(url, folder, src, args.live + args.starts + WARM_UP + 10,
                           secret) as (client, base, server):
            await starts(client, base, 0, WARM_UP, args.in_flight)
            pids = backends(url)
            server_before, database_before = tree_cpu_seconds(server.pid), cpu(pids)
            await starts(client, base, WARM_UP, args.starts, args.in_flight)
            server_ms = 1000 * (tree_cpu_seconds(server.pid) - server_before)
            database_ms = 1000 * (cpu(pids) - database_before)
            return server_ms / args.starts, database_ms / args.starts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--starts", type=int, default=400)
    parser.add_argument("--live", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--against", default=None,
                        help="the src folder of another version of ctxdb to compare with")
    args = parser.parse_args()
    sides: dict[str, str | None] = {"this": None}
    if args.against is not None:
        sides["against"] = str(Path(args.against).resolve())
    samples: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    print(f"load average before: {load_average()}")
    for number in range(args.rounds):
        order = list(sides) if number % 2 == 0 else list(reversed(sides))
        for side in order:
            samples[side].append(asyncio.run(measure(args, sides[side])))
        print(f"round {number + 1}: " + ", ".join(
            f"{side} server {samples[side][-1][0]:.2f} ms + database "
            f"{samples[side][-1][1]:.2f} ms" for side in sides), flush=True)
    medians = {side: (statistics.median(s for s, _ in values),
                      statistics.median(d for _, d in values))
               for side, values in samples.items()}
    print("CPU per start (medians): " + ", ".join(
        f"{side} server {s:.2f} ms + database {d:.2f} ms = {s + d:.2f} ms"
        for side, (s, d) in medians.items()))
    if "against" in medians:
        this, other = medians["this"], medians["against"]
        print(f"this / against: server {this[0] / other[0]:.2f}x, database "
              f"{this[1] / other[1]:.2f}x, both {sum(this) / sum(other):.2f}x")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
