"""The simulated agents of bench/fleet.py: coroutines on one event loop, one HTTP client.

Each agent lives a coding session as a client's hooks and an agent's tool calls would, one
event at a time at a jittered period (one event every ``period`` seconds on average): it
starts with ``SessionStart`` (the server renders the project's pack), then draws from a
weighted mix of ``UserPromptSubmit`` (the heartbeat), a usage report, a context store, a task
claim (followed by completing the task it got), a message to another agent, ``PreCompact``
(a handoff, followed by ``SessionStart`` of source compact) and ``SessionEnd`` (followed by a
new session). An event is one HTTP request, timed from the moment it is sent; an agent waits
for its answer before its next event, so a slow server is seen as a rate below the one
offered (and as lag: how late events start), not hidden.

What the server acknowledged (stored items, sent messages, completed tasks) is kept, for the
check that nothing acknowledged was lost.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

if importlib.util.find_spec("sniffio") is None:
    # httpcore tries ``import sniffio`` on every request; without the package each failed
    # import searches sys.path again (a third of the agents' CPU time with a thousand of
    # them). A None entry makes the import fail at once, which is what httpcore expects.
    sys.modules["sniffio"] = None  # type: ignore[assignment]
CLIENT = "claude-code"
# The weighted mix an agent draws its next event from (follow-ups come first: see the
# module docstring).
MIX = {"UserPromptSubmit": 30, "usage": 15, "store": 20, "claim": 10, "message": 10,
       "PreCompact": 5, "SessionEnd": 5}
JITTER = 0.2  # each wait is the period times a factor drawn from 1 ± JITTER
KEPT_ERRORS = 5


@dataclass
class Fleet:
    """What the agents share: where to send, and what they measured."""

    project_id: str
    token: str
    repo_key: str
    period: float
    started: float = 0.0
    # (sent at, seconds to the answer) of each answered event, by event; "sent at" counts
    # from the start of the run.
    latencies: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    lags: list[float] = field(default_factory=list)  # seconds an event started after it was due
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)
    acknowledged: dict[str, list[int]] = field(
        default_factory=lambda: {"store": [], "message": [], "complete": []})
    instances: list[str] = field(default_factory=list)  # those whose SessionStart succeeded
    # At most as many requests in flight as the pool has connections: the pool itself
    # (httpcore) spends time on every waiting request, which with a thousand agents made the
    # client, not the server, the bottleneck.
    in_flight: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(100))
    client_cpu_s: float = 0.0  # CPU time of this process during the run

    def failed(self, kind: str, message: str) -> None:
        self.errors += 1
        if len(self.first_errors) < KEPT_ERRORS:
            self.first_errors.append(f"{kind}: {message}"[:300])


@dataclass
class Agent:
    number: int
    base: str  # the server (replica) this agent talks to
    rng: random.Random
    session: int = 0
    task: tuple[int, int] | None = None  # (task id, epoch) of the task it holds
    pending: list[str] = field(default_factory=lambda: ["SessionStart"])

    @property
    def session_id(self) -> str:
        return f"fleet-{self.number}-{self.session}"

    @property
    def instance_id(self) -> str:
        return f"{CLIENT}-{self.session_id}"

    def next_event(self) -> str:
        if self.pending:
            return self.pending.pop(0)
        return self.rng.choices(list(MIX), weights=list(MIX.values()))[0]


Action = Callable[[httpx.AsyncClient, Fleet, Agent], Awaitable[httpx.Response]]


def hook_body(fleet: Fleet, agent: Agent, event: str, **fields: Any) -> dict[str, Any]:
    """The body ``ctxdb hook`` posts to ``/v1/hooks`` (ctxdb.hooks.remote)."""
    payload = {"session_id": agent.session_id, "transcript_path": None,
               "cwd": f"/home/agent-{agent.number}", "hook_event_name": event, **fields}
    repo = None if event == "SessionEnd" else {
        "repo_key": fleet.repo_key, "name": "fleet", "worktree": f"/home/agent-{agent.number}",
        "branch": f"agent-{agent.number}"}
    return {"client": CLIENT, "event": payload, "repo": repo, "host": f"host-{agent.number}"}


async def hook(client: httpx.AsyncClient, fleet: Fleet, agent: Agent, event: str,
               **fields: Any) -> httpx.Response:
    return await client.post(f"{agent.base}/v1/hooks",
                             json=hook_body(fleet, agent, event, **fields))


async def session_start(client: httpx.AsyncClient, fleet: Fleet, agent: Agent,
                        source: str = "startup") -> httpx.Response:
    answer = await hook(client, fleet, agent, "SessionStart", source=source)
    if answer.status_code == 200:
        if answer.json()["output"] is None:
            raise RuntimeError("SessionStart gave no context (no pack)")
        if source == "startup":
            fleet.instances.append(agent.instance_id)
    return answer


async def prompt(client: httpx.AsyncClient, fleet: Fleet, agent: Agent) -> httpx.Response:
    return await hook(client, fleet, agent, "UserPromptSubmit", prompt="carry on")


async def usage(client: httpx.AsyncClient, fleet: Fleet, agent: Agent) -> httpx.Response:
    return await client.put(
        f"{project_url(fleet, agent)}/instances/{agent.instance_id}/usage",
        json={"tokens": agent.rng.randint(5_000, 150_000)})


async def store(client: httpx.AsyncClient, fleet: Fleet, agent: Agent) -> httpx.Response:
    answer = await client.post(f"{project_url(fleet, agent)}/context", json={
        "content": f"agent {agent.number} noted step {agent.rng.randint(1, 10**9)}: the cache "
                   "key must include the tenant", "priority": "MEDIUM",
        "content_type": "decision"})
    if answer.status_code == 201:
        fleet.acknowledged["store"].append(int(answer.json()["item_id"]))
    return answer


async def claim(client: httpx.AsyncClient, fleet: Fleet, agent: Agent) -> httpx.Response:
    answer = await client.post(f"{project_url(fleet, agent)}/tasks/claim",
                               json={"instance_id": agent.instance_id})
    if answer.status_code == 200 and (task := answer.json()["task"]) is not None:
        agent.task = (int(task["task_id"]), int(task["epoch"]))
        agent.pending.insert(0, "complete")
    return answer


async def complete(client: httpx.AsyncClient, fleet: Fleet, agent: Agent) -> httpx.Response:
    assert agent.task is not None
    task_id, epoch = agent.task
    answer = await client.post(f"{project_url(fleet, agent)}/tasks/{task_id}/complete",
                               json={"epoch": epoch, "result": {"ok": True}})
    if answer.status_code == 200:
        fleet.acknowledged["complete"].append(task_id)
        agent.task = None
    return answer


async def message(client: httpx.AsyncClient, fleet: Fleet, agent: Agent) -> httpx.Response:
    answer = await client.post(f"{project_url(fleet, agent)}/messages", json={
        "recipient_kind": "instance", "recipient": agent.rng.choice(fleet.instances),
        "subject": "status", "body": {"from": agent.instance_id, "done": agent.session}})
    if answer.status_code == 201:
        fleet.acknowledged["message"].append(int(answer.json()["message_id"]))
    return answer


async def reload(client: httpx.AsyncClient, fleet: Fleet, agent: Agent) -> httpx.Response:
    return await session_start(client, fleet, agent, "compact")


async def pre_compact(client: httpx.AsyncClient, fleet: Fleet, agent: Agent
                      ) -> httpx.Response:
    answer = await hook(client, fleet, agent, "PreCompact", trigger="manual",
                        custom_instructions="")
    agent.pending.insert(0, "SessionStart(compact)")  # the reload after the compaction
    return answer


async def session_end(client: httpx.AsyncClient, fleet: Fleet, agent: Agent
                      ) -> httpx.Response:
    answer = await hook(client, fleet, agent, "SessionEnd", reason="other")
    agent.session += 1
    agent.pending.insert(0, "SessionStart")
    return answer


ACTIONS: dict[str, Action] = {
    "SessionStart": session_start, "SessionStart(compact)": reload, "UserPromptSubmit": prompt,
    "usage": usage, "store": store, "claim": claim, "complete": complete, "message": message,
    "PreCompact": pre_compact, "SessionEnd": session_end,
}


def project_url(fleet: Fleet, agent: Agent) -> str:
    return f"{agent.base}/v1/projects/{fleet.project_id}"


async def live(client: httpx.AsyncClient, fleet: Fleet, agent: Agent, until: float) -> None:
    """One agent: its events at the jittered period until ``until`` (loop time)."""
    loop = asyncio.get_running_loop()
    due = loop.time() + agent.rng.uniform(0, fleet.period)  # the fleet does not start at once
    while due < until:
        await asyncio.sleep(max(0.0, due - loop.time()))
        fleet.lags.append(max(0.0, loop.time() - due))
        await one_event(client, fleet, agent, agent.next_event())
        due += fleet.period * agent.rng.uniform(1 - JITTER, 1 + JITTER)


async def one_event(client: httpx.AsyncClient, fleet: Fleet, agent: Agent, kind: str) -> None:
    if kind == "message" and not fleet.instances:
        kind = "UserPromptSubmit"  # nobody to write to yet
    started = time.perf_counter()  # a wait for a free connection counts in the latency
    try:
        async with fleet.in_flight:
            answer = await ACTIONS[kind](client, fleet, agent)
    except (httpx.HTTPError, RuntimeError, ValueError, KeyError) as exc:
        fleet.failed(kind, f"{type(exc).__name__}: {exc}")
        return
    if answer.status_code >= 300:
        fleet.failed(kind, f"HTTP {answer.status_code}: {answer.text[:200]}")
        return
    fleet.latencies.setdefault(kind, []).append(
        (started - fleet.started, time.perf_counter() - started))


async def run_fleet(fleet: Fleet, bases: list[str], agents: int, seconds: float,
                    connections: int, seed: int = 12) -> float:
    """Run ``agents`` agents (round-robin over ``bases``) for ``seconds``; the wall time
    from the first event due to the last answer."""
    # An idle connection is dropped before the server's keep-alive timeout (uvicorn: 5 s)
    # would close it: else a request sent as the server closes it fails (ReadError).
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                          keepalive_expiry=2.0)
    headers = {"Authorization": f"Bearer {fleet.token}"}
    fleet.in_flight = asyncio.Semaphore(connections)
    cpu = time.process_time()
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=60.0) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()
        fleet.started = time.perf_counter()
        crowd = [Agent(n, bases[n % len(bases)], random.Random(seed * 100_003 + n))
                 for n in range(agents)]
        await asyncio.gather(*(live(client, fleet, a, start + seconds) for a in crowd))
        fleet.client_cpu_s = time.process_time() - cpu
        return loop.time() - start
