"""The CPU time one ``ctxdb serve`` process spends per request of the fleet's mix (issue 12).

One server on SQLite (``--workers 1``), a fresh database per run: a project, a write token,
seed items and tasks, ``--agents`` sessions started through ``POST /v1/hooks``, then a
warm-up and ``--requests`` requests, ``--in-flight`` at a time, drawn from the mix of
bench/fleet_agents.py less its rare events: UserPromptSubmit, a usage report, a context
store, a task claim (and its completion), a message. The server's CPU time (user + system,
from ``/proc``) over those requests, per request, is the figure: it follows the server's own
work much more than the latencies do on a shared machine.

With ``--against DIR`` (the ``src`` folder of another version of ctxdb, say an older
checkout's), the same runs are made with that version's server too, interleaved, the order
alternating, and the ratio of the medians is printed: an A/B of a change to the server on
the same machine at the same time. The load average is printed; figures are evidence, not
a test.

With ``--kind K`` (repeatable), each kind named is measured alone, one after another: its
own runs, medians and ratio. The kinds are the mix's and two rarer hook events, ``compact``
(PreCompact, with no transcript sent) and ``end`` (SessionEnd; each agent ends its session
once, then again: the same statements). ``--backend postgres`` runs the server on a
PostgreSQL database made for each run (``--pg-url``'s server; dropped after it).

Usage:
    python bench/server_cpu.py [--requests 2000] [--rounds 3] [--in-flight 8]
                               [--agents 50] [--against OTHER/src] [--kind K ...]
                               [--backend sqlite|postgres] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx

from ctxdb.service import Ctxdb
from data import bench_settings
from hooks import CTXDB, load_average
from process_cpu import tree_cpu_seconds
from remote_hook import free_port

MIX = {"prompt": 30, "usage": 15, "store": 20, "claim": 10, "message": 10}
KINDS = [*MIX, "compact", "end"]
WARM_UP = 10  # requests per connection before the measured ones


def prepare(url: str, folder: Path, tasks: int) -> tuple[str, str]:
    """The project (with repository key ``bench``) and a write token's secret."""
    with Ctxdb.open(bench_settings(url, folder)) as db:
        project_id = str(db.projects.create("bench", repo_key="bench")["project_id"])
        secret = str(db.access_tokens.create(project_id, "write")["secret"])
        for n in range(40):
            db.context.store(project_id, f"rule {n}: keep the build green", priority="HIGH",
                             content_type="rule")
        for n in range(tasks):
            db.tasks.create(project_id, f"task {n}")
    return project_id, secret


def server_command(src: str | None) -> list[str]:
    if src is None:
        return [str(CTXDB)]
    return [sys.executable, "-c", "import sys; from ctxdb.cli.main import main; "
            "sys.argv[0] = 'ctxdb'; main()"]


def hook_body(agent: int, event: str, **fields: Any) -> dict[str, Any]:
    return {"client": "claude-code", "host": "bench",
            "event": {"session_id": f"bench-{agent}", "transcript_path": None,
                      "cwd": f"/home/agent-{agent}", "hook_event_name": event, **fields},
            "repo": {"repo_key": "bench", "name": "bench", "worktree": f"/home/agent-{agent}",
                     "branch": f"agent-{agent}"}}


class Mix:
    """One request of the mix at a time, for agent ``n``."""

    def __init__(self, client: httpx.AsyncClient, base: str, project_id: str,
                 agents: int, weights: dict[str, int] | None = None) -> None:
        self.client, self.base = client, base
        self.weights = MIX if weights is None else weights
        self.project = f"{base}/v1/projects/{project_id}"
        self.instances = [f"claude-code-bench-{n}" for n in range(agents)]
        self.rng = random.Random(5)

    async def start_sessions(self) -> None:
        for n in range(len(self.instances)):
            check(await self.client.post(f"{self.base}/v1/hooks",
                                         json=hook_body(n, "SessionStart", source="startup")))

    async def one(self, n: int) -> None:
        kind = self.rng.choices(list(self.weights), weights=list(self.weights.values()))[0]
        instance, post = self.instances[n], self.client.post
        if kind == "prompt":
            check(await post(f"{self.base}/v1/hooks",
                             json=hook_body(n, "UserPromptSubmit", prompt="carry on")))
        elif kind == "compact":
            check(await post(f"{self.base}/v1/hooks",
                             json=hook_body(n, "PreCompact", trigger="manual",
                                            custom_instructions="")))
        elif kind == "end":
            check(await post(f"{self.base}/v1/hooks",
                             json=hook_body(n, "SessionEnd", reason="other")))
        elif kind == "usage":
            check(await self.client.put(f"{self.project}/instances/{instance}/usage",
                                        json={"tokens": self.rng.randint(5_000, 150_000)}))
        elif kind == "store":
            check(await post(f"{self.project}/context", json={
                "content": f"agent {n} noted {self.rng.random()}: the cache key needs the "
                           "tenant", "priority": "MEDIUM", "content_type": "decision"}))
        elif kind == "claim":
            task = check(await post(f"{self.project}/tasks/claim",
                                    json={"instance_id": instance})).json()["task"]
            if task is not None:
                check(await post(f"{self.project}/tasks/{task['task_id']}/complete",
                                 json={"epoch": task["epoch"], "result": {"ok": True}}))
        else:
            check(await post(f"{self.project}/messages", json={
                "recipient_kind": "instance", "recipient": self.rng.choice(self.instances),
                "subject": "status", "body": {"from": instance}}))

    async def run(self, connections: int, each: int) -> None:
        async def connection(number: int) -> None:
            for i in range(each):
                await self.one((number * 7 + i) % len(self.instances))

        await asyncio.gather(*(connection(n) for n in range(connections)))


def check(answer: httpx.Response) -> httpx.Response:
    if answer.status_code >= 300:
        raise SystemExit(f"{answer.request.url}: HTTP {answer.status_code} {answer.text[:300]}")
    return answer


@contextmanager
def database(args: argparse.Namespace, folder: Path) -> Iterator[str]:
    """The URL of a fresh database for one run: a file in ``folder``, or on PostgreSQL one
    made for the run and dropped after it."""
    if args.backend == "sqlite":
        yield str(folder / "bench.db")
        return
    from fleet import scratch_database

    with scratch_database(args.pg_url, "ctxdb_bench_server") as url:
        yield url


async def measure(args: argparse.Namespace, src: str | None, kind: str | None) -> float:
    """CPU milliseconds of the server per measured request (of ``kind`` only, when given),
    one run on a fresh database."""
    with tempfile.TemporaryDirectory(prefix="ctxdb-server-cpu-") as name, \
            database(args, Path(name)) as url:
        folder = Path(name)
        each = max(1, args.requests // args.in_flight)
        project_id, secret = prepare(url, folder, args.in_flight * (each + WARM_UP))
        async with serving(url, folder, src, max(10, args.agents), secret) as (client, base,
                                                                               server):
            mix = Mix(client, base, project_id, args.agents,
                      None if kind is None else {kind: 1})
            await mix.start_sessions()
            await mix.run(args.in_flight, WARM_UP)
            before = tree_cpu_seconds(server.pid)
            await mix.run(args.in_flight, each)
            return 1000 * (tree_cpu_seconds(server.pid) - before) / (each * args.in_flight)


@asynccontextmanager
async def serving(url: str, folder: Path, src: str | None, max_instances: int, secret: str
                  ) -> AsyncIterator[tuple[httpx.AsyncClient, str, subprocess.Popen[bytes]]]:
    """One ``ctxdb serve`` (one worker; ``src``'s code when given) on ``url``, its home in
    ``folder``, answering: a client holding the token ``secret``, the server's base URL and
    its process; the server is stopped afterwards."""
    env = {**os.environ, "HOME": str(folder), "XDG_CONFIG_HOME": str(folder),
           "CTXDB_MAX_INSTANCES_PER_PROJECT": str(max_instances)}
    if src is not None:
        env["PYTHONPATH"] = src
    port = free_port()
    with (folder / "server.log").open("wb") as log:
        server = subprocess.Popen([*server_command(src), "--url", url, "serve", "--port",
                                   str(port), "--workers", "1"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {secret}"},
                                     timeout=60) as client:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(client, base, server)
            yield client, base, server
    finally:
        server.terminate()
        server.wait(60)


async def wait_ready(client: httpx.AsyncClient, base: str, server: subprocess.Popen[bytes]
                     ) -> None:
    for _ in range(600):
        if server.poll() is not None:
            raise SystemExit("the server stopped before it answered")
        try:
            if (await client.get(f"{base}/healthz")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("the server did not answer within 60 s")


def main() -> int:
    from fleet import DEFAULT_PG_URL

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--against", default=None,
                        help="the src folder of another version of ctxdb to compare with")
    parser.add_argument("--kind", action="append", choices=KINDS, default=None,
                        help="measure this kind of request alone (repeatable)")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    sides: dict[str, str | None] = {"this": None}
    if args.against is not None:
        sides["against"] = str(Path(args.against).resolve())
    print(f"load average before: {load_average()}")
    for kind in args.kind or [None]:
        compare(args, sides, kind)
    print(f"load average after: {load_average()}")
    return 0


def compare(args: argparse.Namespace, sides: dict[str, str | None], kind: str | None) -> None:
    """The rounds of one kind (None: the mix), the sides interleaved, and their medians."""
    label = "the mix" if kind is None else kind
    samples: dict[str, list[float]] = {side: [] for side in sides}
    for number in range(args.rounds):
        order = list(sides) if number % 2 == 0 else list(reversed(sides))
        for side in order:
            samples[side].append(asyncio.run(measure(args, sides[side], kind)))
        print(f"{label} round {number + 1}: " + ", ".join(
            f"{side} {samples[side][-1]:.3f} ms" for side in sides), flush=True)
    medians = {side: statistics.median(values) for side, values in samples.items()}
    line = f"{label}: server CPU per request (median): " + ", ".join(
        f"{side} {value:.3f} ms" for side, value in medians.items())
    if "against" in medians:
        line += f"; this / against: {medians['this'] / medians['against']:.2f}x"
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
