"""The ctxdb command line on both backends: exit codes, --json output, errors, no side effects.

Every test runs the real commands (click's CliRunner) against the test's real database, given
with ``--url``; ``--traceback`` lets an unexpected exception fail the test with its traceback.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ctxdb.cli.main import cli
from ctxdb.settings import CONFIG_ENV, SETTINGS_HELP, Settings

# No CTXDB_* variable of the person running the tests may leak into the commands.
CLEAN_ENV: dict[str, str | None] = {s.env_var: None for s in SETTINGS_HELP} | {CONFIG_ENV: None}


class Cli:
    """Runs ``ctxdb --url <the test's database> …`` and parses JSON output."""

    def __init__(self, url: str, home: Path) -> None:
        self.url = url
        self.env = {**CLEAN_ENV, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
                    "CTXDB_ACTOR": "user:test"}

    def __call__(self, *args: str, input: str | bytes | None = None, **env: str) -> Result:
        return CliRunner().invoke(cli, ["--traceback", "--url", self.url, *args], input=input,
                                  env={**self.env, **env})

    def ok(self, *args: str, **env: str) -> Any:
        """Run a command with --json, check it succeeded, return the parsed output."""
        result = self(*args, "--json", **env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def fails(self, code: int, *args: str, input: str | bytes | None = None, **env: str) -> str:
        """Run a command that must fail with ``code``; return its one-line error message."""
        result = self(*args, input=input, **env)
        assert result.exit_code == code, result.output
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        return lines[0]


@pytest.fixture
def run(settings: Settings, tmp_path: Path) -> Cli:
    return Cli(settings.url, tmp_path)


@pytest.fixture
def pid(run: Cli) -> str:
    project_id: str = run.ok("project", "create", "Shop", "--story-points", "300")["project_id"]
    return project_id


def test_init_reports_an_up_to_date_schema(run: Cli) -> None:
    result = run.ok("init")
    assert result["to_version"] == result["latest_version"] >= 1
    status = run.ok("db", "status")
    assert {m["state"] for m in status["migrations"]} == {"applied"}
    human = run("db", "status")
    assert human.exit_code == 0 and "applied" in human.stdout


def test_project_lifecycle(run: Cli) -> None:
    created = run.ok("project", "create", "Shop", "-d", "rewrite", "--metadata", '{"team": "a"}')
    pid = created["project_id"]
    assert pid.startswith("proj_") and created["metadata"] == {"team": "a"}
    assert run.ok("project", "get", pid)["description"] == "rewrite"
    updated = run.ok("project", "update", pid, "--completed-points", "40", "--name", "Shop 2")
    assert (updated["name"], updated["completed_story_points"]) == ("Shop 2", 40)
    assert [p["project_id"] for p in run.ok("project", "list")] == [pid]
    human = run("project", "list")
    assert human.exit_code == 0 and pid in human.stdout
    assert run.ok("project", "archive", pid)["status"] == "archived"
    assert run.ok("project", "list") == []
    assert [p["status"] for p in run.ok("project", "list", "--all")] == ["archived"]
    assert "archived" in run.fails(4, "project", "archive", pid)


def test_unknown_project_exits_3_with_one_line_or_a_json_error(run: Cli) -> None:
    assert run.fails(3, "project", "get", "proj_nope") == "error: unknown project 'proj_nope'"
    result = run("project", "get", "proj_nope", "--json")
    assert result.exit_code == 3 and result.stdout == ""
    error = json.loads(result.stderr)
    assert error["error"] == "project_not_found" and error["exit_code"] == 3
    assert "proj_nope" in error["message"]


def test_bad_input_exits_2_and_changes_nothing(run: Cli, pid: str) -> None:
    assert "JSON" in run.fails(2, "project", "create", "X", "--metadata", "[1]")
    assert "not valid JSON" in run.fails(2, "project", "create", "X", "--metadata", "{")
    assert "Missing argument" in run.fails(2, "project", "create")
    assert "must not be negative" in run.fails(2, "project", "create", "X",
                                               "--story-points", "-1")
    assert [p["project_id"] for p in run.ok("project", "list")] == [pid]
    result = run("project", "create", "--json", "--metadata", "[1]", "X")
    assert result.exit_code == 2 and json.loads(result.stderr)["error"] == "usage"


def test_project_limit_exits_5(run: Cli, pid: str) -> None:
    message = run.fails(5, "project", "create", "Two", CTXDB_MAX_PROJECTS="1")
    assert "max_projects" in message
    assert len(run.ok("project", "list")) == 1


def test_phases(run: Cli, pid: str) -> None:
    first = run.ok("phase", "create", "-p", pid, "1", "Design", "--story-points", "20")
    second = run.ok("phase", "create", "--project", pid, "2", "Build")
    assert run.ok("phase", "current", "-p", pid) is None
    assert "cannot become completed" in run.fails(4, "phase", "complete",
                                                  str(first["phase_id"]))
    assert run.ok("phase", "start", str(first["phase_id"]))["status"] == "active"
    assert run.ok("phase", "current", "-p", pid)["phase_id"] == first["phase_id"]
    blocked = run.ok("phase", "block", str(second["phase_id"]), "--reason", "waiting on API")
    assert blocked["blocked_reason"] == "waiting on API"
    assert run.ok("phase", "complete", str(first["phase_id"]))["status"] == "completed"
    assert [p["status"] for p in run.ok("phase", "list", "-p", pid)] == ["completed", "blocked"]
    assert "already has a phase number 1" in run.fails(4, "phase", "create", "-p", pid,
                                                       "1", "Again")
    assert run.fails(3, "phase", "start", "999") == "error: unknown phase 999"
    assert "is not a valid integer" in run.fails(2, "phase", "start", "one")


def test_instances(run: Cli, pid: str) -> None:
    one = run.ok("instance", "launch", "-p", pid, "--client", "claude-code",
                 "--context-window", "1000")
    two = run.ok("instance", "launch", "-p", pid, "--id", "inst_two", "--client", "codex")
    assert (one["client"], one["context_window"], two["instance_id"]) == \
        ("claude-code", 1000, "inst_two")
    assert run.ok("instance", "get", "inst_two")["status"] == "active"
    assert run.ok("instance", "heartbeat", "inst_two")["status"] == "active"
    assert run.ok("instance", "end", "inst_two")["status"] == "completed"
    listed = run.ok("instance", "list", "--project", pid, "--status", "active")
    assert [i["instance_id"] for i in listed] == [one["instance_id"]]
    assert "has ended" in run.fails(4, "instance", "heartbeat", "inst_two")
    assert "invalid InstanceStatus" in run.fails(2, "instance", "list", "--status", "sleepy")
    assert run.fails(3, "instance", "get", "inst_nope") == "error: unknown instance 'inst_nope'"
    time.sleep(0.05)
    crashed = run.ok("instance", "reap", "-p", pid, CTXDB_STALE_AFTER="0.01")
    assert [c["instance_id"] for c in crashed] == [one["instance_id"]]
    assert run.ok("instance", "get", one["instance_id"])["status"] == "crashed"


def test_instance_limit_exits_5(run: Cli, pid: str) -> None:
    run.ok("instance", "launch", "-p", pid)
    message = run.fails(5, "instance", "launch", "-p", pid, CTXDB_MAX_INSTANCES_PER_PROJECT="1")
    assert "max_instances_per_project" in message
    assert len(run.ok("instance", "list")) == 1


def test_context_store_from_argument_file_stdin_and_text(
    run: Cli, pid: str, tmp_path: Path
) -> None:
    critical = run.ok("context", "store", "-p", pid, '{"decision": "Stripe"}',
                      "--priority", "critical", "--type", "decision")
    source = tmp_path / "note.json"
    source.write_text('{"file": "cart.py"}', encoding="utf-8")
    high = run.ok("context", "store", "-p", pid, "--file", str(source), "--token-count", "7")
    result = run("context", "store", "-p", pid, "--priority", "MEDIUM", "--json",
                 input='["from", "stdin"]\n')
    assert result.exit_code == 0, result.output
    low = run.ok("context", "store", "-p", pid, "plain words", "--text", "--priority", "LOW",
                 "--metadata", '{"source": "test"}')
    assert (critical["priority"], high["token_count"], low["priority"]) == \
        ("CRITICAL", 7, "LOW")
    grouped = run.ok("context", "list", "-p", pid)
    assert grouped["CRITICAL"][0]["content"] == {"decision": "Stripe"}
    assert grouped["MEDIUM"][0]["content"] == ["from", "stdin"]
    assert grouped["LOW"][0]["content"] == "plain words"
    assert run.ok("context", "get", str(high["item_id"]))["content"] == {"file": "cart.py"}


def test_bad_context_input_changes_nothing(run: Cli, pid: str) -> None:
    run.ok("context", "store", "-p", pid, '{"a": 1}')
    before = run.ok("context", "list", "-p", pid)
    assert run.fails(2, "context", "store", "-p", pid, "{}", "--priority", "URGENT") == \
        "error: invalid priority 'URGENT': expected one of CRITICAL, HIGH, MEDIUM, LOW"
    assert "not valid JSON" in run.fails(2, "context", "store", "-p", pid, "not json")
    assert "empty" in run.fails(2, "context", "store", "-p", pid, input="")
    assert "either as an argument or with --file" in run.fails(
        2, "context", "store", "-p", pid, "{}", "--file", "x.json")
    assert "unknown project" in run.fails(3, "context", "store", "-p", "proj_x", "{}")
    assert "unknown phase" in run.fails(3, "context", "store", "-p", pid, "{}", "--phase", "9")
    assert "over the limit" in run.fails(2, "context", "store", "-p", pid, '"xxxxxxxx"',
                                         CTXDB_MAX_CONTENT_BYTES="5")
    assert run.ok("context", "list", "-p", pid) == before


def test_page_supersede_delete(run: Cli, pid: str) -> None:
    ids = [run.ok("context", "store", "-p", pid, json.dumps({"n": n}))["item_id"]
           for n in range(3)]
    page = run.ok("context", "page", "-p", pid, "--priority", "high", "--limit", "2")
    assert [i["item_id"] for i in page["items"]] == ids[:2]
    rest = run.ok("context", "page", "-p", pid, "--priority", "HIGH",
                  "--after", str(page["next_after_sequence"]))
    assert [i["item_id"] for i in rest["items"]] == ids[2:]
    assert "limit must be between" in run.fails(2, "context", "page", "-p", pid,
                                                "--priority", "HIGH", "--limit", "0")
    new = run.ok("context", "supersede", str(ids[0]), '{"n": "zero"}', "--priority", "LOW")
    assert run.ok("context", "get", str(ids[0]))["state"] == "superseded"
    assert new["priority"] == "LOW"
    assert run.ok("context", "delete", str(ids[1]))["state"] == "deleted"
    assert "already deleted" in run.fails(4, "context", "delete", str(ids[1]))
    assert run.fails(3, "context", "get", "999") == "error: unknown context item 999"
    live = run.ok("context", "list", "-p", pid)
    assert [i["item_id"] for i in live["HIGH"]] == [ids[2]]


def test_a_silent_instance_lists_as_stale_before_any_reap(run: Cli, pid: str) -> None:
    silent = run.ok("instance", "launch", "-p", pid)["instance_id"]
    fresh = run.ok("instance", "launch", "-p", pid)["instance_id"]
    time.sleep(1.2)
    run.ok("instance", "heartbeat", fresh)  # a heartbeat does not reap the others
    listed = {i["instance_id"]: i for i in run.ok("instance", "list", "-p", pid,
                                                   CTXDB_STALE_AFTER="1")}
    assert (listed[silent]["status"], listed[silent]["silent"]) == ("active", True)
    assert (listed[fresh]["status"], listed[fresh]["silent"]) == ("active", False)
    table = run("instance", "list", "-p", pid, CTXDB_STALE_AFTER="1", COLUMNS="200").stdout
    assert table.count("active (stale)") == 1
    assert not run.ok("instance", "list", "-p", pid)[0]["silent"]  # default: 300 s


def test_bare_context_of_an_empty_project_says_so(run: Cli, pid: str) -> None:
    empty = run("context", "-p", pid)
    assert empty.exit_code == 0 and empty.stdout == ""
    assert f"nothing to inject: project {pid} has no live context items" in empty.stderr


def test_bare_context_prints_the_pack_in_each_format(run: Cli, pid: str) -> None:
    run.ok("context", "store", "-p", pid, '{"decision": "Stripe"}', "--priority", "CRITICAL")
    run.ok("context", "store", "-p", pid, json.dumps({"note": "x" * 400}), "--priority", "LOW")
    text = run("context", "-p", pid, "--budget-tokens", "50")
    assert text.exit_code == 0, text.output
    # The text a SessionStart hook injects: the LOW item did not fit the budget.
    assert text.stdout == (f"# ctxdb context: project {pid} (startup)\n"
                           '- [CRITICAL] #1 (code): {"decision": "Stripe"}\n')
    markdown = run("context", "--project", pid, "--format", "markdown")
    assert "- [CRITICAL] #1" in markdown.stdout and "- [LOW] #2" in markdown.stdout
    pack = json.loads(run("context", "-p", pid, "--format", "json", "--budget-tokens",
                          "50").stdout)
    assert pack["counts"] == {"CRITICAL": 1, "HIGH": 0, "MEDIUM": 0, "LOW": 0}
    assert pack["manifest"]["omitted"][0]["reason"] == "exceeds_remaining_budget"
    assert pack["text"] == text.stdout.rstrip("\n") and pack["handoff"] is None
    plain = run.ok("context", "pack", "-p", pid, "--budget-tokens", "50")
    assert {key: pack[key] for key in plain} == plain
    # CRITICAL over the budget: the pack refuses; the preview shows what a reload injects.
    assert "CRITICAL context needs" in run.fails(5, "context", "pack", "-p", pid,
                                                 "--budget-tokens", "1")
    tight = run("context", "-p", pid, "--budget-tokens", "1")
    assert tight.exit_code == 0, tight.output
    assert tight.stdout == (f"# ctxdb context: project {pid} (startup)\n"
                            "- [CRITICAL] 1 item(s) over the reload budget, not loaded: "
                            f"#{pack['items'][0]['item_id']} (code, "
                            f"{pack['items'][0]['token_count']} tokens). "
                            "Fetch one with `ctxdb context get ITEM_ID`.\n")
    assert "'yaml' is not one of" in run.fails(2, "context", "-p", pid, "--format", "yaml")


def test_injected_numbers_are_the_ids_context_get_takes_within_the_project(
        run: Cli, pid: str) -> None:
    """The injected text numbers an item by the id ``context get`` takes; a ``get`` with a
    project refuses another project's item, so a fetch never crosses projects silently."""
    other = run.ok("project", "create", "Other")["project_id"]
    theirs = run.ok("context", "store", "-p", other, '{"secret": 1}')["item_id"]
    ours = run.ok("context", "store", "-p", pid, '{"rule": "cents"}', "--priority",
                  "CRITICAL")["item_id"]
    assert ours != 1  # the item is first in its project: sequence 1, but not id 1
    text = run("context", "-p", pid).stdout
    assert f'- [CRITICAL] #{ours} (code): {{"rule": "cents"}}' in text and "#1 " not in text
    assert run.ok("context", "get", str(ours), "-p", pid)["content"] == {"rule": "cents"}
    assert run.ok("context", "-p", pid, "get", str(ours))["item_id"] == ours
    refused = run.fails(3, "context", "get", str(theirs), "-p", pid)
    assert refused == f"error: unknown context item {theirs} in project {pid!r}"
    assert "unknown context item" in run.fails(3, "context", "-p", pid, "get", str(theirs))
    markdown = run("context", "-p", pid, "--format", "markdown").stdout
    assert f"- [CRITICAL] #{ours} (code)" in markdown


def test_tokens_usage_and_clear_and_reload(run: Cli, pid: str) -> None:
    run.ok("context", "store", "-p", pid, '{"rule": "cents"}', "--priority", "CRITICAL")
    iid = run.ok("instance", "launch", "-p", pid, "--context-window", "1000")["instance_id"]
    assert run.ok("tokens", "update", iid, "300")["percentage"] == 30.0
    assert "outside 0..1000" in run.fails(2, "tokens", "update", iid, "1001")
    assert run.ok("tokens", "check", iid)["current_token_usage"] == 300
    assert run.ok("tokens", "auto", iid) is None
    run.ok("tokens", "update", iid, "900")
    report = run.ok("tokens", "all", "-p", pid)
    assert [i["status"] for i in report["instances"]] == ["warning"]
    reload = run.ok("tokens", "auto", iid, "--summary", "half done", "--next-step", "tests")
    assert (reload["tokens_before"], reload["tokens_after"], reload["generation"]) == \
        (900, 0, 1)
    assert reload["handoff"]["next_steps"] == ["tests"] and reload["critical_items"] == 1
    human = run("tokens", "clear", iid, "--summary", "again", "--next-step", "a",
                "--next-step", "b")
    assert human.exit_code == 0, human.output
    assert "handoff saved" in human.stdout and "CRITICAL" in human.stdout
    assert run.ok("tokens", "check", iid)["generation"] == 2
    assert "threshold must be in" in run.fails(2, "tokens", "auto", iid, "--threshold", "2")


def test_tokens_clear_names_critical_items_over_the_reload_budget(run: Cli, pid: str) -> None:
    kept, left_out = (run.ok("context", "store", "-p", pid, f'{{"rule": {n}}}', "--priority",
                             "CRITICAL", "--token-count", "200")["item_id"] for n in range(2))
    iid = run.ok("instance", "launch", "-p", pid, "--context-window", "1000")["instance_id"]
    run.ok("tokens", "update", iid, "900")
    reload = run.ok("tokens", "auto", iid, "--summary", "over budget")  # 400 > 250
    assert (reload["tokens_after"], reload["generation"]) == (0, 1)
    assert [item["item_id"] for item in reload["items"]] == [kept]
    assert [item["item_id"] for item in reload["critical_omitted"]] == [left_out]
    human = run("tokens", "clear", iid)
    assert human.exit_code == 0, human.output
    assert "1 CRITICAL item(s) over the reload budget of 250 tokens" in human.stdout
    assert "ctxdb context get ITEM_ID" in human.stdout
    assert run.ok("tokens", "check", iid)["generation"] == 2


def test_summary_and_audit(run: Cli, pid: str) -> None:
    run.ok("instance", "launch", "-p", pid)
    run.ok("context", "store", "-p", pid, "{}")
    [row] = run.ok("summary")
    assert (row["project_id"], row["active_instances"], row["context_items"]) == (pid, 1, 1)
    assert row["total_snapshots"] == 1  # the seed's name for the same count
    assert "context_items" in run("summary").stdout
    entries = run.ok("audit", "--project", pid, "--limit", "2")
    assert [e["action"] for e in entries] == ["context.store", "instance.launch"]
    assert [e["action"] for e in run.ok("audit", "--entity", pid)] == ["project.create"]
    assert "project.create" in run("audit").stdout
    assert "--limit" in run.fails(2, "audit", "--limit", "0")


def test_bad_settings_exit_2_naming_the_variable(run: Cli, tmp_path: Path) -> None:
    message = run.fails(2, "project", "list", CTXDB_CONTEXT_WINDOW="lots")
    assert "CTXDB_CONTEXT_WINDOW" in message
    missing = tmp_path / "missing.toml"
    assert "does not exist" in run.fails(2, "--config", str(missing), "project", "list")


@pytest.mark.parametrize("command", [
    ("context", "store", "-p", "PID"),
    ("context", "store", "-p", "PID", "--text"),
    ("memory", "put", "-p", "PID", "notes", "k"),
    ("memory", "put", "-p", "PID", "notes", "k", "--text"),
])
def test_missing_unreadable_or_binary_input_files_are_typed_errors(
        run: Cli, pid: str, tmp_path: Path, command: tuple[str, ...]) -> None:
    """Each names the file and the problem (exit 2), not an internal error; nothing stored."""
    args = [pid if arg == "PID" else arg for arg in command]
    binary = tmp_path / "bin.dat"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    locked = tmp_path / "locked.json"
    locked.write_text("{}", encoding="utf-8")
    locked.chmod(0o000)
    missing = tmp_path / "missing.json"
    assert run.fails(2, *args, "--file", str(missing)) == f"error: {missing}: no such file"
    assert run.fails(2, *args, "--file", str(binary)) == (
        f"error: {binary} is not UTF-8 text (byte 0x89 at offset 0); give a text file")
    if os.geteuid() != 0:  # root reads any file
        assert run.fails(2, *args, "--file", str(locked)) == \
            f"error: {locked}: permission denied"
    assert run.fails(2, *args, input=b"\xff\xfe{}") == (
        "error: stdin is not UTF-8 text (byte 0xff at offset 0); give a text file")
    assert run.ok("context", "list", "-p", pid) == {
        "CRITICAL": [], "HIGH": [], "MEDIUM": [], "LOW": []}


DEEP = "[" * 5_000 + "]" * 5_000
NESTED_150 = '{"a": ' * 150 + "1" + "}" * 150
LONG_INTEGER = "1" * 4_301


@pytest.mark.parametrize(("bad", "limit"), [
    (DEEP, "nested deeper than the limit of 100 levels"),
    (NESTED_150, "nested deeper than the limit of 100 levels"),
    (LONG_INTEGER, "an integer of 4301 digits, over the limit of 4300 digits"),
])
def test_json_over_a_limit_is_a_typed_error_at_every_cli_entry_point(
        run: Cli, pid: str, bad: str, limit: str) -> None:
    """Deep JSON and huge integers name the limit (exit 2), never 'internal error'; nothing
    changes (the audit log counts every write)."""
    iid = run.ok("instance", "launch", "-p", pid)["instance_id"]
    sid = run.ok("session", "create", "-p", pid, "app", "u1")["session_id"]
    item = run.ok("context", "store", "-p", pid, "{}")["item_id"]
    before = len(run.ok("audit", "-p", pid, "--limit", "1000"))
    wrapped = f'{{"x": {bad}}}'
    commands = [
        ("context", "store", "-p", pid, bad), ("context", "supersede", str(item), bad),
        ("context", "store", "-p", pid, "{}", "--metadata", wrapped),
        ("memory", "put", "-p", pid, "ns", "k", bad),
        ("checkpoint", "save", iid, bad), ("session", "append", sid, "user", bad),
        ("session", "state", sid, wrapped), ("message", "send", "-p", pid, "--broadcast", bad),
        ("approval", "request", "-p", pid, "deploy", bad),
    ]
    for command in commands:
        assert limit in run.fails(2, *command), command
    assert limit in run.fails(2, "context", "store", "-p", pid, input=bad)
    assert len(run.ok("audit", "-p", pid, "--limit", "1000")) == before


def test_root_options_may_follow_the_subcommand(settings: Settings, tmp_path: Path) -> None:
    made = Cli(settings.url, tmp_path).ok("project", "create", "Placed")["project_id"]
    env = {**CLEAN_ENV, "HOME": str(tmp_path)}
    for args in (["project", "list", "--json", "--url", settings.url],
                 ["project", "list", f"--url={settings.url}", "--json", "--traceback"]):
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code == 0, (args, result.output)
        assert [p["project_id"] for p in json.loads(result.stdout)] == [made]


def test_hoisting_stops_at_a_double_dash() -> None:
    from ctxdb.cli.root import hoisted

    assert hoisted(["project", "list", "--url", "a.db", "--json"]) == [
        "--url", "a.db", "project", "list", "--json"]
    assert hoisted(["command", "run", "--", "tool", "--url", "x"]) == [
        "command", "run", "--", "tool", "--url", "x"]
    assert hoisted(["project", "list", "--url"]) == ["project", "list", "--url"]
