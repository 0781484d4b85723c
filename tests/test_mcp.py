"""``ctxdb mcp`` as a subprocess, driven by the official MCP Python client, on both backends.

Each test starts the installed ``ctxdb`` console script (next to the test's interpreter) with
``CTXDB_URL`` naming the test's database, lists or calls tools over stdio, and checks the
database through the service layer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult

from ctxdb.mcp import render
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings

CTXDB = str(Path(sys.executable).with_name("ctxdb"))
TOOLS = {"get_context", "store_context", "search_context", "record_handoff", "heartbeat",
         "list_instances", "memory_get", "memory_put", "memory_list", "session_append",
         "session_events", "task_create", "task_list", "task_claim", "task_complete",
         "task_fail", "message_send", "message_inbox", "message_ack", "approval_request",
         "approval_status", "command_record", "checkpoint_save", "checkpoint_latest",
         "search", "siblings", "get", "timeline"}


class Client:
    """An initialized MCP session with helpers that return a tool's text."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def call(self, name: str, **arguments: Any) -> CallToolResult:
        return await self.session.call_tool(name, arguments)

    async def text(self, name: str, **arguments: Any) -> str:
        """Call a tool that must succeed; return its one text block."""
        result = await self.call(name, **arguments)
        assert not result.is_error, result.content
        assert len(result.content) == 1 and result.content[0].type == "text"
        return result.content[0].text

    async def error(self, name: str, **arguments: Any) -> str:
        """Call a tool that must fail as a tool error; return its message."""
        result = await self.call(name, **arguments)
        assert result.is_error, result.content
        text = result.content[0].text
        assert "Traceback" not in text
        return text


def server_env(settings: Settings, home: Path) -> dict[str, str]:
    # The test's own environment (its import path included) without the tester's CTXDB_*.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTXDB_")}
    return {**env, "CTXDB_URL": settings.url, "CTXDB_ACTOR": "user:test", "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config")}


@asynccontextmanager
async def connect(settings: Settings, home: Path, *args: str,
                  cwd: Path | None = None) -> AsyncIterator[Client]:
    # The full tool set unless the test asks for another (the last --tools counts); run in
    # the test's folder, which is in no repository, so no project is the default unless given.
    params = StdioServerParameters(command=CTXDB, args=["mcp", "--tools", "all", *args],
                                   env=server_env(settings, home), cwd=str(cwd or home))
    with (home / "server-stderr.log").open("w", encoding="utf-8") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            yield Client(session)


def run_session(settings: Settings, home: Path, body: Callable[[Client], Awaitable[None]],
                *args: str, cwd: Path | None = None) -> None:
    async def main() -> None:
        with anyio.fail_after(60):
            async with connect(settings, home, *args, cwd=cwd) as client:
                await body(client)

    anyio.run(main)


@pytest.fixture
def project_id(db: Ctxdb, project: dict[str, Any]) -> str:
    return str(project["project_id"])


def test_tools_are_listed_with_descriptions_and_schemas(
    settings: Settings, tmp_path: Path
) -> None:
    async def body(client: Client) -> None:
        listed = {tool.name: tool for tool in (await client.session.list_tools()).tools}
        assert set(listed) == TOOLS
        for tool in listed.values():
            assert tool.description and len(tool.description) > 40
            assert tool.input_schema["type"] == "object"
            assert tool.input_schema["properties"]
        store = listed["store_context"].input_schema
        assert store["required"] == ["content"]
        assert store["properties"]["priority"]["enum"] == ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
        assert listed["record_handoff"].input_schema["required"] == ["instance_id"]
        assert listed["get_context"].annotations.read_only_hint is True
        assert listed["store_context"].annotations.read_only_hint is False

    run_session(settings, tmp_path, body)


def test_store_get_and_search_context(
    settings: Settings, tmp_path: Path, db: Ctxdb, project_id: str
) -> None:
    async def body(client: Client) -> None:
        stored = await client.text(
            "store_context", project_id=project_id, content={"decision": "payments via Stripe"},
            priority="CRITICAL", content_type="decision")
        assert stored.startswith("Stored context item ") and "CRITICAL decision" in stored
        assert "HIGH code" in await client.text(
            "store_context", project_id=project_id, content="the orders table has stripe_id")
        await client.text("store_context", project_id=project_id, content={"todo": "tests"},
                          priority="low", content_type="todo")

        context = await client.text("get_context", project_id=project_id)
        lines = context.splitlines()
        assert lines[0].startswith(f"ctxdb context for project {project_id}: 3 items")
        assert lines[1:] == ['[CRITICAL] #1 (decision): {"decision": "payments via Stripe"}',
                             "[HIGH] #2 (code): the orders table has stripe_id",
                             '[LOW] #3 (todo): {"todo": "tests"}']
        small = await client.text("get_context", project_id=project_id, budget_tokens=12)
        assert "[CRITICAL]" in small and "[LOW]" not in small

        found = (await client.text("search_context", project_id=project_id,
                                   query="STRIPE")).splitlines()
        assert found[0].startswith("2 context items matching 'STRIPE'")
        assert [line.split(" (")[0] for line in found[1:]] == ["- item 2", "- item 1"]
        by_priority = await client.text("search_context", project_id=project_id,
                                        priority="LOW")
        assert by_priority.splitlines()[1].startswith("- item 3 (seq 3, LOW todo")
        nothing = await client.text("search_context", project_id=project_id, query="absent")
        assert nothing.splitlines() == [
            f"0 context items matching 'absent' in project {project_id}, newest first."]

    run_session(settings, tmp_path, body)
    items = db.context.search(project_id)["items"]
    assert [(i["priority"], i["content_type"], i["content"]) for i in items] == [
        ("LOW", "todo", {"todo": "tests"}),
        ("HIGH", "code", "the orders table has stripe_id"),
        ("CRITICAL", "decision", {"decision": "payments via Stripe"}),
    ]
    assert all(i["created_by"] is None for i in items)


def test_instances_heartbeat_and_handoff(
    settings: Settings, tmp_path: Path, db: Ctxdb, project_id: str
) -> None:
    instance_id = db.instances.launch(project_id, client="claude-code", branch="main",
                                      context_window=1_000)["instance_id"]
    db.tokens.update_usage(instance_id, 400)
    db.context.store(project_id, {"rule": "no force pushes"}, "CRITICAL", "constraint")

    async def body(client: Client) -> None:
        listed = (await client.text("list_instances")).splitlines()
        assert listed[0] == f"1 instance in project {project_id}."
        assert listed[1].startswith(f"- {instance_id}: active, client claude-code, "
                                    "generation 0, 400 of 1000 tokens (40.0%)")
        assert "branch main" in listed[1]
        assert (await client.text("list_instances", status="crashed")).startswith(
            "0 crashed instances")

        beat = await client.text("heartbeat", instance_id=instance_id)
        assert beat.startswith(f"Instance {instance_id} is active (project {project_id}")

        recorded = await client.text(
            "record_handoff", instance_id=instance_id, summary="parser half done",
            next_steps=["finish the lexer", "run the tests"],
            working_set={"files": ["lexer.py"]})
        assert recorded.startswith("Recorded handoff #") and "at 400 tokens" in recorded

        stored = await client.text("store_context", content="seen by the instance",
                                   created_by=instance_id)
        assert "HIGH code" in stored

        context = (await client.text("get_context")).splitlines()
        assert context[0].startswith("Latest handoff #") and f"instance {instance_id}" in \
            context[0]
        assert context[1:6] == ["Summary: parser half done", "Next steps:",
                                "- finish the lexer", "- run the tests",
                                'Working set: {"files": ["lexer.py"]}']
        assert context[6] == ""
        assert context[7].startswith(f"ctxdb context for project {project_id}: 2 items")
        assert context[8] == '[CRITICAL] #1 (constraint): {"rule": "no force pushes"}'

    run_session(settings, tmp_path, body, "--project", project_id)
    handoff = db.tokens.latest_handoff(instance_id=instance_id)
    assert handoff is not None
    assert (handoff["kind"], handoff["summary"]) == ("manual", "parser half done")
    assert handoff["next_steps"] == ["finish the lexer", "run the tests"]
    assert handoff["working_set"] == {"files": ["lexer.py"]}
    usage = db.tokens.check_usage(instance_id)
    assert (usage["current_token_usage"], usage["generation"]) == (400, 0)  # not cleared
    actions = [entry["action"] for entry in db.audit_log(entity_id=instance_id)]
    assert "instance.heartbeat" in actions and "tokens.handoff" in actions
    newest = db.context.search(project_id, limit=1)["items"][0]
    assert (newest["created_by"], newest["content"]) == (instance_id, "seen by the instance")


def test_bad_input_comes_back_as_tool_errors_and_changes_nothing(
    settings: Settings, tmp_path: Path, db: Ctxdb, project_id: str
) -> None:
    instance_id = db.instances.launch(project_id)["instance_id"]
    before = db.audit_log(limit=1_000)

    async def body(client: Client) -> None:
        error = client.error
        assert "no project given: pass project_id" in await error("get_context")
        assert "unknown project 'proj_nope' [project_not_found]" in await error(
            "get_context", project_id="proj_nope")
        assert "invalid priority 'URGENT': expected one of CRITICAL" in await error(
            "store_context", project_id=project_id, content="x", priority="URGENT")
        assert "unknown project 'proj_nope'" in await error(
            "store_context", project_id="proj_nope", content="x")
        assert "[instance_not_found]" in await error(
            "store_context", project_id=project_id, content="x", created_by="inst_nope")
        assert "a handoff needs a summary, next steps or a working set" in await error(
            "record_handoff", instance_id=instance_id)
        assert "unknown instance 'inst_nope'" in await error("heartbeat",
                                                             instance_id="inst_nope")
        assert "[invalid_status]" in await error("list_instances", project_id=project_id,
                                                 status="asleep")
        assert "limit" in await error("search_context", project_id=project_id, limit=0)
        assert "CRITICAL context needs" in await error_after_critical(client)
        assert "Unknown tool" in await error("drop_everything")

    async def error_after_critical(client: Client) -> str:
        # A CRITICAL item over the budget is refused by get_context, never cut silently.
        await client.text("store_context", project_id=project_id, content="must keep",
                          priority="CRITICAL")
        return await client.error("get_context", project_id=project_id, budget_tokens=1)

    run_session(settings, tmp_path, body)
    after = db.audit_log(limit=1_000)
    # The one CRITICAL item stored on purpose above is the only change.
    assert [entry["action"] for entry in after[:len(after) - len(before)]] == ["context.store"]
    assert len(db.context.search(project_id)["items"]) == 1
    assert db.tokens.latest_handoff(project_id=project_id) is None


def test_an_unknown_default_project_stops_the_server_at_startup(
    settings: Settings, tmp_path: Path
) -> None:
    result = subprocess.run([CTXDB, "mcp", "--project", "proj_nope"], input="",
                            capture_output=True, text=True, timeout=60,
                            env=server_env(settings, tmp_path))
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr == "error: unknown project 'proj_nope'\n"


def test_without_the_sdk_the_command_names_the_extra(tmp_path: Path) -> None:
    # None in sys.modules makes every import of the SDK fail, as if it were not installed.
    probe = ("import sys\nsys.modules['mcp'] = None\nfrom ctxdb.cli.main import main\n"
             "sys.argv = ['ctxdb', 'mcp']\nmain()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTXDB_")}
    result = subprocess.run([sys.executable, "-c", probe], input="", capture_output=True,
                            text=True, timeout=60,
                            env={**env, "HOME": str(tmp_path), "CTXDB_URL": str(tmp_path / "x.db")})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("error: ctxdb mcp needs the MCP SDK")
    assert result.stderr.rstrip().endswith("pip install '.[mcp]' in a clone of ctxdb")
    assert not (tmp_path / "x.db").exists()  # refused before opening any database


def test_stdout_carries_only_protocol_messages(
    settings: Settings, tmp_path: Path, project_id: str
) -> None:
    # Raw JSON-RPC lines as a client speaking the 2025-06-18 revision sends them; every line
    # the server writes to stdout must be one of its JSON-RPC answers, and nothing else.
    def call(request_id: int, name: str, **arguments: Any) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                "params": {"name": name, "arguments": arguments}}

    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "raw-test", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        call(2, "get_context"),
        call(3, "store_context", content="x", priority="URGENT"),
    ]
    answers = []
    with subprocess.Popen([CTXDB, "mcp", "--project", project_id], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          env=server_env(settings, tmp_path), cwd=tmp_path) as server:
        assert server.stdin is not None and server.stdout is not None
        for request in requests:  # one at a time: closing stdin cancels pending requests
            server.stdin.write(json.dumps(request) + "\n")
            server.stdin.flush()
            if "id" in request:
                answers.append(json.loads(server.stdout.readline()))
        server.stdin.close()
        assert server.stdout.read() == ""  # nothing after the answers either
        assert server.wait(timeout=30) == 0
    assert [(a["jsonrpc"], a["id"]) for a in answers] == [("2.0", 1), ("2.0", 2), ("2.0", 3)]
    assert answers[0]["result"]["serverInfo"]["name"] == "ctxdb"
    context, refused = answers[1]["result"], answers[2]["result"]
    assert context["isError"] is False
    assert context["content"][0]["text"].startswith(f"ctxdb context for project {project_id}")
    assert refused["isError"] is True and "[invalid_priority]" in refused["content"][0]["text"]


def test_search_text_says_when_results_are_cut() -> None:
    item = {"item_id": 7, "sequence_number": 3, "priority": "HIGH", "content_type": "note",
            "token_count": 300, "phase_id": 2, "content": {"text": "é" * 700}}
    result = {"items": [item], "has_more": True}
    lines = render.search_text("proj_x", None, result, full_content=False).splitlines()
    assert lines[0] == "1 context item (no text filter) in project proj_x, newest first."
    assert lines[1].startswith('- item 7 (seq 3, HIGH note, 300 tokens, phase 2): {"text": "é')
    assert lines[1].endswith("… [112 more characters; ask with full_content]")
    assert lines[2:] == ["More items match: raise limit or narrow the filters."]
    whole = render.search_text("proj_x", "é", result, full_content=True).splitlines()[1]
    assert whole.endswith('"}') and len(whole) > 700
