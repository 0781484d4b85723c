"""The real Codex CLI, offline: the CRITICAL item at startup and after compaction, usage as
reported, the next session picking up where the last one stopped, and ctxdb's MCP server and
hooks sharing one database (what the model stores through MCP, the next SessionStart gives).

Codex runs non-interactively (``codex exec``) with ctxdb installed in a scratch git repository
as the docs say (``ctxdb install codex --scope project --trust``) and a mock of the Responses
API on a loopback port (a ``mock`` model provider in ``$CODEX_HOME/config.toml``) that records
every request. Each hook must also be approved in Codex's interactive ``/hooks`` review, which
a test cannot do: ``--dangerously-bypass-hook-trust`` stands for it. Codex has no SessionEnd
hook, so a session that stopped is noticed once silent past ``stale_after`` (a second here).
Codex also starts ctxdb's MCP server (``ctxdb mcp``) with a reduced environment: it must open
the hooks' database (``CTXDB_URL`` passed through ``env_vars``), not a default one. The mock
model calls ctxdb's MCP tools by the namespace Codex lists them under (``mcp__ctxdb``);
``codex exec`` starts its turn at once, and only tools of servers ready by then can be called,
so the test gives MCP servers a startup grace (``mcp_optional_startup_grace_ms``). Codex
compacts offline once a turn's context passes ``model_auto_compact_token_limit`` (the mock
reports more after the tool calls): it asks the model for a summary, runs PreCompact, replaces
the history, and runs SessionStart with source ``compact`` before the turn carries on. Resume
(``codex exec resume --last``) runs SessionStart with source ``resume``.

The CLI comes from ``CTXDB_TEST_CODEX`` (the ``codex`` program), else from PATH; without it the
test is skipped, unless ``CTXDB_REQUIRE_CLIENTS=1`` (CI: ``.ci/run`` installs the pinned
version), in which case it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from real_clients import (
    CLI_TIMEOUT,
    MockServer,
    Recorded,
    client_program,
    ctxdb,
    diagnosis,
    git_repository,
    query,
    store_critical,
)

CRITICAL = "CRIT-9e04 refunds never exceed the captured amount"
MARKED_REQUEST = "MARK-41d7 add partial refunds to the ledger"
ANSWER = "ANSWER-c3a8 partial refunds are planned."
STALE_AFTER = 1.0
TOOL_PROMPT = "MARK-6b0e record what the ledger keeps"
NOTE = "NOTE-5f2a the ledger keeps one row per refund"
MEMORY = {"namespace": "shop:ledger", "key": "row-shape", "value": "MEM-90d1 one row per refund"}
# Codex compacts once a turn's context passes model_auto_compact_token_limit: the tool call's
# answer reports more, so Codex compacts before it sends the tool results back.
COMPACT_LIMIT = 8_000
OVER_COMPACT_LIMIT = 9_000
# Hosts Codex 0.171 contacts on its own (CONNECT through the proxy), refused by the mock.
CODEX_OWN_CALLS = {"github.com:443", "api.github.com:443", "chatgpt.com:443"}


def input_tokens(n: int) -> int:
    """The input tokens the mock reports for its n-th answer (0, 1, ...)."""
    return 6_000 + 211 * n


@pytest.fixture
def codex() -> str:
    return client_program("CTXDB_TEST_CODEX", "codex", "Codex CLI")


def _streamed(n: int, items: list[dict[str, Any]], input_count: int) -> tuple[int, str, bytes]:
    """The Responses API's server-sent events of a response with ``items``."""
    usage = {"input_tokens": input_count, "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": 12, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": input_count + 12}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"id": f"resp_{n}", "status": "in_progress"}}]
    for index, item in enumerate(items):
        if item["type"] == "message":
            events += [
                {"type": "response.output_item.added", "output_index": index,
                 "item": {**item, "content": [], "status": "in_progress"}},
                {"type": "response.output_text.delta", "item_id": item["id"],
                 "output_index": index, "content_index": 0,
                 "delta": item["content"][0]["text"]}]
        else:
            events.append({"type": "response.output_item.added", "output_index": index,
                           "item": item})
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    events.append({"type": "response.completed", "response": {
        "id": f"resp_{n}", "status": "completed", "output": items, "usage": usage}})
    data = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    return 200, "text/event-stream", data.encode()


class CodexMock:
    """Answers ``POST /v1/responses`` with one streamed text message, or with the tool calls
    of ``tool_calls`` in the turn of ``TOOL_PROMPT``."""

    def __init__(self) -> None:
        self.answers = 0
        # Answers (lists of output items) for requests of TOOL_PROMPT's turn, played once.
        self.tool_calls: list[list[dict[str, Any]]] = []
        self.server = MockServer(self.answer)

    def answer(self, request: Recorded) -> tuple[int, str, bytes] | None:
        if request.method != "POST" or urlsplit(request.target).path != "/v1/responses":
            return None
        n = self.answers
        self.answers += 1
        if self.tool_calls and TOOL_PROMPT in json.dumps(request.body):
            return _streamed(n, self.tool_calls.pop(0), OVER_COMPACT_LIMIT)
        item = {"type": "message", "id": f"msg_mock_{n}", "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": ANSWER, "annotations": []}]}
        return _streamed(n, [item], input_tokens(n))

    def model_requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.server.recorded()
                if urlsplit(r.target).path == "/v1/responses" and isinstance(r.body, dict)]


@pytest.fixture
def mock() -> Iterator[CodexMock]:
    mock = CodexMock()
    with mock.server:
        yield mock


def client_env(tmp_path: Path, mock: CodexMock) -> dict[str, str]:
    home = tmp_path / "home"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "config.toml").write_text(
        'model_provider = "mock"\nmodel = "gpt-mock"\ncheck_for_update_on_startup = false\n\n'
        "[analytics]\nenabled = false\n\n"
        "[model_providers.mock]\n"
        'name = "mock"\n'
        f'base_url = "{mock.server.url}/v1"\n'
        'wire_api = "responses"\n'
        "supports_websockets = false\n"
        'env_key = "MOCK_OPENAI_KEY"\n', encoding="utf-8")
    keep = {name: os.environ[name] for name in ("PATH", "LANG", "TMPDIR") if name in os.environ}
    return {
        **keep,
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        "MOCK_OPENAI_KEY": "offline-test-key",
        **mock.server.proxy_env(),
        "CTXDB_URL": str(tmp_path / "ctxdb.db"),
        "CTXDB_HOOK_LOG": str(tmp_path / "hook.log"),
        "CTXDB_STALE_AFTER": str(STALE_AFTER),
    }


def run_session(program: str, repo: Path, env: dict[str, str], prompt: str,
                resume_last: bool = False) -> None:
    """One ``codex exec`` turn: of a new session, or of the last one (``resume --last``)."""
    resume = ["resume", "--last"] if resume_last else []
    done = subprocess.run([program, "exec", "--dangerously-bypass-hook-trust", *resume, prompt],
                          cwd=repo, env=env, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"codex failed: {done.stdout}\n{done.stderr}"
    assert ANSWER in done.stdout, done.stdout


def test_critical_context_at_startup_and_the_next_session_picks_up_the_last(
    codex: str, tmp_path: Path, mock: CodexMock
) -> None:
    env = client_env(tmp_path, mock)
    repo = git_repository(tmp_path / "shop")
    installed = ctxdb("install", "codex", "--scope", "project", "--trust", cwd=repo, env=env)
    assert "/hooks" in installed  # the step left to the user is named
    config = (Path(env["CODEX_HOME"]) / "config.toml").read_text(encoding="utf-8")
    assert f'[projects."{repo}"]' in config
    store_critical(repo, env, CRITICAL)

    run_session(codex, repo, env, MARKED_REQUEST)
    [opening] = mock.model_requests()
    assert CRITICAL in json.dumps(opening), diagnosis(env)
    [(session, reported)] = query(
        env, "SELECT session_id, input_tokens + cache_creation_tokens + cache_read_tokens "
             "FROM api_usage")
    assert reported == input_tokens(0), diagnosis(env)

    time.sleep(STALE_AFTER + 0.5)  # Codex has no SessionEnd: the session goes silent
    run_session(codex, repo, env, "What should I work on?")
    next_opening = json.dumps(mock.model_requests()[-1])
    assert MARKED_REQUEST in next_opening, diagnosis(env)
    assert CRITICAL in next_opening
    assert query(env, "SELECT count(*) FROM instances WHERE session_id <> ?", session) \
        == [(1,)]
    # Codex started `ctxdb mcp` with its reduced environment: the server entry's env_vars
    # passed CTXDB_URL on, so it opened the hooks' database, not a default one of its own
    # (without them it creates one under HOME: two stores for one agent).
    default_store = Path(env["HOME"]) / ".local" / "share" / "ctxdb"
    assert not default_store.exists(), sorted(p.name for p in default_store.iterdir())
    # Codex calls github.com (its update and plugin checks) whatever its settings say; through
    # the proxy that lands here and is refused. Nothing else was tried.
    assert {r.target for r in mock.server.elsewhere()} <= CODEX_OWN_CALLS


def ctxdb_tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A call of one of ctxdb's MCP tools, as the Responses API names it for Codex (the
    ``mcp__<server>`` namespace of the tools Codex listed)."""
    return {"type": "function_call", "id": f"fc_{call_id}", "call_id": call_id,
            "status": "completed", "namespace": "mcp__ctxdb", "name": name,
            "arguments": json.dumps(arguments)}


def test_mcp_writes_reach_the_next_session_and_critical_context_survives_compaction(
    codex: str, tmp_path: Path, mock: CodexMock
) -> None:
    env = client_env(tmp_path, mock)
    config = Path(env["CODEX_HOME"]) / "config.toml"
    # `codex exec` starts its turn at once; it waits for MCP servers only this long (ctxdb's,
    # a Python process, takes a second or two to list its tools). The limit makes Codex
    # compact offline, as a long session would.
    config.write_text(f"model_auto_compact_token_limit = {COMPACT_LIMIT}\n"
                      "mcp_optional_startup_grace_ms = 30000\n"
                      + config.read_text(encoding="utf-8"), encoding="utf-8")
    repo = git_repository(tmp_path / "shop")
    ctxdb("install", "codex", "--scope", "project", "--trust", cwd=repo, env=env)
    store_critical(repo, env, CRITICAL)
    mock.tool_calls.append([
        ctxdb_tool_call("note", "store_context", {"content": NOTE, "priority": "HIGH"}),
        ctxdb_tool_call("memory", "call", {"tool": "memory_put", "arguments": MEMORY}),
    ])

    run_session(codex, repo, env, TOOL_PROMPT)
    # Both MCP writes landed in the hooks' database (CTXDB_URL passed through env_vars).
    assert query(env, "SELECT count(*) FROM context_items WHERE content LIKE ?",
                 f"%{NOTE}%") == [(1,)], diagnosis(env)
    assert query(env, "SELECT count(*) FROM memories WHERE namespace = ? AND key = ?",
                 MEMORY["namespace"], MEMORY["key"]) == [(1,)], diagnosis(env)
    requests = mock.model_requests()
    results = [item for body in requests for item in body.get("input", [])
               if item.get("type") == "function_call_output"]
    assert {item["call_id"] for item in results} == {"note", "memory"}, results
    assert not [item for item in results if "unsupported call" in json.dumps(item)], results
    # Codex compacted (its summarization request), then ctxdb's SessionStart(compact) put the
    # CRITICAL item back into the request that carried on.
    assert query(env, "SELECT count(DISTINCT session_id) FROM injections") == [(1,)]
    assert query(env, "SELECT count(*) FROM injections WHERE source = 'compact'") == [(1,)], \
        diagnosis(env)
    after_compaction = requests[-1]
    assert not any(item.get("type") == "function_call_output"
                   for item in after_compaction.get("input", [])), "no compaction happened"
    assert CRITICAL in json.dumps(after_compaction), diagnosis(env)

    run_session(codex, repo, env, "Carry on.", resume_last=True)
    resumed = json.dumps(mock.model_requests()[-1])
    assert "Carry on." in resumed and CRITICAL in resumed, diagnosis(env)
    assert query(env, "SELECT count(*) FROM injections WHERE source = 'resume'") == [(1,)], \
        diagnosis(env)

    time.sleep(STALE_AFTER + 0.5)
    run_session(codex, repo, env, "What should I work on?")
    next_opening = json.dumps(mock.model_requests()[-1])
    assert NOTE in next_opening, diagnosis(env)  # written through MCP, given by SessionStart
    assert CRITICAL in next_opening
    assert query(env, "SELECT count(DISTINCT session_id) FROM injections") == [(2,)]
    default_store = Path(env["HOME"]) / ".local" / "share" / "ctxdb"
    assert not default_store.exists()
    assert {r.target for r in mock.server.elsewhere()} <= CODEX_OWN_CALLS
