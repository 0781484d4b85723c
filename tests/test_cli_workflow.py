"""``ctxdb approval|command|checkpoint …`` on both backends: every command, its JSON, exit
codes and refusals."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from test_cli import Cli

PY = sys.executable


@pytest.fixture
def run(settings: Settings, tmp_path: Path) -> Cli:
    return Cli(settings.url, tmp_path)


@pytest.fixture
def pid(run: Cli) -> str:
    project_id: str = run.ok("project", "create", "Flow")["project_id"]
    return project_id


@pytest.fixture
def inst(run: Cli, pid: str) -> str:
    instance_id: str = run.ok("instance", "launch", "-p", pid)["instance_id"]
    return instance_id


def json_of(run: Cli, *args: str, code: int = 0) -> Any:
    """Run a command whose own arguments end the line (--json goes before them)."""
    result = run(*args)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


# --- approval --------------------------------------------------------------------------------


def test_approval_request_list_show_decide(run: Cli, pid: str, inst: str) -> None:
    gate = run.ok("approval", "request", "-p", pid, "deploy", '{"version": "2.1"}',
                  "--title", "Ship 2.1", "--instance", inst, "--key", "ship-2.1")
    assert (gate["gate_id"], gate["status"], gate["request"], gate["requested_by"]) == (
        1, "pending", {"version": "2.1"}, inst)
    assert run.ok("approval", "request", "-p", pid, "deploy", '{"version": "2.1"}',
                  "--title", "Ship 2.1", "--instance", inst, "--key", "ship-2.1") == gate
    assert "idempotency key 'ship-2.1' already names approval gate 1" in run.fails(
        4, "approval", "request", "-p", pid, "deploy", "--key", "ship-2.1")
    plan = run.ok("approval", "request", "-p", pid, "plan")
    assert plan["request"] == {}
    assert [g["gate_id"] for g in run.ok("approval", "list", "-p", pid, "--status",
                                         "pending")] == [1, 2]
    table = run("approval", "list", "-p", pid)
    assert table.exit_code == 0 and "Ship 2.1" in table.stdout
    approved = run.ok("approval", "approve", "1", "--response", '{"when": "now"}')
    assert (approved["status"], approved["response"], approved["decided_by"]) == (
        "approved", {"when": "now"}, "user:test")
    rejected = run.ok("approval", "reject", "2", "--comment", "too risky", "-p", pid)
    assert (rejected["status"], rejected["response"]) == ("rejected", "too risky")
    assert run.ok("approval", "show", "2")["status"] == "rejected"
    assert [g["gate_id"] for g in run.ok("approval", "list", "-p", pid, "--type",
                                         "plan")] == [2]
    third = run.ok("approval", "request", "-p", pid, "plan")["gate_id"]
    assert run.ok("approval", "cancel", str(third))["status"] == "cancelled"


def test_approval_refusals(run: Cli, pid: str) -> None:
    run.ok("approval", "request", "-p", pid, "plan")
    run.ok("approval", "approve", "1")
    result = run("approval", "reject", "1", "--json")
    assert result.exit_code == 4
    error = json.loads(result.stderr)
    assert (error["error"], error["status"]) == ("already_decided", "approved")
    assert "already approved" in run.fails(4, "approval", "approve", "1")
    assert "unknown approval gate" in run.fails(3, "approval", "show", "99")
    other = run.ok("project", "create", "Other")["project_id"]
    run.fails(3, "approval", "show", "1", "-p", other)
    run.fails(3, "approval", "request", "-p", "proj_unknown", "plan")
    run.fails(2, "approval", "request", "-p", pid, "plan", "{not json")
    run.fails(2, "approval", "approve", "1", "--response", "1", "--comment", "x")
    run.fails(2, "approval", "list", "-p", pid, "--status", "maybe")
    assert run.ok("approval", "show", "1")["status"] == "approved"


def test_approval_wait_exit_codes(run: Cli, pid: str, settings: Settings) -> None:
    gate_id = str(run.ok("approval", "request", "-p", pid, "deploy")["gate_id"])
    result = run("approval", "wait", gate_id, "--timeout", "0.2", "--interval", "0.05",
                 "--json")
    assert result.exit_code == 5 and json.loads(result.stderr)["error"] == "approval_timeout"

    def approve_soon() -> None:
        with Ctxdb.open(settings) as db:
            db.approvals.approve(int(gate_id), "ok")

    timer = threading.Timer(0.3, approve_soon)
    timer.start()
    try:
        waited = run.ok("approval", "wait", gate_id, "--timeout", "30", "--interval", "0.05")
    finally:
        timer.join()
    assert (waited["status"], waited["response"]) == ("approved", "ok")
    rejected = str(run.ok("approval", "request", "-p", pid, "deploy")["gate_id"])
    run.ok("approval", "reject", rejected, "--comment", "no")
    assert "was rejected by user:test" in run.fails(4, "approval", "wait", rejected)
    result = run("approval", "wait", rejected, "--json")
    assert result.exit_code == 4 and result.stdout == ""
    assert json.loads(result.stderr)["response"] == "no"


# --- command ---------------------------------------------------------------------------------


def test_command_run_records_output_status_and_timings(run: Cli, pid: str, inst: str,
                                                       tmp_path: Path) -> None:
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    recorded = json_of(run, "command", "run", "-p", pid, "--instance", inst, "--json",
                       "--cwd", str(tmp_path), "--", PY, "-c", script, code=3)
    assert (recorded["status"], recorded["exit_code"], recorded["error"]) == (
        "failed", 3, "exit status 3")
    assert sorted(recorded["output"].splitlines()) == ["err", "out"]
    assert (recorded["command"], recorded["arguments"], recorded["cwd"],
            recorded["instance_id"]) == (PY, ["-c", script], str(tmp_path), inst)
    assert recorded["started_at"] is not None and recorded["duration_ms"] >= 0
    shown = run.ok("command", "show", str(recorded["run_id"]), "-p", pid)
    assert shown == recorded

    human = run("command", "run", "-p", pid, "--", PY, "-c", "print('hello')")
    assert human.exit_code == 0 and human.stdout == "hello\n"
    assert "command run 2 success" in human.stderr


def test_command_run_bounds_output_and_passes_options_through(run: Cli, pid: str) -> None:
    big = json_of(run, "command", "run", "-p", pid, "--json", "--max-output", "1000", "--",
                  PY, "-c", "print('a' * 600 + 'b' * 600, end='')")
    assert big["output"] == "a" * 500 + "\n… [200 bytes of output left out] …\n" + "b" * 500
    passed = json_of(run, "command", "run", "-p", pid, "--json", "--", PY, "-c",
                     "import sys; print(sys.argv[1:])", "--json", "-p")
    assert passed["output"] == "['--json', '-p']\n" and passed["arguments"][-2:] == [
        "--json", "-p"]


def test_command_run_timeout_and_missing_program(run: Cli, pid: str) -> None:
    slow = json_of(run, "command", "run", "-p", pid, "--json", "--timeout", "0.3", "--",
                   PY, "-c", "import time; print('started', flush=True); time.sleep(30)",
                   code=124)
    assert (slow["status"], slow["error"], slow["output"]) == (
        "failed", "timed out after 0.3 s", "started\n")
    assert slow["exit_code"] < 0 and slow["duration_ms"] < 10_000
    missing = json_of(run, "command", "run", "-p", pid, "--json", "--",
                      "ctxdb-no-such-program", code=127)
    assert (missing["status"], missing["exit_code"], missing["started_at"],
            missing["duration_ms"]) == ("failed", None, None, None)
    assert missing["error"] == "command not found: ctxdb-no-such-program"
    run.fails(2, "command", "run", "-p", pid, "--timeout", "0", "--", "true")
    run.fails(2, "command", "run", "-p", pid, "--max-output", str(10**9), "--", "true")
    run.fails(3, "command", "run", "-p", "proj_unknown", "--", "true")
    assert len(run.ok("command", "list", "-p", pid)) == 2


def test_command_queue_start_finish_record_cancel(run: Cli, pid: str, tmp_path: Path) -> None:
    queued = json_of(run, "command", "queue", "-p", pid, "--json", "--key", "ci-1", "--",
                     "make", "test")
    assert (queued["status"], queued["command"], queued["arguments"]) == (
        "queued", "make", ["test"])
    run_id = str(queued["run_id"])
    assert run.ok("command", "start", run_id)["status"] == "running"
    log = tmp_path / "build.log"
    log.write_text("12 passed\n", encoding="utf-8")
    done = run.ok("command", "finish", run_id, "--exit-code", "0", "--output-file", str(log))
    assert (done["status"], done["output"]) == ("success", "12 passed\n")
    assert "already ended (success)" in run.fails(4, "command", "finish", run_id,
                                                  "--exit-code", "1")
    assert "not queued" in run.fails(4, "command", "start", run_id)
    recorded = json_of(run, "command", "record", "-p", pid, "--json", "--exit-code", "1",
                       "--duration-ms", "5300", "--output", "boom", "--", "npm", "run",
                       "build")
    assert (recorded["status"], recorded["duration_ms"], recorded["output"]) == (
        "failed", 5300, "boom")
    other = json_of(run, "command", "queue", "-p", pid, "--json", "--", "deploy")
    cancelled = run.ok("command", "cancel", str(other["run_id"]), "--error", "superseded")
    assert (cancelled["status"], cancelled["error"]) == ("cancelled", "superseded")
    assert [r["run_id"] for r in run.ok("command", "list", "-p", pid, "--status",
                                        "failed")] == [recorded["run_id"]]
    assert [r["command"] for r in run.ok("command", "list", "-p", pid, "--command",
                                         "make")] == ["make"]
    table = run("command", "list", "-p", pid)
    assert table.exit_code == 0 and "npm" in table.stdout
    run.fails(2, "command", "finish", run_id)  # neither --exit-code nor --status
    run.fails(2, "command", "record", "-p", pid, "--", "x")
    run.fails(3, "command", "show", "999")
    otherp = run.ok("project", "create", "Other")["project_id"]
    run.fails(3, "command", "start", str(other["run_id"]), "-p", otherp)


# --- checkpoint ------------------------------------------------------------------------------


def test_checkpoint_save_latest_list_show(run: Cli, pid: str, inst: str,
                                          tmp_path: Path) -> None:
    assert run.ok("checkpoint", "latest", "-p", pid) is None
    assert "no checkpoint" in run("checkpoint", "latest", "-p", pid).stdout
    first = run.ok("checkpoint", "save", inst, '{"step": 1}', "--label", "plan")
    assert (first["state"], first["label"], first["generation"], first["instance_id"]) == (
        {"step": 1}, "plan", 0, inst)
    state_file = tmp_path / "state.json"
    state_file.write_text('{"step": 2}', encoding="utf-8")
    second = run.ok("checkpoint", "save", inst, "--file", str(state_file), "-p", pid)
    third = run.ok("checkpoint", "save", inst, input='{"step": 3}')
    assert third["state"] == {"step": 3}
    assert run.ok("checkpoint", "latest", "-p", pid, "--instance", inst) == third
    assert run.ok("checkpoint", "latest", "-p", pid, "--label", "plan") == first
    assert run.ok("checkpoint", "show", str(second["checkpoint_id"])) == second
    assert [c["checkpoint_id"] for c in run.ok("checkpoint", "list", "-p", pid, "--after",
                                               "1")] == [2, 3]
    table = run("checkpoint", "list", "-p", pid)
    assert table.exit_code == 0 and "plan" in table.stdout


def test_checkpoint_refusals(run: Cli, pid: str, inst: str) -> None:
    run.fails(2, "checkpoint", "save", inst, "{not json")
    run.fails(3, "checkpoint", "save", "inst_unknown", "{}")
    other = run.ok("project", "create", "Other")["project_id"]
    assert "belongs to project" in run.fails(2, "checkpoint", "save", inst, "{}", "-p", other)
    run.fails(3, "checkpoint", "show", "1")
    run.fails(3, "checkpoint", "latest", "-p", "proj_unknown")
    run.ok("project", "archive", pid)
    assert "archived" in run.fails(4, "checkpoint", "save", inst, "{}")
    assert run.ok("checkpoint", "list", "-p", pid) == []


def test_command_run_output_with_nul_and_bad_utf8_is_kept_as_text(run: Cli, pid: str) -> None:
    script = "import sys; sys.stdout.buffer.write(b'a\\x00b\\xffc')"
    recorded = json_of(run, "command", "run", "-p", pid, "--json", "--", PY, "-c", script)
    assert recorded["output"] == "a\ufffdb\ufffdc"


def test_ctrl_c_stops_the_command_and_cancels_the_run(settings: Settings, tmp_path: Path,
                                                      pid: str) -> None:
    """A real ``ctxdb`` process (SIGINT reaches it, not the command in its own group)."""
    import os
    import signal
    import subprocess
    import time

    ctxdb = str(Path(sys.executable).with_name("ctxdb"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CTXDB_")},
           "CTXDB_URL": settings.url, "CTXDB_ACTOR": "user:test", "HOME": str(tmp_path)}
    marker = tmp_path / "started"
    script = (f"import pathlib, time; print('working', flush=True); "
              f"pathlib.Path({str(marker)!r}).touch(); time.sleep(60)")
    process = subprocess.Popen(
        [ctxdb, "command", "run", "-p", pid, "--", PY, "-c", script], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert stdout == b"working\n" and b"cancelled: interrupted" in stderr
    with Ctxdb.open(settings) as db:
        [cancelled] = db.commands.list(pid)
        assert (cancelled["status"], cancelled["error"]) == ("cancelled", "interrupted")
        assert db.commands.get(cancelled["run_id"])["output"] == "working\n"
