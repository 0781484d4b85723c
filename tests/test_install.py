"""``ctxdb install``: ctxdb's hooks and MCP server merged into real settings files, and removed.

Every test runs the real command on real files in a temporary home folder and a temporary
git repository (the current directory is a folder inside it), for each client and scope.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ctxdb.cli.main import cli
from ctxdb.clients.merge import hook_command_pattern

CLIENTS = ("claude-code", "codex", "gemini")
SCOPES = ("project", "user")
EXE = "/opt/ctxdb tools/bin/ctxdb"  # a space, so that quoting is exercised
QUOTED_EXE = "'/opt/ctxdb tools/bin/ctxdb'"

EVENTS = {
    "claude-code": ["SessionStart", "UserPromptSubmit", "PreCompact", "PostCompact", "Stop",
                    "SubagentStop", "SessionEnd"],
    "codex": ["SessionStart", "UserPromptSubmit", "PreCompact", "PostCompact", "Stop"],
    "gemini": ["SessionStart", "BeforeAgent", "AfterAgent", "PreCompress", "SessionEnd"],
}
# Which of a client's files holds the hooks, and which the MCP server.
HOOKS_FILE = {"claude-code": "hooks", "codex": "hooks", "gemini": "settings"}
MCP_FILE = {"claude-code": "mcp", "codex": "config", "gemini": "settings"}

USER_CONTENT: dict[str, dict[str, str]] = {
    "claude-code": {
        "hooks": json.dumps({
            "permissions": {"allow": ["Bash(git status)"]},
            "hooks": {
                "SessionStart": [{"matcher": "startup", "hooks": [
                    {"type": "command", "command": "echo hello", "timeout": 5}]}],
                "PreToolUse": [{"matcher": "Bash", "hooks": [
                    {"type": "command", "command": "./guard.sh"}]}],
            },
            "model": "opus",
        }, indent=2) + "\n",
        "mcp": json.dumps({"numStartups": 3, "mcpServers": {
            "docs": {"type": "stdio", "command": "docs-mcp", "args": []}}}, indent=2) + "\n",
    },
    "codex": {
        "hooks": json.dumps({"hooks": {"Stop": [{"hooks": [
            {"type": "command", "command": "notify-send done", "timeout": 5}]}]}},
            indent=2) + "\n",
        "config": (
            "# my Codex settings\n"
            'model = "o3"  # the favourite\n'
            "\n"
            "[features]\n"
            "web_search = true  # keep\n"
            "\n"
            "# documentation server\n"
            "[mcp_servers.docs]\n"
            'command = "docs-mcp"\n'
            'args = ["--stdio"]\n'
        ),
    },
    "gemini": {
        "settings": json.dumps({
            "theme": "GitHub",
            "hooks": {"BeforeAgent": [{"hooks": [
                {"type": "command", "command": "./lint-prompt.sh", "timeout": 2000}]}]},
            "mcpServers": {"docs": {"command": "docs-mcp"}},
        }, indent=2) + "\n",
    },
}


class Setup:
    """A home folder, a git repository, and ``ctxdb install`` run from inside the repository."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.repo = tmp_path / "repo"
        self.bin = tmp_path / "bin"
        (self.repo / ".git").mkdir(parents=True)
        (self.repo / "src" / "pkg").mkdir(parents=True)
        self.home.mkdir()

    def files(self, client: str, scope: str) -> dict[str, Path]:
        base = self.home if scope == "user" else self.repo
        if client == "claude-code":
            mcp = self.home / ".claude.json" if scope == "user" else self.repo / ".mcp.json"
            return {"hooks": base / ".claude" / "settings.json", "mcp": mcp}
        if client == "codex":
            return {"hooks": base / ".codex" / "hooks.json",
                    "config": base / ".codex" / "config.toml"}
        return {"settings": base / ".gemini" / "settings.json"}

    def seed(self, client: str, scope: str) -> dict[str, Path]:
        files = self.files(client, scope)
        for kind, path in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(USER_CONTENT[client][kind], encoding="utf-8")
        return files

    def run(self, *args: str, exe: str = EXE) -> Result:
        # PATH: only the folder where fake_codex puts a `codex`, and the system's programs.
        return CliRunner().invoke(cli, ["--traceback", "install", *args, "--ctxdb-command", exe],
                                  env={"HOME": str(self.home), "CODEX_HOME": None,
                                       "PATH": f"{self.bin}{os.pathsep}/usr/bin:/bin"})

    def fake_codex(self, version: str) -> None:
        """A ``codex`` on PATH that answers ``--version`` as Codex ``version`` does."""
        self.bin.mkdir(exist_ok=True)
        program = self.bin / "codex"
        program.write_text(f"#!/bin/sh\necho 'codex-cli {version}'\n", encoding="utf-8")
        program.chmod(0o755)

    def ok(self, *args: str, exe: str = EXE) -> Result:
        result = self.run(*args, exe=exe)
        assert result.exit_code == 0, result.output
        return result

    def snapshot(self) -> dict[str, tuple[bytes, int]]:
        """Every file under the temporary folder: its bytes and modification time."""
        return {str(p.relative_to(self.tmp)): (p.read_bytes(), p.stat().st_mtime_ns)
                for p in sorted(self.tmp.rglob("*")) if p.is_file()}


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    result = Setup(tmp_path)
    monkeypatch.chdir(result.repo / "src" / "pkg")
    return result


def load(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    data: dict[str, Any] = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    return data


def ctxdb_entries(data: dict[str, Any], event: str, client: str) -> list[dict[str, Any]]:
    return [entry for group in data.get("hooks", {}).get(event, [])
            for entry in group["hooks"] if f"hook --client {client}" in entry["command"]]


def ctxdb_server(data: dict[str, Any], client: str) -> dict[str, Any]:
    server: dict[str, Any] = data["mcp_servers" if client == "codex" else "mcpServers"]["ctxdb"]
    return server


def check_installed(files: dict[str, Path], client: str, exe: str = EXE,
                    quoted: str = QUOTED_EXE) -> None:
    hooks = load(files[HOOKS_FILE[client]])
    assert [e for e in EVENTS[client] if e not in hooks["hooks"]] == []
    for event in EVENTS[client]:
        (entry,) = ctxdb_entries(hooks, event, client)
        assert entry["type"] == "command"
        assert entry["command"] == f"{quoted} hook --client {client}"
        assert isinstance(entry["timeout"], int) and entry["timeout"] > 0
    timeouts = {e: ctxdb_entries(hooks, e, client)[0]["timeout"] for e in EVENTS[client]}
    if client == "claude-code":
        assert timeouts["SessionEnd"] < 1.5 and timeouts["UserPromptSubmit"] < 30
        for event in EVENTS[client]:
            background = ctxdb_entries(hooks, event, client)[0].get("async", False)
            assert background is (event in ("Stop", "SubagentStop"))
    if client == "gemini":  # milliseconds
        assert timeouts["SessionEnd"] <= 1500 and timeouts["SessionStart"] >= 1000
    server = ctxdb_server(load(files[MCP_FILE[client]]), client)
    assert (server["command"], server["args"]) == (exe, ["mcp"])
    if client == "claude-code":
        assert server["type"] == "stdio"
    if client == "codex":  # no codex on PATH: hooks are on by default from 0.171
        config = load(files["config"])
        assert "codex_hooks" not in config.get("features", {})
        assert "hooks" not in config.get("features", {})
        assert server["env_vars"] == ["CTXDB_URL", "CTXDB_CONFIG"]


def without_ctxdb(data: dict[str, Any], client: str) -> dict[str, Any]:
    """The settings less ctxdb's entries, and less what they alone filled (the user's part)."""
    data = json.loads(json.dumps(data))
    hooks = data.get("hooks", {})
    for event in list(hooks):
        groups = [{**g, "hooks": [h for h in g["hooks"]
                                  if f"hook --client {client}" not in h["command"]]}
                  for g in hooks[event]]
        hooks[event] = [g for g in groups if g["hooks"]]
        if not hooks[event]:
            del hooks[event]
    if "hooks" in data and not hooks:
        del data["hooks"]
    data.get("mcpServers", {}).pop("ctxdb", None)
    if data.get("mcpServers") == {}:
        del data["mcpServers"]
    return data


both = pytest.mark.parametrize("scope", SCOPES)
every_client = pytest.mark.parametrize("client", CLIENTS)


@every_client
@both
def test_install_into_empty_settings(setup: Setup, client: str, scope: str) -> None:
    result = setup.ok(client, "--scope", scope)
    files = setup.files(client, scope)
    check_installed(files, client)
    for path in files.values():
        assert str(path) in result.stdout
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n") and not text.endswith("\n\n")
        if path.suffix == ".json":
            assert text.startswith('{\n  "')
    # Nothing lands in the other scope's folder.
    other = setup.repo if scope == "user" else setup.home
    assert [p for p in other.rglob("*") if p.is_file()] == []


@every_client
@both
def test_install_keeps_the_users_settings_and_uninstall_restores_them(
        setup: Setup, client: str, scope: str) -> None:
    files = setup.seed(client, scope)
    setup.ok(client, "--scope", scope)
    check_installed(files, client)
    for kind, path in files.items():
        original = USER_CONTENT[client][kind]
        if path.suffix == ".json":
            assert without_ctxdb(load(path), client) == json.loads(original)
        else:  # every comment and setting of the user's TOML is still there, in order
            lines = iter(path.read_text(encoding="utf-8").splitlines())
            assert all(line in lines for line in original.splitlines())
    if client == "claude-code":  # the user's SessionStart group is untouched, ctxdb's follows
        groups = load(files["hooks"])["hooks"]["SessionStart"]
        assert groups[0] == json.loads(USER_CONTENT[client]["hooks"])["hooks"]["SessionStart"][0]

    setup.ok(client, "--scope", scope, "--uninstall")
    for kind, path in files.items():
        assert path.read_text(encoding="utf-8") == USER_CONTENT[client][kind]


@every_client
@both
def test_uninstall_after_install_into_nothing_removes_the_files(
        setup: Setup, client: str, scope: str) -> None:
    before = setup.snapshot()
    setup.ok(client, "--scope", scope)
    result = setup.ok(client, "--scope", scope, "--uninstall")
    assert "removed" in result.stdout
    assert setup.snapshot() == before
    base = setup.home if scope == "user" else setup.repo
    assert not (base / f".{client.split('-')[0]}").exists()


@every_client
@both
def test_installing_twice_changes_nothing(setup: Setup, client: str, scope: str) -> None:
    setup.seed(client, scope)
    setup.ok(client, "--scope", scope)
    before = setup.snapshot()
    result = setup.ok(client, "--scope", scope)
    assert setup.snapshot() == before  # same bytes, not even rewritten
    assert result.stdout.count("unchanged ") == len(setup.files(client, scope))
    setup.ok(client, "--scope", scope, "--uninstall")
    again = setup.snapshot()
    assert setup.ok(client, "--scope", scope, "--uninstall").stdout.count("unchanged ") >= 1
    assert setup.snapshot() == again


@every_client
def test_an_outdated_entry_is_updated_in_place(setup: Setup, client: str) -> None:
    files = setup.seed(client, "project")
    setup.ok(client, exe="/old/bin/ctxdb")
    hooks_path = files[HOOKS_FILE[client]]
    # The user moved ctxdb's first hook into their own group and changed its timeout.
    data = load(hooks_path)
    first = EVENTS[client][0]
    ours = ctxdb_entries(data, first, client)[0]
    ours["timeout"] = 999
    data["hooks"][first] = [{"matcher": "startup", "hooks": [
        {"type": "command", "command": "echo mine"}, ours]}]
    hooks_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if client != "codex":  # a setting the user added to ctxdb's server is kept
        settings = load(files[MCP_FILE[client]])
        settings["mcpServers"]["ctxdb"]["env"] = {"CTXDB_URL": "/data/ctx.db"}
        files[MCP_FILE[client]].write_text(json.dumps(settings, indent=2) + "\n",
                                           encoding="utf-8")

    result = setup.ok(client, exe="/new/bin/ctxdb")
    assert "updated" in result.stdout
    check_installed(files, client, exe="/new/bin/ctxdb", quoted="/new/bin/ctxdb")
    groups = load(hooks_path)["hooks"][first]
    assert len(groups) == 1 and groups[0]["hooks"][0]["command"] == "echo mine"
    assert groups[0]["hooks"][1]["command"] == f"/new/bin/ctxdb hook --client {client}"
    if client != "codex":
        server = load(files[MCP_FILE[client]])["mcpServers"]["ctxdb"]
        assert server["env"] == {"CTXDB_URL": "/data/ctx.db"}


def test_duplicate_and_stale_ctxdb_hooks_are_cleaned_up(setup: Setup) -> None:
    path = setup.files("claude-code", "project")["hooks"]
    path.parent.mkdir()
    stale = {"type": "command", "command": "ctxdb hook --client claude-code", "timeout": 3}
    path.write_text(json.dumps({"hooks": {
        "SessionStart": [{"hooks": [dict(stale)]},
                         {"hooks": [{"type": "command", "command": "echo mine"}, dict(stale)]}],
        "Notification": [{"hooks": [dict(stale)]}],  # an event ctxdb no longer installs
    }}, indent=2), encoding="utf-8")
    result = setup.ok("claude-code")
    assert "duplicate" in result.stdout and "outdated hook Notification" in result.stdout
    data = load(path)
    assert len(ctxdb_entries(data, "SessionStart", "claude-code")) == 1
    assert "Notification" not in data["hooks"]
    assert {"type": "command", "command": "echo mine"} in data["hooks"]["SessionStart"][1]["hooks"]
    assert not path.read_text(encoding="utf-8").endswith("\n")  # as the user had it


@every_client
@both
def test_dry_run_prints_the_diff_and_writes_nothing(setup: Setup, client: str,
                                                   scope: str) -> None:
    files = setup.seed(client, scope)
    before = setup.snapshot()
    result = setup.ok(client, "--scope", scope, "--dry-run")
    assert setup.snapshot() == before
    for path in files.values():
        assert f"--- {path}\n+++ {path}\n" in result.stdout
    assert f"+            \"command\": \"{QUOTED_EXE} hook --client {client}\"" in result.stdout \
        or f"+          \"command\": \"{QUOTED_EXE} hook --client {client}\"" in result.stdout
    assert "dry run: nothing was written" in result.stderr

    setup.ok(client, "--scope", scope)
    installed = setup.snapshot()
    result = setup.ok(client, "--scope", scope, "--uninstall", "--dry-run")
    assert setup.snapshot() == installed
    assert f"-            \"command\": \"{QUOTED_EXE} hook --client {client}\"" in result.stdout \
        or f"-          \"command\": \"{QUOTED_EXE} hook --client {client}\"" in result.stdout


@every_client
def test_dry_run_into_nothing_creates_nothing(setup: Setup, client: str) -> None:
    result = setup.ok(client, "--dry-run", "--json")
    payload = json.loads(result.stdout)
    assert setup.snapshot() == {}
    assert {f["action"] for f in payload["files"]} == {"create"}
    assert all(f["diff"].startswith("--- /dev/null\n") for f in payload["files"])


MALFORMED_JSON = [
    ('{"hooks": {', "not valid JSON (line 1"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"hooks": []}', '"hooks" must be a JSON object'),
    ('{"hooks": {"SessionStart": {"hooks": []}}}', '"hooks.SessionStart" must be a JSON array'),
    ('{"hooks": {"SessionStart": [{"command": "x"}]}}', 'with a "hooks" array'),
    ('{"mcpServers": "docs"}', '"mcpServers" must be a JSON object'),
]


@every_client
@pytest.mark.parametrize(("text", "problem"), MALFORMED_JSON, ids=range(len(MALFORMED_JSON)))
def test_malformed_settings_are_refused_and_nothing_is_written(
        setup: Setup, client: str, text: str, problem: str) -> None:
    files = setup.files(client, "project")
    kind = MCP_FILE[client] if "mcpServers" in text else HOOKS_FILE[client]
    if kind == "config":
        return  # Codex keeps its MCP servers in TOML: see the TOML test
    path = files[kind]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    before = setup.snapshot()
    result = setup.run(client)
    assert result.exit_code == 2, result.output
    assert str(path) in result.stderr and problem in result.stderr, result.stderr
    assert "nothing was written" in result.stderr
    assert setup.snapshot() == before
    as_json = setup.run(client, "--json")
    assert json.loads(as_json.stderr)["error"] == "invalid_client_settings"
    assert setup.snapshot() == before


@pytest.mark.parametrize("text", ['[features\ncodex_hooks = true\n', 'features = "on"\n',
                                  '[mcp_servers]\nctxdb = "x"\n'])
def test_malformed_codex_config_is_refused_and_nothing_is_written(setup: Setup,
                                                                  text: str) -> None:
    path = setup.files("codex", "project")["config"]
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    before = setup.snapshot()
    result = setup.run("codex")
    assert result.exit_code == 2 and str(path) in result.stderr, result.output
    assert setup.snapshot() == before
    assert not setup.files("codex", "project")["hooks"].exists()


def test_gemini_settings_with_comments_are_refused_with_a_hint(setup: Setup) -> None:
    path = setup.files("gemini", "project")["settings"]
    path.parent.mkdir()
    path.write_text('{\n  // my theme\n  "theme": "GitHub"\n}\n', encoding="utf-8")
    result = setup.run("gemini")
    assert result.exit_code == 2 and "comments" in result.stderr
    assert path.read_text(encoding="utf-8").startswith("{\n  // my theme")


def test_codex_keeps_a_feature_switch_the_user_had_set(setup: Setup) -> None:
    config = setup.files("codex", "user")["config"]
    config.parent.mkdir()
    original = "[features]\ncodex_hooks = true\n"
    config.write_text(original, encoding="utf-8")
    setup.ok("codex", "--scope", "user")
    assert "added by ctxdb" not in config.read_text(encoding="utf-8").split("[mcp_servers")[0]
    setup.ok("codex", "--scope", "user", "--uninstall")
    assert config.read_text(encoding="utf-8") == original


def test_codex_feature_switch_goes_under_the_last_setting_not_the_next_tables_comment(
        setup: Setup) -> None:
    setup.fake_codex("0.120.0")
    files = setup.seed("codex", "user")
    setup.ok("codex", "--scope", "user")
    text = files["config"].read_text(encoding="utf-8")
    features = text.split("[features]\n", 1)[1].split("\n\n# documentation server\n", 1)[0]
    assert features.splitlines()[0] == "web_search = true  # keep"
    assert features.splitlines()[1].startswith("hooks = true")


@pytest.mark.parametrize(("version", "switch"), [("0.120.0", True), ("0.171.0", False),
                                                  ("0.200.3", False)])
def test_the_codex_hooks_switch_follows_the_installed_version(
        setup: Setup, version: str, switch: bool) -> None:
    """Codex 0.171 runs hooks by default and warns about the deprecated codex_hooks switch
    (which an earlier ctxdb wrote, marked: it goes); an older Codex gets features.hooks."""
    setup.fake_codex(version)
    config = setup.files("codex", "project")["config"]
    config.parent.mkdir(parents=True)
    config.write_text("[features] # added by ctxdb install\n"
                      "codex_hooks = true # added by ctxdb install\n", encoding="utf-8")
    setup.ok("codex")
    features = load(config).get("features", {})
    assert "codex_hooks" not in features
    assert features.get("hooks") is (True if switch else None)
    setup.ok("codex", "--uninstall")
    assert not config.exists()


def test_trust_writes_the_projects_trust_in_the_users_codex_config(setup: Setup) -> None:
    result = setup.ok("codex")
    assert "--trust" in result.output and "/hooks" in result.output
    user_config = setup.home / ".codex" / "config.toml"
    assert not user_config.exists()  # not without being asked
    result = setup.ok("codex", "--trust")
    assert load(user_config)["projects"][str(setup.repo)] == {"trust_level": "trusted"}
    assert "--trust" not in result.output and "/hooks" in result.output
    before = user_config.read_bytes()
    setup.ok("codex", "--trust")
    assert user_config.read_bytes() == before
    assert "--trust" not in setup.ok("codex").output  # trusted already: not asked again


def test_trust_is_for_codex_only(setup: Setup) -> None:
    for args in (("gemini", "--trust"), ("codex", "--trust", "--uninstall")):
        result = setup.run(*args)
        assert result.exit_code == 2 and "--trust is for installing into Codex" in result.output
    assert not (setup.home / ".codex").exists()


def test_a_file_keeps_its_indentation_and_permissions(setup: Setup) -> None:
    path = setup.home / ".claude.json"
    original = json.dumps({"numStartups": 7, "projects": {"/x": {"allowedTools": []}}},
                          indent=4) + "\n"
    path.write_text(original, encoding="utf-8")
    path.chmod(0o600)
    setup.ok("claude-code", "--scope", "user")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert '\n    "mcpServers": {\n        "ctxdb": {' in path.read_text(encoding="utf-8")
    setup.ok("claude-code", "--scope", "user", "--uninstall")
    assert path.read_text(encoding="utf-8") == original
    assert [p.name for p in setup.home.iterdir() if p.name.startswith(".claude.json.")] == []


def test_project_scope_outside_a_repository_uses_the_current_folder(
        setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = setup.tmp / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    setup.ok("gemini")
    assert (plain / ".gemini" / "settings.json").is_file()
    assert not (setup.repo / ".gemini").exists()


def test_a_worktree_root_is_found_by_its_git_file(setup: Setup,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    worktree = setup.tmp / "worktree"
    (worktree / "lib").mkdir(parents=True)
    (worktree / ".git").write_text("gitdir: ../repo/.git/worktrees/w\n", encoding="utf-8")
    monkeypatch.chdir(worktree / "lib")
    setup.ok("codex")
    assert (worktree / ".codex" / "hooks.json").is_file()


def test_the_default_command_is_this_ctxdb_programs_absolute_path(setup: Setup) -> None:
    # Off PATH (/usr/bin:/bin): the path; on PATH, see test_install_command.py.
    program = Path(sysconfig.get_path("scripts")) / "ctxdb"
    result = subprocess.run([str(program), "install", "claude-code", "--dry-run", "--json"],
                            capture_output=True, text=True, cwd=setup.repo, timeout=60,
                            env={**os.environ, "HOME": str(setup.home),
                                 "PATH": "/usr/bin:/bin"}, check=True)
    diff = json.loads(result.stdout)["files"][0]["diff"]
    assert f'"command": "{program} hook --client claude-code"' in diff
    assert setup.snapshot() == {}


@pytest.mark.parametrize(("command", "client", "ours"), [
    ("ctxdb hook --client claude-code", "claude-code", True),
    ("/home/a/.local/bin/ctxdb hook --client codex", "codex", True),
    ("'/opt/my tools/ctxdb' hook --client gemini", "gemini", True),
    ('"C:\\Tools\\ctxdb.exe" hook --client=gemini', "gemini", True),
    ("uvx ctxdb hook --client claude-code 2>/dev/null", "claude-code", True),
    ("ctxdb hook --client codex", "claude-code", False),
    ("ctxdb hook --client claude-codex", "claude-code", False),
    ("notctxdb hook --client codex", "codex", False),
    ("echo ctxdb", "codex", False),
])
def test_ctxdb_hooks_are_recognized_by_their_command(command: str, client: str,
                                                     ours: bool) -> None:
    assert (hook_command_pattern(client).search(command) is not None) is ours


def test_help_names_every_file(setup: Setup) -> None:
    text = CliRunner().invoke(cli, ["install", "--help"]).stdout
    for name in (".claude/settings.json", ".mcp.json", "~/.claude.json", ".codex/hooks.json",
                 ".codex/config.toml", ".gemini/settings.json", "--dry-run", "--uninstall"):
        assert name in text


def test_a_symlinked_settings_file_is_edited_where_it_points(setup: Setup) -> None:
    dotfiles = setup.tmp / "dotfiles" / "claude-settings.json"
    dotfiles.parent.mkdir()
    dotfiles.write_text(USER_CONTENT["claude-code"]["hooks"], encoding="utf-8")
    link = setup.files("claude-code", "user")["hooks"]
    link.parent.mkdir()
    link.symlink_to(dotfiles)
    setup.ok("claude-code", "--scope", "user")
    assert link.is_symlink()
    assert len(ctxdb_entries(load(dotfiles), "SessionStart", "claude-code")) == 1
    setup.ok("claude-code", "--scope", "user", "--uninstall")
    assert link.is_symlink()
    assert dotfiles.read_text(encoding="utf-8") == USER_CONTENT["claude-code"]["hooks"]


def test_doctor_warns_of_codex_hooks_in_an_untrusted_project(setup: Setup) -> None:
    url = str(setup.tmp / "ctxdb.db")
    env = {"HOME": str(setup.home), "CODEX_HOME": None, "CTXDB_URL": url}

    def codex_checks() -> list[dict[str, Any]]:
        assert CliRunner().invoke(cli, ["init"], env=env).exit_code == 0
        done = CliRunner().invoke(cli, ["doctor", "--json"], env=env)
        assert done.exit_code == 0, done.output
        return [c for c in json.loads(done.stdout)["checks"] if c["name"] == "codex trust"]

    assert codex_checks() == []  # nothing installed: nothing to say
    setup.ok("codex")
    [check] = codex_checks()
    assert check["status"] == "warn" and "ctxdb install codex --trust" in check["detail"]
    setup.ok("codex", "--trust")
    assert codex_checks() == []
