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

The HTTP client is aiohttp's, not httpx's (which the rest of the project uses): the agents
stand for processes on other machines, yet here they run on the same cores as the servers
and PostgreSQL, so every millisecond of CPU they spend is taken from what is measured.
httpx (with httpcore under it) parses and pools in pure Python; aiohttp parses answers in C
(llhttp) and waits for a pooled connection on a plain future, for a fraction of the CPU per
event. What goes on the wire is kept: the same routes, headers that matter (the bearer
token, the JSON content type) and byte-for-byte the same JSON bodies (httpx's compact
encoding, ``JSON_BODY``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

CLIENT = "claude-code"
# The weighted mix an agent draws its next event from (follow-ups come first: see the
# module docstring).
MIX = {"UserPromptSubmit": 30, "usage": 15, "store": 20, "claim": 10, "message": 10,
       "PreCompact": 5, "SessionEnd": 5}
JITTER = 0.2  # each wait is the period times a factor drawn from 1 ± JITTER
KEPT_ERRORS = 5
# A request body as httpx (and so ctxdb's own client) encodes it; aiohttp's default,
# json.dumps as is, would add spaces after the separators.
JSON_BODY = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"),
                              allow_nan=False)


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
    # At most as many requests in flight as the pool has connections, the others waiting in
    # the order they were sent: aiohttp's pool gives a released connection to whichever
    # request asks next, ahead of those already waiting, which under load starved some of
    # them for seconds (a tail of the client's making, not the server's).
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


@dataclass(frozen=True, slots=True)
class Answer:
    """A server's whole answer (read before the event's latency is taken, as httpx does)."""

    status_code: int
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class Client:
    """The agents' one HTTP client: a pooled aiohttp session, with the two calls they make."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def post(self, url: str, json: Any) -> Answer:
        return await self.send("POST", url, json)

    async def put(self, url: str, json: Any) -> Answer:
        return await self.send("PUT", url, json)

    async def send(self, method: str, url: str, body: Any) -> Answer:
        async with self.session.request(method, url, json=body) as answer:
            return Answer(answer.status, await answer.read())


Action = Callable[[Client, Fleet, Agent], Awaitable[Answer]]


def hook_body(fleet: Fleet, agent: Agent, event: str, **fields: Any) -> dict[str, Any]:
    """The body ``ctxdb hook`` posts to ``/v1/hooks`` (ctxdb.hooks.remote)."""
    payload = {"session_id": agent.session_id, "transcript_path": None,
               "cwd": f"/home/agent-{agent.number}", "hook_event_name": event, **fields}
    repo = None if event == "SessionEnd" else {
        "repo_key": fleet.repo_key, "name": "fleet", "worktree": f"/home/agent-{agent.number}",
        "branch": f"agent-{agent.number}"}
    return {"client": CLIENT, "event": payload, "repo": repo, "host": f"host-{agent.number}"}


async def hook(client: Client, fleet: Fleet, agent: Agent, event: str,
               **fields: Any) -> Answer:
    return await client.post(f"{agent.base}/v1/hooks",
                             json=hook_body(fleet, agent, event, **fields))


async def session_start(client: Client, fleet: Fleet, agent: Agent,
                        source: str = "startup") -> Answer:
    answer = await hook(client, fleet, agent, "SessionStart", source=source)
    if answer.status_code == 200:
        if answer.json()["output"] is None:
            raise RuntimeError("SessionStart gave no context (no pack)")
        if source == "startup":
            fleet.instances.append(agent.instance_id)
    return answer


async def prompt(client: Client, fleet: Fleet, agent: Agent) -> Answer:
    return await hook(client, fleet, agent, "UserPromptSubmit", prompt="carry on")


async def usage(client: Client, fleet: Fleet, agent: Agent) -> Answer:
    return await client.put(
        f"{project_url(fleet, agent)}/instances/{agent.instance_id}/usage",
        json={"tokens": agent.rng.randint(5_000, 150_000)})


async def store(client: Client, fleet: Fleet, agent: Agent) -> Answer:
    answer = await client.post(f"{project_url(fleet, agent)}/context", json={
        "content": f"agent {agent.number} noted step {agent.rng.randint(1, 10**9)}: the cache "
                   "key must include the tenant", "priority": "MEDIUM",
        "content_type": "decision"})
    if answer.status_code == 201:
        fleet.acknowledged["store"].append(int(answer.json()["item_id"]))
    return answer


async def claim(client: Client, fleet: Fleet, agent: Agent) -> Answer:
    answer = await client.post(f"{project_url(fleet, agent)}/tasks/claim",
                               json={"instance_id": agent.instance_id})
    if answer.status_code == 200 and (task := answer.json()["task"]) is not None:
        agent.task = (int(task["task_id"]), int(task["epoch"]))
        agent.pending.insert(0, "complete")
    return answer


async def complete(client: Client, fleet: Fleet, agent: Agent) -> Answer:
    assert agent.task is not None
    task_id, epoch = agent.task
    answer = await client.post(f"{project_url(fleet, agent)}/tasks/{task_id}/complete",
                               json={"epoch": epoch, "result": {"ok": True}})
    if answer.status_code == 200:
        fleet.acknowledged["complete"].append(task_id)
        agent.task = None
    return answer


async def message(client: Client, fleet: Fleet, agent: Agent) -> Answer:
    answer = await client.post(f"{project_url(fleet, agent)}/messages", json={
        "recipient_kind": "instance", "recipient": agent.rng.choice(fleet.instances),
        "subject": "status", "body": {"from": agent.instance_id, "done": agent.session}})
    if answer.status_code == 201:
        fleet.acknowledged["message"].append(int(answer.json()["message_id"]))
    return answer


async def reload(client: Client, fleet: Fleet, agent: Agent) -> Answer:
    return await session_start(client, fleet, agent, "compact")


async def pre_compact(client: Client, fleet: Fleet, agent: Agent) -> Answer:
    answer = await hook(client, fleet, agent, "PreCompact", trigger="manual",
                        custom_instructions="")
    agent.pending.insert(0, "SessionStart(compact)")  # the reload after the compaction
    return answer


async def session_end(client: Client, fleet: Fleet, agent: Agent) -> Answer:
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


async def live(client: Client, fleet: Fleet, agent: Agent, until: float) -> None:
    """One agent: its events at the jittered period until ``until`` (loop time)."""
    loop = asyncio.get_running_loop()
    due = loop.time() + agent.rng.uniform(0, fleet.period)  # the fleet does not start at once
    while due < until:
        await asyncio.sleep(max(0.0, due - loop.time()))
        fleet.lags.append(max(0.0, loop.time() - due))
        await one_event(client, fleet, agent, agent.next_event())
        due += fleet.period * agent.rng.uniform(1 - JITTER, 1 + JITTER)


async def one_event(client: Client, fleet: Fleet, agent: Agent, kind: str) -> None:
    if kind == "message" and not fleet.instances:
        kind = "UserPromptSubmit"  # nobody to write to yet
    started = time.perf_counter()  # a wait for a free connection counts in the latency
    try:
        async with fleet.in_flight:
            answer = await ACTIONS[kind](client, fleet, agent)
    except (aiohttp.ClientError, TimeoutError, RuntimeError, ValueError, KeyError) as exc:
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
    # would close it: else a request sent as the server closes it fails.
    fleet.in_flight = asyncio.Semaphore(connections)
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=0,
                                     keepalive_timeout=2.0)
    # The API sets no cookie (only the dashboard's login does): none to keep or parse.
    session = aiohttp.ClientSession(
        connector=connector, headers={"Authorization": f"Bearer {fleet.token}"},
        json_serialize=JSON_BODY, cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None, connect=60.0, sock_read=60.0))
    cpu = time.process_time()
    async with session:
        client = Client(session)
        loop = asyncio.get_running_loop()
        start = loop.time()
        fleet.started = time.perf_counter()
        crowd = [Agent(n, bases[n % len(bases)], random.Random(seed * 100_003 + n))
                 for n in range(agents)]
        await asyncio.gather(*(live(client, fleet, a, start + seconds) for a in crowd))
        fleet.client_cpu_s = time.process_time() - cpu
        return loop.time() - start
