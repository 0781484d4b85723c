"""Logging: the CLI's --verbose and $CTXDB_LOG_LEVEL, JSON lines on stderr for `ctxdb mcp`
(never on its stdout; `ctxdb serve`'s are checked in test_server_process), errors logged
where they become typed errors, and a hook log whose size stays bounded however many hooks
fail."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ctxdb.cli.main import cli
from ctxdb.hooks import logfile
from ctxdb.settings import Settings
from test_cli_demo import CLEAN_ENV
from test_mcp import CTXDB, server_env
from test_mcp_wire import INITIALIZE


@pytest.fixture(autouse=True)
def restore_logging() -> Any:
    """The CLI configures the root logger: give the next test the logging it had."""
    root, ctxdb_logger = logging.getLogger(), logging.getLogger("ctxdb")
    handlers, level = list(root.handlers), ctxdb_logger.level
    yield
    root.handlers[:] = handlers
    ctxdb_logger.setLevel(level)


def invoke(*args: str, **env: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={**CLEAN_ENV, **env})


def test_verbose_logs_the_migrations_of_a_new_database_on_stderr(tmp_path: Path) -> None:
    url = str(tmp_path / "new.db")
    quiet = invoke("--url", url, "project", "list", "--json")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    verbose = invoke("project", "list", "--json", "--url", str(tmp_path / "other.db"), "-v")
    assert verbose.exit_code == 0, verbose.output
    assert "INFO ctxdb.storage.migrate: created the schema: migrations 1 to" in verbose.stderr
    assert json.loads(verbose.stdout) == []  # stdout stays the command's output


def test_the_level_and_format_come_from_the_environment_too(tmp_path: Path) -> None:
    done = invoke("--url", str(tmp_path / "a.db"), "project", "list", "--json",
                  CTXDB_LOG_LEVEL="info", CTXDB_LOG_FORMAT="json")
    assert done.exit_code == 0, done.output
    [entry] = [json.loads(line) for line in done.stderr.splitlines()]
    assert (entry["level"], entry["logger"]) == ("INFO", "ctxdb.storage.migrate")
    assert entry["message"].startswith("created the schema") and entry["time"].endswith("Z")


def test_a_typed_error_is_logged_at_debug_with_its_traceback(tmp_path: Path) -> None:
    done = invoke("--url", str(tmp_path / "a.db"), "-vv", "--log-format", "json",
                  "project", "get", "proj_missing")
    assert done.exit_code == 3
    entries = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    [error] = [e for e in entries if e["logger"] == "ctxdb.cli.root"]
    assert error["level"] == "DEBUG" and error["message"] == "ProjectNotFoundError: exit 3"
    assert "Traceback" in error["exception"]


@pytest.mark.parametrize(("variable", "value"), [("CTXDB_LOG_LEVEL", "loud"),
                                                 ("CTXDB_LOG_FORMAT", "xml")])
def test_a_bad_logging_variable_is_a_typed_error(tmp_path: Path, variable: str,
                                                 value: str) -> None:
    done = invoke("--url", str(tmp_path / "a.db"), "project", "list", **{variable: value})
    assert done.exit_code == 2
    assert f"{variable}='{value}' is not a log" in done.stderr


def test_mcp_logs_json_lines_on_stderr_and_nothing_but_protocol_on_stdout(
    tmp_path: Path
) -> None:
    env = {**server_env(Settings(url=str(tmp_path / "mcp.db")), tmp_path),
           "CTXDB_LOG_LEVEL": "DEBUG", "CTXDB_LOG_FORMAT": "json"}
    with subprocess.Popen([CTXDB, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path) as server:
        assert server.stdin is not None and server.stdout is not None

        def send(line: str, answered: bool = True) -> dict[str, Any] | None:
            assert server.stdin is not None and server.stdout is not None
            server.stdin.write(line + "\n")
            server.stdin.flush()
            return dict(json.loads(server.stdout.readline())) if answered else None

        assert send(json.dumps(INITIALIZE)) is not None
        send('{"jsonrpc": "2.0", "method": "notifications/initialized"}', answered=False)
        send('{"jsonrpc": "2.0", "method": "notifications/x", "params": "bad"}', answered=False)
        answer = send('{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": '
                      '"get_context", "arguments": {"project_id": "proj_missing"}}}')
        assert answer is not None and answer["result"]["isError"] is True
        server.stdin.close()
        assert server.stdout.read() == ""  # nothing but the answers on stdout
        stderr = server.stderr.read() if server.stderr is not None else ""
        assert server.wait(timeout=30) == 0
    logged = [json.loads(line) for line in stderr.splitlines()]  # every line is JSON
    messages = {(e["logger"], e["message"].split(":")[0]) for e in logged}
    assert ("ctxdb.mcp.server", "MCP server on stdio") in messages
    assert ("ctxdb.mcp.stdio", "ignored a notification") in messages
    assert ("ctxdb.mcp.toolbox", "ProjectNotFoundError answered as a tool error [project_not_found]"
            ) in {(e["logger"], e["message"]) for e in logged}
    assert ("ctxdb.mcp.server", "MCP client closed stdin") in messages


def test_the_hook_log_stays_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "hook.log"
    monkeypatch.setenv("CTXDB_HOOK_LOG", str(path))
    monkeypatch.setattr(logfile, "MAX_LOG_BYTES", 20_000)
    monkeypatch.setattr(logfile, "MAX_ENTRY_CHARS", 4_000)
    for number in range(200):
        logfile.log_failure("SessionStart", message=f"failure {number} " + "x" * 500)
    logfile.log_failure("Stop", message="huge " + "é" * 1_000_000)
    older = path.with_name("hook.log.1")
    assert path.stat().st_size <= 20_000 and older.stat().st_size <= 20_000
    last = path.read_text(encoding="utf-8")
    assert "characters left out" in last and last.rstrip().endswith("é")
    assert "failure 199 " in last + older.read_text(encoding="utf-8")
    assert not path.with_name("hook.log.2").exists()
