"""``ctxdb doctor`` on the clients' trust, against files the real CLIs wrote.

Codex: ctxdb's hooks are installed in a scratch repository (project trusted with ``--trust``);
the trust of each hook is given the way Codex's ``/hooks`` review gives it, through the real
``codex app-server``: ``hooks/list`` reports each hook's key, ``currentHash`` and
``trustStatus``, and ``config/batchWrite`` stores ``hooks.state."<key>".trusted_hash`` in the
user's ``$CODEX_HOME/config.toml``. Doctor must agree with Codex's own ``trustStatus`` at each
step: nothing approved, all but one approved, and every hook changed by a later install.

Gemini CLI: ctxdb's hooks in an untrusted folder, where the real ``gemini -p`` refuses to run,
then the folder trusted in ``~/.gemini/trustedFolders.json`` as Gemini's trust dialog writes
it (``{"<folder>": "TRUST_FOLDER"}``, two-space JSON), where it runs against a loopback mock.

The CLIs come from ``CTXDB_TEST_CODEX`` and ``CTXDB_TEST_GEMINI`` (else PATH); without them the
tests are skipped, unless ``CTXDB_REQUIRE_CLIENTS=1`` (CI), in which case they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ctxdb.cli.main import cli
from ctxdb.clients.trust import codex_hook_hash, codex_hooks_trust
from real_clients import (
    CLI_TIMEOUT,
    CTXDB,
    MockServer,
    client_program,
    ctxdb,
    git_repository,
)
from test_real_codex import CODEX_OWN_CALLS
from test_real_gemini import ANSWER as GEMINI_ANSWER
from test_real_gemini import GeminiMock

# What doctor reads of the clients' settings besides HOME: unset unless a test sets them.
TRUST_VARIABLES = ("CODEX_HOME", "GEMINI_CLI_TRUST_WORKSPACE", "GEMINI_CLI_TRUSTED_FOLDERS_PATH",
                   "CTXDB_CONFIG")
EVENTS = ("SessionStart", "UserPromptSubmit", "PreCompact", "PostCompact", "Stop")


@pytest.fixture
def refusing_proxy() -> Iterator[MockServer]:
    """Where every request for another host lands, and is refused."""
    with MockServer(lambda request: None) as server:
        yield server


def base_env(tmp_path: Path, proxy: MockServer) -> dict[str, str]:
    keep = {name: os.environ[name] for name in ("PATH", "LANG", "TMPDIR") if name in os.environ}
    home = tmp_path / "home"
    home.mkdir()
    return {**keep, "HOME": str(home), **proxy.proxy_env(),
            "CTXDB_URL": str(tmp_path / "ctxdb.db")}


def doctor_checks(repo: Path, env: dict[str, str], prefix: str) -> dict[str, dict[str, Any]]:
    """``ctxdb doctor --json`` in ``repo`` with ``env`` (in process), its checks of ``prefix``."""
    unset: dict[str, str | None] = dict.fromkeys(TRUST_VARIABLES)
    cwd = Path.cwd()
    os.chdir(repo)
    try:
        done = CliRunner().invoke(cli, ["doctor", "--json"], env={**unset, **env})
    finally:
        os.chdir(cwd)
    assert done.exit_code == 0, done.output
    return {check["name"]: check for check in json.loads(done.stdout)["checks"]
            if check["name"].startswith(prefix)}


class AppServer:
    """The real ``codex app-server`` over stdio (JSON-RPC, one message a line)."""

    def __init__(self, program: str, repo: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([program, "app-server"], cwd=repo, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        self.next_id = 0
        self.call("initialize", {"clientInfo": {"name": "ctxdb-test", "version": "1"}})
        self._send({"jsonrpc": "2.0", "method": "initialized"})

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def call(self, method: str, params: dict[str, Any]) -> Any:
        self.next_id += 1
        self._send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        assert self.process.stdout is not None
        for line in self.process.stdout:  # notifications come in between: skipped
            message = json.loads(line)
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]
        raise AssertionError(f"codex app-server closed before answering {method}")

    def hooks(self, repo: Path) -> list[dict[str, Any]]:
        [listing] = self.call("hooks/list", {"cwds": [str(repo)]})["data"]
        return list(listing["hooks"])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        finally:
            assert self.process.stdout is not None
            self.process.stdout.close()


def codex_statuses(program: str, repo: Path, env: dict[str, str],
                   trust_all_but: str | None = None) -> dict[str, str]:
    """Codex's trustStatus of each hook by event (after approving every hook but
    ``trust_all_but``, as the /hooks review does, when given)."""
    server = AppServer(program, repo, env)
    try:
        hooks = server.hooks(repo)
        if trust_all_but is not None:
            edits = [{"keyPath": f'hooks.state."{hook["key"]}".trusted_hash',
                      "value": hook["currentHash"], "mergeStrategy": "upsert"}
                     for hook in hooks if hook["eventName"].lower() != trust_all_but.lower()]
            server.call("config/batchWrite", {"edits": edits})
            hooks = server.hooks(repo)
    finally:
        server.close()
    for hook in hooks:  # ctxdb computes the hash Codex compares, from the same entry
        event = next(e for e in EVENTS if e.lower() == hook["eventName"].lower())
        entry = {"command": hook["command"], "timeout": hook["timeoutSec"],
                 "async": hook["async"]}
        assert codex_hook_hash(event, {}, entry) == hook["currentHash"], hook
    return {next(e for e in EVENTS if e.lower() == hook["eventName"].lower()):
            hook["trustStatus"] for hook in hooks}


def test_doctor_names_each_codex_hook_codex_will_skip(tmp_path: Path,
                                                      refusing_proxy: MockServer) -> None:
    program = client_program("CTXDB_TEST_CODEX", "codex", "Codex CLI")
    env = base_env(tmp_path, refusing_proxy)
    env["CODEX_HOME"] = str(Path(env["HOME"]) / ".codex")
    repo = git_repository(tmp_path / "shop")
    ctxdb("install", "codex", "--scope", "project", "--trust", cwd=repo, env=env)
    ctxdb("init", cwd=repo, env=env)

    assert codex_statuses(program, repo, env) == dict.fromkeys(EVENTS, "untrusted")
    checks = doctor_checks(repo, env, "codex hook")
    assert set(checks) == {f"codex hook {event}" for event in EVENTS}
    for check in checks.values():
        assert check["status"] == "warn" and check["data"]["status"] == "untrusted"
        assert f"run 'codex' in {repo}" in check["detail"] and "/hooks" in check["detail"]

    assert codex_statuses(program, repo, env, trust_all_but="Stop") == {
        **dict.fromkeys(EVENTS, "trusted"), "Stop": "untrusted"}
    assert set(doctor_checks(repo, env, "codex hook")) == {"codex hook Stop"}
    hooks_path = repo / ".codex" / "hooks.json"
    codex_home = Path(env["CODEX_HOME"])
    assert {hook.event: hook.status for hook in codex_hooks_trust(hooks_path, codex_home)} \
        == {**dict.fromkeys(EVENTS, "trusted"), "Stop": "untrusted"}

    # Another ctxdb command (a launcher elsewhere): every hook changed since its review.
    launcher = tmp_path / "bin" / "ctxdb"
    launcher.parent.mkdir()
    launcher.symlink_to(CTXDB)
    ctxdb("install", "codex", "--scope", "project", "--ctxdb-command", str(launcher),
          cwd=repo, env=env)
    codex_says = codex_statuses(program, repo, env)
    assert codex_says == {**dict.fromkeys(EVENTS, "modified"), "Stop": "untrusted"}
    checks = doctor_checks(repo, env, "codex hook")
    assert {name.removeprefix("codex hook "): check["data"]["status"]
            for name, check in checks.items()} == codex_says
    assert "changed since you approved it" in checks["codex hook SessionStart"]["detail"]
    # Codex's own update and plugin checks went to the proxy, which refused them.
    assert {r.target for r in refusing_proxy.elsewhere()} <= CODEX_OWN_CALLS


def test_doctor_warns_of_gemini_hooks_in_a_folder_gemini_does_not_trust(
        tmp_path: Path) -> None:
    program = client_program("CTXDB_TEST_GEMINI", "gemini", "Gemini CLI")
    mock = GeminiMock()
    with mock.server:
        env = {**base_env(tmp_path, mock.server), "GOOGLE_GEMINI_BASE_URL": mock.server.url,
               "GEMINI_API_KEY": "offline-test-key", "GEMINI_TELEMETRY_ENABLED": "false"}
        home = Path(env["HOME"])
        (home / ".gemini").mkdir()
        (home / ".gemini" / "settings.json").write_text(json.dumps({
            "security": {"auth": {"selectedType": "gemini-api-key"}},
            "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
            "privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False},
        }), encoding="utf-8")
        repo = git_repository(tmp_path / "shop")
        ctxdb("install", "gemini", "--scope", "project", cwd=repo, env=env)
        ctxdb("init", cwd=repo, env=env)

        def gemini_runs() -> subprocess.CompletedProcess[str]:
            return subprocess.run([program, "-p", "hello", "-o", "json"], cwd=repo, env=env,
                                  capture_output=True, text=True, timeout=CLI_TIMEOUT,
                                  stdin=subprocess.DEVNULL)

        [check] = doctor_checks(repo, env, "gemini trust").values()
        assert check["status"] == "warn"
        assert f"run 'gemini' in {repo}" in check["detail"]
        assert "GEMINI_CLI_TRUST_WORKSPACE=true" in check["detail"]
        refused = gemini_runs()
        assert refused.returncode != 0 and "trusted" in refused.stdout + refused.stderr

        # What Gemini's trust dialog writes (JSON.stringify(rules, null, 2)).
        rules = home / ".gemini" / "trustedFolders.json"
        rules.write_text(json.dumps({str(repo): "TRUST_FOLDER"}, indent=2), encoding="utf-8")
        rules.chmod(0o600)
        [check] = doctor_checks(repo, env, "gemini trust").values()
        assert check["status"] == "pass", check
        ran = gemini_runs()
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert json.loads(ran.stdout)["response"] == GEMINI_ANSWER
        # The workspace switch overrides the file, both ways.
        env["GEMINI_CLI_TRUST_WORKSPACE"] = "false"
        [check] = doctor_checks(repo, env, "gemini trust").values()
        assert check["status"] == "warn"
