"""The default tool set of ``ctxdb mcp``: small (measured from a real client's tools/list),
every capability still reachable through it, and the project of the repository it runs in
used when a call names none; on both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ctxdb.repo_identity import repo_identity
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from real_clients import git_repository
from test_mcp import Client, run_session

MAX_TOOLS = 8
MAX_DEFINITION_CHARS = 6_000
DEFAULT = ["--tools", "default"]


def definition_chars(tool: Any) -> int:
    """What a session pays for a tool: its name, description and input schema as JSON."""
    return len(json.dumps({"name": tool.name, "description": tool.description,
                           "inputSchema": tool.input_schema}, ensure_ascii=False))


def test_the_default_tool_set_is_small(settings: Settings, tmp_path: Path) -> None:
    sizes: dict[str, int] = {}

    async def body(client: Client) -> None:
        for tool in (await client.session.list_tools()).tools:
            sizes[tool.name] = definition_chars(tool)
            assert tool.description and tool.input_schema["type"] == "object"

    run_session(settings, tmp_path, body, *DEFAULT)
    total = sum(sizes.values())
    print(f"default MCP tool set: {len(sizes)} tools, {total} characters: {sizes}")
    assert sorted(sizes) == ["call", "get", "get_context", "search", "store_context",
                             "timeline"]
    assert len(sizes) <= MAX_TOOLS and total <= MAX_DEFINITION_CHARS

    full: dict[str, int] = {}

    async def all_tools(client: Client) -> None:
        full.update({tool.name: definition_chars(tool)
                     for tool in (await client.session.list_tools()).tools})

    run_session(settings, tmp_path, all_tools)
    print(f"--tools all: {len(full)} tools, {sum(full.values())} characters")
    assert len(full) == 28 and set(sizes) - {"call"} < set(full)


def test_a_fresh_repository_gets_its_project_as_the_hooks_would(
    settings: Settings, tmp_path: Path, db: Ctxdb
) -> None:
    repo = git_repository(tmp_path / "shop")

    async def body(client: Client) -> None:
        stored = await client.text("store_context", content="payments are retried three times",
                                   content_type="decision")
        assert stored.startswith("Stored context item ")
        assert "payments are retried three times" in await client.text("get_context")

    run_session(settings, tmp_path, body, *DEFAULT, cwd=repo)
    project = db.sessions.find_project(repo_identity(str(repo)).repo_key)
    assert project is not None  # the project the hooks use for this repository
    items = db.context.search(project["project_id"])["items"]
    assert [item["content"] for item in items] == ["payments are retried three times"]


def test_search_timeline_get_and_call_without_a_project_id(
    settings: Settings, tmp_path: Path, db: Ctxdb
) -> None:
    repo = git_repository(tmp_path / "shop")
    project_id = db.sessions.resolve_project(repo_identity(str(repo)))["project_id"]
    session_id = db.conversations.create(project_id, "chat", "ana")["session_id"]
    for text in ("hello", "why do payments fail?", "the webhook secret was wrong", "thanks"):
        db.conversations.append(session_id, "user", text)

    async def body(client: Client) -> None:
        await client.text("call", tool="memory_put",
                          arguments={"namespace": "billing", "key": "psp", "value": "stripe"})
        hits = (await client.text("search", query="webhook or stripe")).splitlines()
        ids = {line[2:].split(" ")[0] for line in hits[1:]}
        assert ids == {"memory:billing/psp", f"event:{session_id}/3"}
        whole = await client.text("get", ids=["memory:billing/psp", f"event:{session_id}/3"])
        assert whole.startswith("memory:billing/psp: Memory billing/psp v1 (semantic)")
        assert f"event:{session_id}/3: #3 [user] " in whole
        assert whole.endswith("the webhook secret was wrong")
        around = (await client.text("timeline", event_id=f"event:{session_id}/3", before=1,
                                    after=0)).splitlines()
        assert around[0] == f"Events 2 to 3 of session {session_id} (> marks event 3):"
        assert [line[:5] for line in around[1:]] == [" #2 [", ">#3 ["]
        described = json.loads(await client.text("call", tool="task_claim", describe=True))
        assert described["input_schema"]["required"] == ["instance_id"]
        assert "unknown tool 'drop_all'" in await client.error("call", tool="drop_all")
        assert "[session_not_found]" in await client.error(
            "call", tool="session_events", arguments={"session_id": "sess_nope"})
        assert "invalid id 'item:x'" in await client.error("get", ids=["item:x"])
        other = db.projects.create("other")["project_id"]
        assert "[memory_not_found]" in await client.error(
            "get", ids=["memory:billing/psp"], project_id=other)

    run_session(settings, tmp_path, body, *DEFAULT, cwd=repo)
    assert db.memories.get(project_id, "billing", "psp")["value"] == "stripe"


def test_outside_a_repository_a_call_without_project_says_why(
    settings: Settings, tmp_path: Path
) -> None:
    async def body(client: Client) -> None:
        message = await client.error("get_context")
        assert "no project given: pass project_id" in message
        assert f"it runs in {tmp_path}, which is in no git repository" in message

    run_session(settings, tmp_path, body, *DEFAULT)
