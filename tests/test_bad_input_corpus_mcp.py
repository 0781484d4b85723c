"""The bad-input corpus through the MCP server, in process (see ``bad_input_corpus.py``).

The real stdio server (:func:`ctxdb.mcp.stdio.run_stdio`, the SDK's transport behind ctxdb's
line check) reads lines from a stream this test writes to and answers on one it reads, in an
event loop on a thread of its own. Each case is one line: a malformed JSON-RPC message (not
JSON, over the limits, wrong types, a bad id) or a ``tools/call`` with one argument
poisoned. Every request that carries an id gets exactly one answer with that id (one whose
id cannot be read is answered with id null; a notification gets none), a tool's refusal is a
tool error carrying a ctxdb error code or the SDK's argument validation (never a bare "Error
executing tool"), and the database is as it was.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import given, settings
from hypothesis import strategies as st

from bad_input_corpus import (
    CORPUS_SETTINGS,
    EXAMPLES,
    LONE_SURROGATE,
    ODD_TEXT,
    Poison,
    Unchanged,
    World,
    bad_content,
    bad_identifier,
    bad_number,
    build_world,
    counted,
    odd_query,
    unknown_id,
)
from ctxdb.mcp.server import build_server
from ctxdb.mcp.stdio import run_stdio
from ctxdb.mcp.tools import ContextTools

ANSWER_SECONDS = 20.0
TYPED = re.compile(r"\[[a-z_]+\]$")  # a ctxdb error's code ends its tool error


class Replies:
    """The server's stdout: each line it writes goes to a stream this test reads."""

    def __init__(self, send: Any) -> None:
        self.send = send

    async def write(self, text: str) -> None:
        await self.send.send(text)

    async def flush(self) -> None:
        return None


class Server:
    """``ctxdb mcp`` in this process: lines in, answers out, through a blocking portal."""

    def __init__(self, portal: BlockingPortal, world: World) -> None:
        self.portal = portal
        self.to_server, self.lines = anyio.create_memory_object_stream[str](100)
        self.replies, self.from_server = anyio.create_memory_object_stream[str](100)
        tools = ContextTools(world.db, world.project)
        self.done = portal.start_task_soon(run_stdio, build_server(lambda: tools, "all"),
                                           self.lines, Replies(self.replies))

    def send(self, line: str) -> None:
        self.portal.call(self.to_server.send, line)

    def receive(self) -> dict[str, Any]:
        async def one() -> str:
            with anyio.fail_after(ANSWER_SECONDS):
                return await self.from_server.receive()

        reply: dict[str, Any] = json.loads(self.portal.call(one))
        return reply

    def close(self) -> None:
        self.portal.call(self.to_server.aclose)  # the client closes stdin: the server ends
        self.done.result(timeout=ANSWER_SECONDS)
        for stream in (self.lines, self.replies, self.from_server):
            self.portal.call(stream.aclose)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Server, World]]:
    world = build_world(str(tmp_path / "corpus.db"), tmp_path)
    with start_blocking_portal() as portal:
        made = Server(portal, world)
        made.send(json.dumps({"jsonrpc": "2.0", "id": "init", "method": "initialize",
                              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                         "clientInfo": {"name": "corpus", "version": "1"}}}))
        assert made.receive()["id"] == "init"
        made.send('{"jsonrpc": "2.0", "method": "notifications/initialized"}')
        try:
            yield made, world
        finally:
            made.close()
            world.db.close()


# --- tool calls with one poisoned argument -----------------------------------------------------


def _over_json(poison: Poison) -> bool:
    """Poisons a JSON-RPC argument can carry without a client's JSON library coercing them
    into valid values ("12" for 12; true for 1)."""
    value = poison.value
    return not isinstance(value, bool) and value != "12"


def tool_calls(world: World) -> list[tuple[str, dict[str, Any], dict[str, st.SearchStrategy[
        Poison]]]]:
    """(tool, valid arguments, poisons per argument)."""
    content = bad_content(python_only=False)
    project = st.one_of(bad_identifier("project_id", json_only=True),
                        unknown_id("proj_", "project"))
    instance = st.one_of(bad_identifier("instance_id", json_only=True),
                         unknown_id("inst_", "instance"),
                         st.just(Poison(world.other["instance"], "foreign instance")))

    def number(what: str, key: str | None = None, low: int = 1) -> st.SearchStrategy[Poison]:
        return bad_number(what, foreign=None if key is None else world.other[key], low=low,
                          json_only=True).filter(_over_json)

    return [
        ("store_context", {"content": {"a": 1}, "priority": "HIGH", "content_type": "note"},
         {"content": content, "content_type": bad_identifier("content_type", json_only=True),
          "priority": st.builds(lambda t: Poison(t, "priority"), st.text(max_size=8).filter(
              lambda t: t.upper() not in ("CRITICAL", "HIGH", "MEDIUM", "LOW"))),
          "project_id": project, "phase_id": number("phase_id", "phase", low=0)}),
        ("memory_put", {"namespace": "user:prefs", "key": "theme", "value": 1},
         {"namespace": bad_identifier("namespace", json_only=True) | st.sampled_from(
             [Poison(t, "not a path") for t in ["a b", "::", "x:", "ü"]]),
          "key": bad_identifier("key", json_only=True), "value": content,
          "project_id": project}),
        ("message_send", {"body": {"hi": 1}, "to_instance": world.instance},
         {"body": content, "to_instance": instance, "project_id": project}),
        ("task_create", {"title": "t", "priority": 3},
         {"title": bad_identifier("title", json_only=True).filter(lambda p: p.value != ""),
          "priority": st.builds(lambda n: Poison(n, "task priority"),
                                st.integers(10**6 + 1, 10**40)),
          "depends_on": number("depends_on", "task").map(
              lambda p: Poison([world.task, p.value], p.label)),
          "project_id": project}),
        ("task_claim", {"instance_id": world.instance, "lease_seconds": 60},
         {"instance_id": instance, "project_id": project,
          "lease_seconds": st.sampled_from([Poison(v, f"lease {v!r}") for v in
                                            [0, -1, 1e300, 604801, "abc", [1]]])}),
        ("task_complete", {"task_id": world.task, "epoch": 1},
         {"task_id": number("task_id", "task"), "result": content, "project_id": project}),
        ("approval_request", {"gate_type": "deploy", "request": {"plan": 1}},
         {"gate_type": bad_identifier("gate_type", json_only=True), "request": content,
          "instance_id": instance, "project_id": project}),
        ("checkpoint_save", {"instance_id": world.instance, "state": {"s": 1}},
         {"instance_id": instance, "state": content, "project_id": project}),
        ("heartbeat", {"instance_id": world.instance},
         {"instance_id": instance, "phase_id": number("phase_id", "phase", low=0),
          "project_id": project}),
        ("session_append", {"session_id": world.session, "role": "user", "content": "hi"},
         {"session_id": bad_identifier("session_id", json_only=True)
          | unknown_id("sess_", "session"), "content": content,
          "role": st.sampled_from([Poison(v, "role") for v in ["robot", "", 3]])}),
        ("record_handoff", {"instance_id": world.instance, "summary": "s"},
         {"instance_id": instance, "summary": st.builds(
             lambda s, t: Poison(t + s, "summary with a surrogate"), LONE_SURROGATE, ODD_TEXT),
          "next_steps": st.builds(lambda p: Poison([p.value], "step " + p.label), content)}),
        ("approval_status", {"gate_id": world.gate},
         {"gate_id": number("gate_id", "gate"), "project_id": project}),
        ("search", {"query": "sqlite"},
         {"query": odd_query(), "project_id": project,
          "since": st.sampled_from([Poison(t, f"since {t!r}") for t in ["7x", "-1d", "\x00"]]),
          "limit": st.sampled_from([Poison(v, f"limit {v!r}") for v in [0, 201, -3, 2**70]])}),
        ("get", {"ids": [f"item:{world.item}"]},
         {"ids": st.builds(lambda t: Poison([t], "odd id", may_succeed=True),
                           st.sampled_from(["item:abc", "item:", "memory:", "task:0", "x",
                                            f"item:{world.other['item']}", "event:/1",
                                            f"gate:{2**70}", "memory:a/b/c", ""])),
          "project_id": project}),
    ]


class Digits:
    """An integer of ``count`` digits, written into the JSON text as such (Python refuses to
    print one over 4,300 digits)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __repr__(self) -> str:
        return f"Digits({self.count})"


BIG_INTEGERS = st.builds(lambda n: Poison({"n": Digits(n)}, f"{n}-digit integer"),
                         st.integers(4_301, 8_000))


def to_line(message: dict[str, Any]) -> str:
    digits: list[Digits] = []

    def marked(value: Any) -> Any:
        if isinstance(value, Digits):
            digits.append(value)
            return f"__digits_{len(digits) - 1}__"
        if isinstance(value, list):
            return [marked(v) for v in value]
        if isinstance(value, dict):
            return {k: marked(v) for k, v in value.items()}
        return value

    line = json.dumps(marked(message))
    for index, value in enumerate(digits):
        line = line.replace(f'"__digits_{index}__"', "9" * value.count)
    return line


class Case:
    """One line for the server, the id its answer must carry (``None``: id null), whether
    one is due at all, and for a tool call the poison it carries."""

    def __init__(self, line: str, label: str, answered: bool, answer_id: Any = None,
                 poison: Poison | None = None, tool: str = "") -> None:
        self.line = line
        self.label = label
        self.answered = answered
        self.answer_id = answer_id
        self.poison = poison
        self.tool = tool

    def __repr__(self) -> str:
        return f"Case({self.label!r}, {self.line[:300]!r})"


def tool_cases(world: World, ids: Iterator[int]) -> st.SearchStrategy[Case]:
    def case(tool: str, valid: dict[str, Any], name: str, poison: Poison) -> Case:
        request_id = next(ids)
        line = to_line({"id": request_id, "jsonrpc": "2.0", "method": "tools/call",
                        "params": {"name": tool, "arguments": {**valid, name: poison.value}}})
        return Case(line, f"{tool}({name}={poison.label})", True, request_id, poison, tool)

    content = {"content": BIG_INTEGERS}
    return st.one_of([
        st.builds(case, st.just(tool), st.just(valid), st.just(name), poisons)
        for tool, valid, all_poisons in tool_calls(world)
        for name, poisons in sorted({**all_poisons, **(
            content if tool == "store_context" else {})}.items())])


METHODS = ["tools/list", "tools/call", "ping", "resources/list", "prompts/list",
           "no/such/method", "completion/complete", "logging/setLevel"]
BAD_IDS = st.sampled_from([True, False, None, 1.5, [1], {"id": 1}, -0.0])


def protocol_cases(ids: Iterator[int]) -> st.SearchStrategy[Case]:
    """Malformed JSON-RPC lines, with the answer each is due."""

    def with_id(method: str, change: str, value: Any) -> Case:
        request_id: Any = next(ids)
        message: dict[str, Any] = {"id": request_id, "jsonrpc": "2.0", "method": method,
                                   "params": {}}
        if change == "jsonrpc":
            message["jsonrpc"] = value
        elif change == "method":
            message["method"] = value
        elif change == "params":
            message["params"] = value
        elif change == "string id":
            request_id = message["id"] = f"id-{request_id}-{value}"
        return Case(to_line(message), f"{method} with {change} {value!r}"[:80], True,
                    request_id)

    def bad_id(method: str, value: Any) -> Case:
        message = {"jsonrpc": "2.0", "id": value, "method": method}
        return Case(json.dumps(message), f"id {value!r}", True, None)

    def cut(method: str, at: int) -> Case:
        request_id = next(ids)
        line = json.dumps({"id": request_id, "jsonrpc": "2.0", "method": method,
                           "params": {"name": "search", "arguments": {"query": "x" * 40}}})
        # The id leads the line: a cut after it still names whom to answer.
        text = line[:at]
        named = re.match(r'\{"id": \d+,', text) is not None
        return Case(text, f"cut at {at}", True, request_id if named else None)

    def noted(value: Any) -> Case:
        return Case(to_line({"jsonrpc": "2.0", "method": "notifications/x", "params": value}),
                    "bad notification", False)

    return st.one_of(
        st.builds(with_id, st.sampled_from(METHODS), st.sampled_from(["jsonrpc"]),
                  st.sampled_from(["1.0", 2, None, "", "2.0 "])),
        st.builds(with_id, st.sampled_from(METHODS), st.just("method"),
                  st.sampled_from([7, None, [], {"m": 1}, True])),
        st.builds(with_id, st.sampled_from(METHODS), st.just("params"),
                  st.one_of(st.sampled_from(["x", 1, [1, 2], True]), st.builds(
                      lambda n: {"deep": Digits(n)}, st.integers(4_301, 6_000)),
                      st.builds(lambda n: {"deep": json.loads("[" * n + "]" * n)},
                                st.integers(101, 600)),
                      st.builds(lambda s: {"name": "search", "arguments": {"query": s}},
                                LONE_SURROGATE))),
        st.builds(with_id, st.sampled_from(METHODS), st.just("string id"), ODD_TEXT),
        st.builds(bad_id, st.sampled_from(METHODS), BAD_IDS),
        st.builds(cut, st.sampled_from(METHODS), st.integers(1, 60)),
        st.builds(lambda value: Case(json.dumps(value), "not an object", True, None),
                  st.one_of(st.lists(st.integers(), max_size=3), st.integers(), ODD_TEXT)),
        st.builds(noted, st.one_of(st.just("x"), st.just([1]), st.builds(
            lambda s: {"a": s}, LONE_SURROGATE))),
    )


def check_tool_answer(case: Case, reply: dict[str, Any]) -> None:
    assert case.poison is not None
    if "error" in reply:  # the line itself was refused (a lone surrogate, a limit)
        assert reply["error"]["message"].startswith("invalid request"), reply
        return
    result = reply["result"]
    text = result["content"][0]["text"] if result.get("content") else ""
    if not result.get("isError"):
        assert case.poison.may_succeed, f"{case.label} was accepted: {text[:300]}"
        return
    typed = TYPED.search(text) or (
        text.startswith(f"Error executing tool {case.tool}: ") and "validation error" in text)
    assert typed, f"{case.label}: untyped tool error {text[:400]!r}"


def test_bad_mcp_requests_are_answered_and_change_nothing(
        server: tuple[Server, World]) -> None:
    mcp, world = server
    unchanged = Unchanged(world.db)
    ids = itertools.count(1)
    pings = itertools.count(1)
    count = counted("mcp")
    ran = 0

    def answers_to(case: Case) -> list[dict[str, Any]]:
        """The answers to ``case``: a request's own is awaited; after a line due none, a
        ping shows that none came (the server answers in order what it does not hand to a
        worker thread). A second answer to one line would show up in the next case's."""
        if case.answered:
            return [mcp.receive()]
        ping = f"ping-{next(pings)}"
        mcp.send(json.dumps({"jsonrpc": "2.0", "id": ping, "method": "ping"}))
        replies = []
        while not replies or replies[-1].get("id") != ping:
            replies.append(mcp.receive())
        return replies[:-1]

    @settings(CORPUS_SETTINGS, max_examples=EXAMPLES["mcp"])
    @given(case=st.one_of(tool_cases(world, ids), protocol_cases(ids)))
    def corpus(case: Case) -> None:
        nonlocal ran
        mcp.send(case.line)
        answers = answers_to(case)
        unchanged.check(case.label)
        assert len(answers) == (1 if case.answered else 0), (case.label, answers)
        if case.answered:
            assert answers[0]["id"] == case.answer_id, (case.label, answers[0])
            if case.poison is not None:
                check_tool_answer(case, answers[0])
            elif "error" in answers[0]:
                assert "internal" not in answers[0]["error"]["message"].lower(), answers[0]
        ran += 1
        count()

    corpus()
    assert answers_to(Case("", "nothing more", False)) == []  # no answer came late
    assert ran >= EXAMPLES["mcp"], f"only {ran} of {EXAMPLES['mcp']} cases ran"
