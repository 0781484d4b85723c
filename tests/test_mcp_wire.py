"""``ctxdb mcp`` under load and bad input: waiting calls never starve the other tools, and
every malformed request that carries an id gets its JSON-RPC error (the SDK alone would
leave the client waiting forever)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from ctxdb.mcp.toolbox import MAX_WAITS
from ctxdb.mcp.wire import INVALID_REQUEST, PARSE_ERROR, refusal
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from test_mcp import CTXDB, Client, run_session, server_env

WAITS = 40
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "raw-test", "version": "1"}}}
DEEP = "[" * 300 + "]" * 300
# (line, the id answered, the JSON-RPC error code)
MALFORMED = [
    ('{"jsonrpc": "2.0", "id": 11, "method": "tools/list", "params": "x"}', 11,
     INVALID_REQUEST),
    ('{"jsonrpc": "2.0", "id": 12, "method": 7}', 12, INVALID_REQUEST),
    ('{"jsonrpc": "1.0", "id": 13, "method": "tools/list"}', 13, INVALID_REQUEST),
    ('{"jsonrpc": "2.0", "id": 14, "method": "tools/call", "params": {"name": "get', 14,
     PARSE_ERROR),
    ('{"jsonrpc": "2.0", "id": "a-15", "method": "tools/call", "params": {"name": '
     '"store_context", "arguments": {"content": "\\ud800"}}}', "a-15", INVALID_REQUEST),
    ('{"jsonrpc": "2.0", "id": 16, "method": "tools/call", "params": {"name": '
     f'"store_context", "arguments": {{"content": {DEEP}}}}}}}', 16, INVALID_REQUEST),
    ('{"jsonrpc": "2.0", "id": true, "method": "tools/list"}', None, INVALID_REQUEST),
    ("[1, 2", None, PARSE_ERROR),
]


@pytest.fixture
def project_id(db: Ctxdb, project: dict[str, Any]) -> str:
    return str(project["project_id"])


def test_waiting_calls_leave_the_other_tools_free(
    settings: Settings, tmp_path: Path, db: Ctxdb, project_id: str
) -> None:
    gate_id = db.approvals.request(project_id, "deploy")["gate_id"]
    answers: list[str] = []
    took: list[float] = []

    async def wait(client: Client) -> None:
        result = await client.call("approval_status", gate_id=gate_id, wait_seconds=4)
        answers.append(("error: " if result.is_error else "") + result.content[0].text)

    async def body(client: Client) -> None:
        async with anyio.create_task_group() as group:
            for _ in range(WAITS):
                group.start_soon(wait, client)
            await anyio.sleep(1)  # every wait has started (or been refused)
            started = time.monotonic()
            assert "ctxdb context for project" in await client.text("get_context")
            await client.text("store_context", content="stored while others wait")
            took.append(time.monotonic() - started)

    run_session(settings, tmp_path, body, "--project", project_id)
    assert took[0] < 2.0, f"other tools waited {took[0]:.1f} s behind the waits"
    pending = [a for a in answers if a.startswith(f"Approval gate {gate_id} [deploy] is pending")]
    refused = [a for a in answers if a.startswith("error: ")]
    assert (len(pending), len(refused)) == (MAX_WAITS, WAITS - MAX_WAITS)
    assert all(f"too many waiting calls at once (the limit is {MAX_WAITS})" in a
               and "[too_many_waits]" in a for a in refused)


@pytest.mark.timeout(120)  # an unanswered request would block the read below for ever
def test_every_malformed_request_with_an_id_is_answered(
    settings: Settings, tmp_path: Path, project_id: str
) -> None:
    with subprocess.Popen([CTXDB, "mcp", "--project", project_id], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          env=server_env(settings, tmp_path), cwd=tmp_path) as server:
        assert server.stdin is not None and server.stdout is not None

        def send(line: str) -> dict[str, Any]:
            assert server.stdin is not None and server.stdout is not None
            server.stdin.write(line + "\n")
            server.stdin.flush()
            return dict(json.loads(server.stdout.readline()))

        assert send(json.dumps(INITIALIZE))["result"]["serverInfo"]["name"] == "ctxdb"
        server.stdin.write('{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        for line, request_id, code in MALFORMED:
            answer = send(line)
            assert (answer["jsonrpc"], answer["id"], answer["error"]["code"]) == (
                "2.0", request_id, code), line
        # The server still serves well-formed requests, and wrote nothing else.
        listed = send('{"jsonrpc": "2.0", "id": 99, "method": "tools/list"}')
        assert listed["id"] == 99 and len(listed["result"]["tools"]) == 6
        server.stdin.close()
        assert server.stdout.read() == ""
        assert server.wait(timeout=30) == 0


def test_refusals_name_the_problem() -> None:
    assert refusal('{"jsonrpc": "2.0", "id": 1, "method": "ping"}') is None
    assert refusal('{"jsonrpc": "2.0", "id": 1, "result": {}}') is None
    messages = {line: refused.message for line, _id, _code in MALFORMED
                if (refused := refusal(line)) is not None}
    assert len(messages) == len(MALFORMED)
    assert "params must be an object" in messages[MALFORMED[0][0]]
    assert "method must be a string" in messages[MALFORMED[1][0]]
    assert 'jsonrpc must be "2.0"' in messages[MALFORMED[2][0]]
    assert "lone surrogate" in messages[MALFORMED[4][0]]
    assert "nested deeper than the limit of 100 levels" in messages[MALFORMED[5][0]]
    # A line cut inside its id does not name one: "1" of id 12 would answer another request.
    cut = refusal('{"jsonrpc": "2.0", "id": 1')
    assert cut is not None and cut.request_id is None
    notification = refusal('{"jsonrpc": "2.0", "method": 5}')
    assert notification is not None and not notification.answered
