"""``ctxdb session …`` on both backends: every command, its JSON, exit codes and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxdb.settings import Settings
from test_cli import Cli


@pytest.fixture
def run(settings: Settings, tmp_path: Path) -> Cli:
    return Cli(settings.url, tmp_path)


@pytest.fixture
def pid(run: Cli) -> str:
    project_id: str = run.ok("project", "create", "Conversations")["project_id"]
    return project_id


def test_create_state_append_events_and_close(run: Cli, pid: str) -> None:
    session = run.ok("session", "create", "-p", pid, "shop-bot", "u1", "--state", '{"cart": []}')
    sid = session["session_id"]
    assert (session["status"], session["state"]) == ("open", {"cart": []})
    assert run.ok("session", "state", sid, '{"cart": ["apple"]}')["state"] == {"cart": ["apple"]}
    first = run.ok("session", "append", sid, "user", "hello", "--text", "--key", "m1",
                   "--metadata", '{"lang": "en"}')
    assert (first["sequence"], first["content"], first["metadata"]) == (1, "hello", {"lang": "en"})
    assert run.ok("session", "append", sid, "user", "hello", "--text", "--key", "m1",
                  "--metadata", '{"lang": "en"}') == first
    refused = run.fails(4, "session", "append", sid, "user", '"again"', "--key", "m1")
    assert "idempotency key 'm1' already names event" in refused
    assert "another content and metadata" in refused
    run.ok("session", "append", sid, "assistant", '{"text": "hi"}')
    run.ok("session", "append", sid, "tool", "42")
    events = run.ok("session", "events", sid)
    assert [(e["sequence"], e["role"]) for e in events] == [
        (1, "user"), (2, "assistant"), (3, "tool")]
    page = run.ok("session", "events", sid, "--after", "1", "--limit", "1")
    assert [e["content"] for e in page] == [{"text": "hi"}]
    assert run.ok("session", "get", sid, "-p", pid)["next_event_seq"] == 3
    closed = run.ok("session", "close", sid)
    assert closed["status"] == "closed"
    table = run("session", "events", sid)
    assert table.exit_code == 0 and "assistant" in table.stdout


def test_list_filters(run: Cli, pid: str) -> None:
    a = run.ok("session", "create", "-p", pid, "shop-bot", "u1")["session_id"]
    b = run.ok("session", "create", "-p", pid, "help-bot", "u2")["session_id"]
    run.ok("session", "close", b)
    assert [s["session_id"] for s in run.ok("session", "list", "-p", pid, "--app",
                                             "shop-bot")] == [a]
    assert [s["session_id"] for s in run.ok("session", "list", "-p", pid, "--status",
                                             "closed")] == [b]
    assert [s["session_id"] for s in run.ok("session", "list", "-p", pid, "--user", "u2")] == [b]
    table = run("session", "list", "-p", pid)
    assert table.exit_code == 0 and "help-bot" in table.stdout


def test_refusals_exit_codes(run: Cli, pid: str) -> None:
    sid = run.ok("session", "create", "-p", pid, "shop-bot", "u1")["session_id"]
    other = run.ok("project", "create", "Other")["project_id"]
    assert "unknown session" in run.fails(3, "session", "get", "sess_unknown")
    run.fails(3, "session", "events", sid, "-p", other)
    run.fails(3, "session", "create", "-p", "proj_unknown", "shop-bot", "u1")
    run.fails(2, "session", "create", "-p", pid, "shop-bot", "u1", "--instance", "nul\x00")
    run.fails(2, "session", "state", sid, "[1, 2]")
    run.fails(2, "session", "append", sid, "robot", '"x"')
    run.fails(2, "session", "append", sid, "user", "{not json")
    run.fails(2, "session", "events", sid, "--limit", "0")
    run.ok("session", "close", sid)
    result = run("session", "append", sid, "user", '"late"', "--json")
    assert result.exit_code == 4
    assert json.loads(result.stderr)["session_id"] == sid
    assert run.ok("session", "events", sid) == []
