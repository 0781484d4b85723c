"""``ctxdb install``: the command it writes (portable ``ctxdb`` or a path, with a warning), its
refusal to register an MCP server whose SDK is missing, and ``--no-mcp``.

The real ``ctxdb`` program of this environment runs in a subprocess whose PATH the test sets;
an environment without the MCP SDK is one where ``import mcp`` fails (``sys.modules["mcp"]``
set to None, as Python does for a module it must not import), nothing of ctxdb replaced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ctxdb.cli.main import cli
from test_install import EXE, Setup, ctxdb_entries, ctxdb_server, load, setup  # noqa: F401

SCRIPTS = Path(sysconfig.get_path("scripts"))
PROGRAM = SCRIPTS / "ctxdb"
SYSTEM_PATH = "/usr/bin:/bin"
WITHOUT_SDK = "import sys; sys.modules['mcp'] = None; from ctxdb.cli.main import main; main()"


def run_program(setup: Setup, path: str, *args: str,  # noqa: F811
                argv: tuple[str, ...] = (str(PROGRAM),)) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*argv, "install", *args], capture_output=True, text=True,
                          cwd=setup.repo, timeout=60, check=False,
                          env={**os.environ, "HOME": str(setup.home), "PATH": path})


def written_commands(setup: Setup) -> set[str]:  # noqa: F811
    """Every command ctxdb's Claude Code hooks and MCP server run, as written."""
    files = setup.files("claude-code", "project")
    hooks = load(files["hooks"])
    commands = {e["command"].removesuffix(" hook --client claude-code")
                for event in hooks["hooks"] for e in ctxdb_entries(hooks, event, "claude-code")}
    return commands | {ctxdb_server(load(files["mcp"]), "claude-code")["command"]}


def test_the_bare_command_when_the_ctxdb_on_path_is_this_one(setup: Setup) -> None:  # noqa: F811
    done = run_program(setup, f"{SCRIPTS}{os.pathsep}{SYSTEM_PATH}", "claude-code")
    assert done.returncode == 0, done.stderr
    assert written_commands(setup) == {"ctxdb"}
    assert "warning" not in done.stderr


def test_a_launcher_on_path_that_links_to_this_ctxdb_counts_as_this_one(
        setup: Setup) -> None:  # noqa: F811
    launchers = setup.tmp / "local-bin"  # as pipx and uv tool link their programs
    launchers.mkdir()
    (launchers / "ctxdb").symlink_to(PROGRAM)
    done = run_program(setup, f"{launchers}{os.pathsep}{SYSTEM_PATH}", "claude-code",
                       argv=(str(launchers / "ctxdb"),))
    assert done.returncode == 0, done.stderr
    assert written_commands(setup) == {"ctxdb"}


@pytest.mark.parametrize("other_ctxdb", [False, True])
def test_a_path_of_this_machine_is_written_with_a_warning_naming_the_files(
        setup: Setup, other_ctxdb: bool) -> None:  # noqa: F811
    path = SYSTEM_PATH
    if other_ctxdb:  # another ctxdb on PATH (another clone's virtualenv) is not this one
        setup.bin.mkdir()
        (setup.bin / "ctxdb").write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        (setup.bin / "ctxdb").chmod(0o755)
        path = f"{setup.bin}{os.pathsep}{SYSTEM_PATH}"
    done = run_program(setup, path, "claude-code")
    assert done.returncode == 0, done.stderr
    assert written_commands(setup) == {str(PROGRAM)}
    files = setup.files("claude-code", "project")
    warning = next(line for line in done.stderr.splitlines() if line.startswith("warning:"))
    assert f"{files['hooks']}, {files['mcp']} now hold {PROGRAM}, a path of this machine" \
        in warning
    assert "put this ctxdb on PATH" in warning


def test_the_warning_is_in_the_json_output_too(setup: Setup) -> None:  # noqa: F811
    done = run_program(setup, SYSTEM_PATH, "gemini", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    (warning,) = json.loads(done.stdout)["warnings"]
    assert "a path of this machine" in warning and ".gemini/settings.json" in warning
    assert setup.snapshot() == {}


def test_a_chosen_command_is_written_as_given_without_warning(setup: Setup) -> None:  # noqa: F811
    done = setup.ok("claude-code", exe="uvx ctxdb")
    assert "warning" not in done.output
    assert written_commands(setup) == {"'uvx ctxdb'", "uvx ctxdb"}


def test_without_the_mcp_sdk_the_server_is_refused_and_nothing_written(
        setup: Setup) -> None:  # noqa: F811
    done = run_program(setup, f"{SCRIPTS}{os.pathsep}{SYSTEM_PATH}", "claude-code",
                       argv=(sys.executable, "-c", WITHOUT_SDK))
    assert done.returncode == 2, done.stderr
    assert "refusing to register ctxdb's MCP server" in done.stderr
    assert "-m pip install 'mcp" in done.stderr and "--no-mcp" in done.stderr
    assert setup.snapshot() == {}
    hooks_only = run_program(setup, f"{SCRIPTS}{os.pathsep}{SYSTEM_PATH}", "claude-code",
                             "--no-mcp", argv=(sys.executable, "-c", WITHOUT_SDK))
    assert hooks_only.returncode == 0, hooks_only.stderr
    files = setup.files("claude-code", "project")
    assert ctxdb_entries(load(files["hooks"]), "SessionStart", "claude-code")
    assert not files["mcp"].exists()


def install_without_sdk(setup: Setup, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                        *args: str) -> Result:
    monkeypatch.setitem(sys.modules, "mcp", None)
    return CliRunner().invoke(cli, ["install", *args, "--ctxdb-command", EXE],
                              env={"HOME": str(setup.home), "CODEX_HOME": None,
                                   "CTXDB_TOKEN": "t",
                                   "PATH": f"{setup.bin}{os.pathsep}{SYSTEM_PATH}"})


@pytest.mark.parametrize("client", ["claude-code", "codex", "gemini"])
@pytest.mark.parametrize("scope", ["project", "user"])
def test_every_client_refuses_without_the_sdk_but_takes_the_hooks_alone(
        setup: Setup, monkeypatch: pytest.MonkeyPatch, client: str,  # noqa: F811
        scope: str) -> None:
    refused = install_without_sdk(setup, monkeypatch, client, "--scope", scope, "--json")
    assert refused.exit_code == 2
    error = json.loads(refused.stderr)
    assert (error["error"], error["extra"]) == ("invalid_config", "mcp")
    assert setup.snapshot() == {}
    assert install_without_sdk(setup, monkeypatch, client, "--scope", scope,
                               "--no-mcp").exit_code == 0
    files = setup.files(client, scope)
    hooks_file = files["settings" if client == "gemini" else "hooks"]
    assert ctxdb_entries(load(hooks_file), "SessionStart", client)
    mcp_file = files["settings" if client == "gemini" else "mcp" if client == "claude-code"
                     else "config"]
    servers = load(mcp_file).get("mcp_servers" if client == "codex" else "mcpServers", {}) \
        if mcp_file.exists() else {}
    assert "ctxdb" not in servers
    # A server by URL needs no SDK here, and uninstalling never does.
    assert install_without_sdk(setup, monkeypatch, client, "--scope", scope, "--server",
                               "https://ctxdb.example").exit_code == 0
    assert install_without_sdk(setup, monkeypatch, client, "--scope", scope,
                               "--uninstall").exit_code == 0
    assert setup.snapshot() == {}


@pytest.mark.parametrize("client", ["claude-code", "codex", "gemini"])
def test_no_mcp_leaves_an_existing_server_entry_as_it_is(setup: Setup,  # noqa: F811
                                                          client: str) -> None:
    setup.ok(client, "--server", "https://ctxdb.example")
    files = setup.files(client, "project")
    mcp_file = files["settings" if client == "gemini" else "mcp" if client == "claude-code"
                     else "config"]
    server = ctxdb_server(load(mcp_file), client)
    setup.ok(client, "--no-mcp", exe="/elsewhere/ctxdb")
    assert ctxdb_server(load(mcp_file), client) == server
    hooks_file = files["settings" if client == "gemini" else "hooks"]
    (entry,) = ctxdb_entries(load(hooks_file), "SessionStart", client)
    assert entry["command"] == f"/elsewhere/ctxdb hook --client {client}"


def test_codex_no_mcp_still_switches_hooks_on_for_an_old_codex(setup: Setup) -> None:  # noqa: F811
    setup.fake_codex("0.150.0")
    setup.ok("codex", "--no-mcp")
    config = load(setup.files("codex", "project")["config"])
    assert config == {"features": {"hooks": True}}


@pytest.mark.parametrize("args", [("--uninstall",), ("--server", "https://ctxdb.example")])
def test_no_mcp_goes_with_neither_uninstall_nor_server(setup: Setup,  # noqa: F811
                                                       args: tuple[str, ...]) -> None:
    done = setup.run("gemini", "--no-mcp", *args)
    assert done.exit_code == 2 and "--no-mcp installs the hooks only" in done.output
    assert setup.snapshot() == {}


def test_codex_user_scope_goes_where_codex_reads_it(setup: Setup) -> None:  # noqa: F811
    """With ``$CODEX_HOME`` set, Codex reads the user's hooks.json and config.toml there."""
    codex_home = setup.tmp / "codex-home"
    env = {"HOME": str(setup.home), "CODEX_HOME": str(codex_home),
           "PATH": f"{setup.bin}{os.pathsep}{SYSTEM_PATH}"}
    done = CliRunner().invoke(cli, ["install", "codex", "--scope", "user",
                                    "--ctxdb-command", EXE], env=env)
    assert done.exit_code == 0, done.output
    assert ctxdb_entries(load(codex_home / "hooks.json"), "SessionStart", "codex")
    assert '[mcp_servers.ctxdb]' in (codex_home / "config.toml").read_text(encoding="utf-8")
    assert not (setup.home / ".codex").exists()
