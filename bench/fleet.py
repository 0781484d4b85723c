"""A fleet of simulated agents against ``ctxdb serve``: sustained events/s, latency, errors.

For each backend and fleet size N: a fresh database (a SQLite file, or a PostgreSQL database
created for the run and dropped after), a project and a write token made with the CLI
(``ctxdb project create``, ``ctxdb token create``), the project given a few context items and
N tasks, then real ``ctxdb serve`` processes: one on SQLite, two replicas on the one
PostgreSQL database (agents split round-robin). N agents (bench/fleet_agents.py: coroutines
sharing one pooled aiohttp client) each send one event every ``--period`` seconds,
jittered, for ``--seconds``: the mix of an agent's session (SessionStart with its pack,
UserPromptSubmit, usage, stores, task claim and complete, messages, PreCompact handoffs,
SessionEnd) through ``/v1/hooks`` and the ``/v1`` routes. The project's cap on live instances
is raised to N for the servers (``CTXDB_MAX_INSTANCES_PER_PROJECT``; 10 by default).

Reported per run: the rate offered (N / period) against the rate sustained (answers per
second of wall time), p50, p99 and max latency of the answers (from the moment the event is
sent, a wait for one of the client's ``--connections`` included), p99 of the steady state
(events sent after the first period, when every agent has made its SessionStart), how late
events started (p99 lag: a server too slow holds its agents back), errors (any answer but
2xx, or none) with the first few messages, and the check that nothing acknowledged was lost:
after the servers stopped, every stored item, sent message and completed task the server
acknowledged is read back through the library. And the CPU time of the ``ctxdb serve``
processes (replicas and their workers, from ``/proc``) per answered event, with the share of
a core the servers and the agents' own process used (and the agents' CPU per event: what they
take from the servers' cores): on a shared machine the latencies follow the load, the CPU per
event much less (though a process given little of a core spends more).

The goal (issue 12): 1,000 agents at one event every 5 s on this machine with p99 <= 250 ms
and 0 errors; each row is judged against it (p99, errors, and the offered rate sustained to
within 5%). The agents run on the same cores as the servers, and the load average is printed:
figures on a shared machine are evidence, not a test.

Usage:
    python bench/fleet.py [--agents 10,100,1000] [--seconds 30] [--period 5]
                          [--backend sqlite,postgres] [--pg-url URL] [--workers N]
                          [--connections N] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ctxdb.service import Ctxdb
from data import bench_settings
from fleet_agents import Fleet, run_fleet
from hooks import CTXDB, load_average
from process_cpu import tree_cpu_seconds
from remote_hook import free_port

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
GOAL_P99_MS = 250.0
GOAL_SUSTAINED = 0.95  # of the offered rate
REPLICAS = {"sqlite": 1, "postgres": 2}
SEED_ITEMS = {"CRITICAL": 2, "HIGH": 20, "LOW": 20}  # the agents store MEDIUM items


@dataclass
class Outcome:
    backend: str
    agents: int
    replicas: int
    seconds: float
    offered_per_s: float
    sustained_per_s: float
    events: int
    p50_ms: float
    p99_ms: float
    steady_p99_ms: float  # of the events sent after the first period (all agents started)
    max_ms: float
    lag_p99_ms: float
    errors: int
    first_errors: list[str]
    acknowledged: dict[str, int]
    lost: dict[str, int]
    by_event: dict[str, dict[str, float]] = field(default_factory=dict)
    load: str = ""
    client_cpu_share: float = 0.0  # of one core, the agents' own process
    client_cpu_ms_per_event: float = 0.0  # the agents' process: bench overhead, not product
    # CPU time of the ctxdb serve processes (all replicas, their workers included) during
    # the run, per answered event: robust to the machine's load, unlike the latencies.
    server_cpu_ms_per_event: float = 0.0
    server_cpu_share: float = 0.0  # of one core
    # PostgreSQL's processes (when the server runs on this machine), all its databases: the
    # third user of the same cores.
    database_cpu_share: float | None = None  # of one core

    @property
    def passed(self) -> bool:
        return (self.p99_ms <= GOAL_P99_MS and self.errors == 0 and not any(self.lost.values())
                and self.sustained_per_s >= GOAL_SUSTAINED * self.offered_per_s)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the database, the project and the servers ---------------------------------------------


@contextmanager
def database(backend: str, workdir: Path, pg_url: str) -> Iterator[str]:
    """The URL of an empty database for one run (dropped or deleted afterwards)."""
    if backend == "sqlite":
        yield str(workdir / "fleet.db")
        return
    with scratch_database(pg_url, "ctxdb_bench_fleet") as url:
        yield url


@contextmanager
def scratch_database(pg_url: str, prefix: str) -> Iterator[str]:
    """The URL of a PostgreSQL database made for one run on ``pg_url``'s server (named
    ``prefix`` and a random part) and dropped after it."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield urlunsplit(urlsplit(pg_url)._replace(path="/" + name))
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def cli(url: str, env: dict[str, str], *arguments: str) -> dict[str, Any]:
    done = subprocess.run([str(CTXDB), "--url", url, *arguments, "--json"], env=env,
                          capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"ctxdb {' '.join(arguments)} failed: {done.stderr}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def prepare(url: str, workdir: Path, env: dict[str, str], agents: int) -> Fleet:
    """Schema, project (with its repository key), write token, seed items and tasks."""
    settings = bench_settings(url, workdir)
    Ctxdb.open(settings).close()  # creates the schema
    repo_key = f"fleet-{secrets.token_hex(4)}"
    project_id = str(cli(url, env, "project", "create", "fleet", "--repo-key",
                         repo_key)["project_id"])
    token = cli(url, env, "token", "create", "--project", project_id, "--scope", "write",
                "--name", "fleet")
    with Ctxdb.open(settings) as db:
        for priority, count in SEED_ITEMS.items():
            for n in range(count):
                db.context.store(project_id, f"{priority.lower()} rule {n}: keep the build "
                                 f"green and the migrations numbered", priority=priority,
                                 content_type="rule")
        for n in range(max(10, agents)):
            db.tasks.create(project_id, f"task {n}", description="fix one failing test")
    return Fleet(project_id, str(token["secret"]), repo_key, period=0.0)


def start_server(url: str, workdir: Path, env: dict[str, str], name: str,
                 workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log_path = workdir / f"{name}.log"
    process = subprocess.Popen(
        [str(CTXDB), "--url", url, "serve", "--port", str(port), "--workers", str(workers)],
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return process, base
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server did not start: {log_path.read_text()[-3000:]}")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, as an operator stops a server: requests in flight finish first."""
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(60)


# --- one run ---------------------------------------------------------------------------------


def run_one(backend: str, agents: int, args: argparse.Namespace, workdir: Path) -> Outcome:
    # The whole fleet works on one project: its cap on live instances (10 by default) is
    # raised to the fleet's size, as an operator running such a fleet would.
    env = {**os.environ, "HOME": str(workdir), "XDG_CONFIG_HOME": str(workdir / "config"),
           "CTXDB_MAX_INSTANCES_PER_PROJECT": str(max(10, agents))}
    with database(backend, workdir, args.pg_url) as url:
        log(f"{backend}, {agents} agents: preparing the project ...")
        fleet = prepare(url, workdir, env, agents)
        fleet.period = args.period
        servers = [start_server(url, workdir, env, f"{backend}-{agents}-{n}", args.workers)
                   for n in range(REPLICAS[backend])]
        load_before = load_average()
        try:
            log(f"{backend}, {agents} agents: running for {args.seconds:g} s ...")
            postmaster = local_postmaster(url) if backend == "postgres" else None
            cpu_before = servers_cpu(servers)
            database_before = tree_cpu_seconds(postmaster) if postmaster else 0.0
            wall = run_loop(run_fleet(fleet, [base for _, base in servers], agents,
                                      args.seconds, args.connections))
            server_cpu = servers_cpu(servers) - cpu_before
            database_cpu = tree_cpu_seconds(postmaster) - database_before if postmaster \
                else None
        finally:
            stop([process for process, _ in servers])
        lost = lost_writes(bench_settings(url, workdir), fleet)
        if backend == "sqlite":
            for leftover in workdir.glob("fleet.db*"):
                leftover.unlink()
    result = outcome(backend, agents, args, fleet, wall, lost,
                     f"{load_before} / {load_average()}")
    result.server_cpu_share = server_cpu / wall
    result.server_cpu_ms_per_event = 1000 * server_cpu / max(1, result.events)
    if database_cpu is not None:
        result.database_cpu_share = database_cpu / wall
    return result


def local_postmaster(url: str) -> int | None:
    """The PostgreSQL server's main process when it runs on this machine (the parent of
    a backend whose process this machine has), else ``None``. Its backends are its
    children, so the servers' pooled connections are counted while they live."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    status = Path(f"/proc/{row[0]}/status") if row else None
    if status is None or not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    return None


def run_loop(main: Coroutine[Any, Any, float]) -> float:
    """The agents' event loop: uvloop's where installed (the server extra brings it), so that
    the agents, on the same cores as the servers, take less of them."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def servers_cpu(servers: list[tuple[subprocess.Popen[bytes], str]]) -> float:
    return sum(tree_cpu_seconds(process.pid) for process, _ in servers)


def lost_writes(settings: Any, fleet: Fleet) -> dict[str, int]:
    """How many acknowledged writes of each kind the database does not hold."""
    with Ctxdb.open(settings) as db:
        items = _paged_items(db, fleet.project_id)
        messages = {m["message_id"] for m in _paged(
            lambda before: db.messages.list(fleet.project_id, before=before, limit=500),
            "message_id")}
        done = {t["task_id"] for t in _paged(
            lambda after: db.tasks.list(fleet.project_id, status="done", after=after,
                                        limit=500), "task_id")}
    held = {"store": items, "message": messages, "complete": done}
    return {kind: len(set(ids) - held[kind]) for kind, ids in fleet.acknowledged.items()}


def _paged_items(db: Ctxdb, project_id: str) -> set[int]:
    ids: set[int] = set()
    after: int | None = 0
    while after is not None:
        page = db.context.page(project_id, "MEDIUM", after_sequence=after, limit=500)
        ids.update(int(item["item_id"]) for item in page["items"])
        after = page["next_after_sequence"]
    return ids


def _paged(fetch: Any, key: str) -> list[dict[str, Any]]:
    """Every row of a keyset-paged list (the last row's ``key`` is the next cursor)."""
    rows: list[dict[str, Any]] = []
    cursor = 0
    while page := fetch(cursor):
        rows += page
        cursor = int(page[-1][key])
    return rows


def outcome(backend: str, agents: int, args: argparse.Namespace, fleet: Fleet, wall: float,
            lost: dict[str, int], load: str) -> Outcome:
    every = sorted(s for values in fleet.latencies.values() for _, s in values)
    # After the first period every agent has started: the fleet's steady state.
    steady = sorted(s for values in fleet.latencies.values() for sent, s in values
                    if sent >= args.period)
    by_event = {kind: {"count": len(values),
                       "p50_ms": 1000 * statistics.median(s for _, s in values),
                       "p99_ms": 1000 * percentile(sorted(s for _, s in values), 0.99)}
                for kind, values in sorted(fleet.latencies.items())}
    return Outcome(
        backend, agents, REPLICAS[backend], wall, agents / args.period, len(every) / wall,
        len(every), 1000 * percentile(every, 0.5), 1000 * percentile(every, 0.99),
        1000 * percentile(steady, 0.99),
        1000 * (every[-1] if every else 0.0), 1000 * percentile(sorted(fleet.lags), 0.99),
        fleet.errors, fleet.first_errors,
        {kind: len(ids) for kind, ids in fleet.acknowledged.items()}, lost, by_event, load,
        fleet.client_cpu_s / wall, 1000 * fleet.client_cpu_s / max(1, len(every)))


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


# --- the report ------------------------------------------------------------------------------


HEADER = ("backend", "servers", "agents", "offered ev/s", "sustained ev/s", "p50 ms", "p99 ms",
          "p99 steady ms", "max ms", "lag p99 ms", "errors", "lost", "server CPU ms/ev",
          "goal")


def format_table(outcomes: list[Outcome]) -> str:
    rows = [HEADER]
    for o in outcomes:
        rows.append((o.backend, str(o.replicas), f"{o.agents:,}", f"{o.offered_per_s:,.1f}",
                     f"{o.sustained_per_s:,.1f}", f"{o.p50_ms:.1f}", f"{o.p99_ms:.1f}",
                     f"{o.steady_p99_ms:.1f}", f"{o.max_ms:.1f}", f"{o.lag_p99_ms:.1f}",
                     str(o.errors), str(sum(o.lost.values())),
                     f"{o.server_cpu_ms_per_event:.2f}", "PASS" if o.passed else "MISS"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.rjust(width) if i > 0 else cell.ljust(width)
                       for i, (cell, width) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def details(o: Outcome) -> str:
    events = ", ".join(f"{kind} {v['count']:.0f}: {v['p50_ms']:.0f}/{v['p99_ms']:.0f}"
                       for kind, v in o.by_event.items())
    acked = ", ".join(f"{n} {kind}" for kind, n in o.acknowledged.items())
    lines = [f"{o.backend}, {o.agents:,} agents ({o.seconds:.1f} s, load average "
             f"{o.load}; the agents' process used {o.client_cpu_share:.0%} of a core "
             f"({o.client_cpu_ms_per_event:.2f} ms per event), the servers "
             f"{o.server_cpu_share:.0%}"
             + (f", PostgreSQL {o.database_cpu_share:.0%}" if o.database_cpu_share is not None
                else "") + "):",
             f"  by event (count: p50/p99 ms): {events}",
             f"  acknowledged and read back after the servers stopped: {acked}; lost: "
             f"{sum(o.lost.values())}"]
    lines += [f"  error: {message}" for message in o.first_errors]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="10,100,1000",
                        help="fleet sizes, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run")
    parser.add_argument("--period", type=float, default=5.0,
                        help="mean seconds between two events of one agent")
    parser.add_argument("--backend", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="a PostgreSQL server on which to create the run's database")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per server")
    parser.add_argument("--connections", type=int, default=32,
                        help="the client's connection pool (requests in flight at most)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    sizes = [int(n) for n in args.agents.split(",")]
    backends = args.backend.split(",")
    if not set(backends) <= set(REPLICAS):
        parser.error(f"--backend: expected some of {', '.join(REPLICAS)}")
    outcomes = []
    with tempfile.TemporaryDirectory() as name:
        for backend in backends:
            for agents in sizes:
                outcomes.append(run_one(backend, agents, args, Path(name)))
    print(f"fleet of simulated agents against ctxdb serve: one event per agent every "
          f"{args.period:g} s (jittered) for {args.seconds:g} s; goal: p99 <= "
          f"{GOAL_P99_MS:.0f} ms, 0 errors, nothing lost, >= {GOAL_SUSTAINED:.0%} of the offered "
          f"rate sustained")
    print(format_table(outcomes))
    print()
    print("\n".join(details(o) for o in outcomes))
    if args.json:
        args.json.write_text(json.dumps(
            {"period": args.period, "seconds": args.seconds,
             "results": [{**asdict(o), "passed": o.passed} for o in outcomes]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
