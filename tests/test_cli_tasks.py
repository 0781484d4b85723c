"""``ctxdb task …`` on both backends: every command, its JSON, exit codes and refusals."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ctxdb.settings import Settings
from test_cli import Cli


@pytest.fixture
def run(settings: Settings, tmp_path: Path) -> Cli:
    return Cli(settings.url, tmp_path)


@pytest.fixture
def pid(run: Cli) -> str:
    project_id: str = run.ok("project", "create", "Queue")["project_id"]
    return project_id


@pytest.fixture
def inst(run: Cli, pid: str) -> str:
    instance_id: str = run.ok("instance", "launch", "-p", pid)["instance_id"]
    return instance_id


def test_the_lease_lifecycle(run: Cli, pid: str, inst: str) -> None:
    first = run.ok("task", "create", "-p", pid, "parse", "--priority", "5",
                   "--description", "the parser")
    tid = str(first["task_id"])
    after = run.ok("task", "create", "-p", pid, "test", "--depends-on", tid, "--parent", tid)
    assert (first["status"], after["status"], after["depends_on"]) == (
        "ready", "pending", [first["task_id"]])
    claimed = run.ok("task", "claim", "-p", pid, inst, "--lease", "60")
    assert (claimed["task_id"], claimed["lease_owner"], claimed["epoch"]) == (
        first["task_id"], inst, 1)
    assert run.ok("task", "claim", "-p", pid, inst) is None
    assert run.ok("task", "start", tid, "1")["status"] == "running"
    run.ok("task", "renew", tid, "1", "--lease", "120")
    done = run.ok("task", "complete", tid, "1", "--result", '{"ok": true}')
    assert (done["status"], done["result"]) == ("done", {"ok": True})
    assert run.ok("task", "get", str(after["task_id"]), "-p", pid)["status"] == "ready"
    table = run("task", "list", "-p", pid)
    assert table.exit_code == 0 and "parse" in table.stdout
    assert [t["task_id"] for t in run.ok("task", "list", "-p", pid, "--status", "done")] == [
        first["task_id"]]


def test_fail_release_cancel_and_list_filters(run: Cli, pid: str, inst: str) -> None:
    a = str(run.ok("task", "create", "-p", pid, "a", "--priority", "2")["task_id"])
    b = str(run.ok("task", "create", "-p", pid, "b", "--priority", "1")["task_id"])
    run.ok("task", "claim", "-p", pid, inst)
    assert run.ok("task", "list", "-p", pid, "--owner", inst)[0]["task_id"] == int(a)
    assert run.ok("task", "release", a, "1")["status"] == "ready"
    run.ok("task", "claim", "-p", pid, inst)
    assert run.ok("task", "fail", a, "3", "broken")  # release moved it on["error"] == "broken"
    assert run.ok("task", "cancel", b, "-p", pid)["status"] == "cancelled"
    assert "no task to claim" in run("task", "claim", "-p", pid, inst).stdout


def test_refusals_exit_codes(run: Cli, pid: str, inst: str) -> None:
    tid = str(run.ok("task", "create", "-p", pid, "work")["task_id"])
    run.ok("task", "claim", "-p", pid, inst, "--lease", "0.2")
    result = run("task", "complete", tid, "7", "--json")
    assert result.exit_code == 4
    assert json.loads(result.stderr)["current_epoch"] == 1
    time.sleep(0.3)
    assert "expired" in run.fails(4, "task", "renew", tid, "1")
    assert "unknown task" in run.fails(3, "task", "get", "999999")
    run.fails(3, "task", "create", "-p", "proj_unknown", "x")
    run.fails(2, "task", "create", "-p", pid, "")
    run.fails(2, "task", "claim", "-p", pid, inst, "--lease", "0")
    run.fails(2, "task", "complete", tid, "1", "--result", "{not json")
    run.fails(2, "task", "list", "-p", pid, "--limit", "0")
    assert run.ok("task", "get", tid)["epoch"] == 1


def test_task_priorities_take_the_context_names_too(run: Cli, pid: str) -> None:
    low = run.ok("task", "create", "-p", pid, "tidy up", "--priority", "low")
    urgent = run.ok("task", "create", "-p", pid, "outage", "--priority", "CRITICAL")
    numbered = run.ok("task", "create", "-p", pid, "between", "--priority", "25")
    assert (low["priority"], urgent["priority"], numbered["priority"]) == (0, 30, 25)
    refused = run.fails(2, "task", "create", "-p", pid, "x", "--priority", "URGENT")
    assert "CRITICAL, HIGH, MEDIUM, LOW" in refused
