"""``ctxdb message …`` on both backends: send, inbox, ack, promote, JSON and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctxdb.settings import Settings
from test_cli import Cli


@pytest.fixture
def run(settings: Settings, tmp_path: Path) -> Cli:
    return Cli(settings.url, tmp_path)


@pytest.fixture
def pid(run: Cli) -> str:
    project_id: str = run.ok("project", "create", "Mail")["project_id"]
    return project_id


def launch(run: Cli, pid: str, role: str) -> str:
    instance_id: str = run.ok("instance", "launch", "-p", pid, "--metadata",
                              f'{{"role": "{role}"}}')["instance_id"]
    return instance_id


def test_send_inbox_ack_promote(run: Cli, pid: str) -> None:
    reviewer, coder = launch(run, pid, "reviewer"), launch(run, pid, "coder")
    sent = run.ok("message", "send", "-p", pid, "--role", "reviewer", '{"pr": 12}',
                  "--subject", "review", "--sender", coder)
    direct = run.ok("message", "send", "-p", pid, "--to", coder, '"thanks"')
    assert (sent["recipient_kind"], sent["recipient"], sent["body"]) == (
        "role", "reviewer", {"pr": 12})
    got = run.ok("message", "inbox", reviewer, "--visibility", "60")
    assert [(m["message_id"], m["delivered_count"]) for m in got] == [(sent["message_id"], 1)]
    assert run.ok("message", "inbox", reviewer) == []
    assert [m["message_id"] for m in run.ok("message", "inbox", coder)] == [
        direct["message_id"]]
    acked = run.ok("message", "ack", reviewer, str(sent["message_id"]))
    assert (acked["delivered_count"], acked["acked_at"] is not None) == (1, True)
    # The older order, message first, is still understood.
    assert run.ok("message", "ack", str(direct["message_id"]), coder)["acked_at"] is not None
    memory = run.ok("message", "promote", str(sent["message_id"]), "memory", "-p", pid,
                    "--namespace", "team", "--key", "pr")
    assert memory["value"] == {"pr": 12}
    item = run.ok("message", "promote", str(direct["message_id"]), "context",
                  "--priority", "LOW")
    assert item["priority"] == "LOW"
    table = run("message", "inbox", reviewer)
    assert table.exit_code == 0 and "no messages" in table.stdout


def test_refusals(run: Cli, pid: str) -> None:
    coder = launch(run, pid, "coder")
    run.fails(2, "message", "send", "-p", pid, '"x"')
    run.fails(2, "message", "send", "-p", pid, "--to", coder, "--broadcast", '"x"')
    run.fails(2, "message", "send", "-p", pid, "--broadcast", "{not json")
    run.fails(3, "message", "send", "-p", pid, "--to", "inst_ghost", '"x"')
    assert "unknown message" in run.fails(3, "message", "ack", "999999", coder)
    assert "not a message id" in run.fails(2, "message", "ack", coder, "inst_other")
    run.fails(2, "message", "send", "-p", pid, "--broadcast", '"x"', "--text", "y")
    run.fails(2, "message", "inbox", coder, "--visibility", "0")
    run.fails(2, "message", "promote", "1", "disk")
    assert run.ok("message", "inbox", coder) == []


def test_text_bodies_role_warnings_and_bodies_in_the_inbox(run: Cli, pid: str) -> None:
    coder = launch(run, pid, "coder")
    nobody = run("message", "send", "-p", pid, "--role", "reviewer", "--text", "look at #12")
    assert nobody.exit_code == 0
    assert "no live instance is in role 'reviewer' yet" in nobody.stderr
    sent = run.ok("message", "send", "-p", pid, "--role", "coder", "--text", "rebase please",
                  "--sender", "user:lead")
    assert (sent["body"], sent["live_recipients"]) == ("rebase please", 1)
    shown = run("message", "inbox", coder)
    assert shown.exit_code == 0 and "rebase please" in shown.stdout
