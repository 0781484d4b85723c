"""How ctxdb reads the clients' trust (clients/trust.py), in process, without the CLIs.

The Codex hashes below were reported by Codex 0.171's own ``codex app-server`` (``hooks/list``,
``currentHash``) for ctxdb's hooks with the command ``ctxdb hook --client codex``;
tests/test_real_client_trust.py checks the same against the real CLI when it is installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ctxdb.cli.main import cli
from ctxdb.clients.trust import (
    codex_hook_hash,
    codex_hooks_trust,
    gemini_folder_trusted,
    gemini_project_hooks,
)

COMMAND = "ctxdb hook --client codex"
CODEX_REPORTED = {
    "SessionStart": (15, "2b674ad132e56f75fb8dbc0c62360e98d44c681201c300b4a69f8596e21f0180"),
    "UserPromptSubmit": (10, "67b0ee3a25467d8a67ee76fa2e3b95b84b160ad747c71be7b617e5024bcf8cd7"),
    "PreCompact": (30, "efcb669a002d0f6c65d09d96f5c2c68eccb89495e4f166ad2ca6c90574d7b446"),
    "PostCompact": (10, "04628aa6b2eb610ea2c51fc2fe1517b3fb73906410bd8bd1b65d0fec3a0c4957"),
    "Stop": (30, "91ee008cb06a8b5a4e8e39c245be69e0ae6d4a683cf2bd514d067547a0e7d5b5"),
}


@pytest.mark.parametrize("event", sorted(CODEX_REPORTED))
def test_the_hook_hash_is_the_one_codex_computes(event: str) -> None:
    timeout, reported = CODEX_REPORTED[event]
    assert codex_hook_hash(event, {}, {"type": "command", "command": COMMAND,
                                       "timeout": timeout}) == f"sha256:{reported}"


def write_hooks(root: Path) -> Path:
    hooks_path = root / ".codex" / "hooks.json"
    hooks_path.parent.mkdir(parents=True)
    groups = {event: [{"hooks": [{"type": "command", "command": COMMAND, "timeout": timeout}]}]
              for event, (timeout, _) in CODEX_REPORTED.items()}
    groups["Stop"].insert(0, {"hooks": [{"type": "command", "command": "other-tool"}]})
    hooks_path.write_text(json.dumps({"hooks": groups}), encoding="utf-8")
    return hooks_path


def test_each_ctxdb_hook_is_untrusted_trusted_modified_or_disabled(tmp_path: Path) -> None:
    hooks_path, codex_home = write_hooks(tmp_path / "repo"), tmp_path / "codex"
    codex_home.mkdir()
    key = f"{hooks_path}:{{}}:{{}}:0"
    codex_home.joinpath("config.toml").write_text(
        f'[hooks.state."{key.format("session_start", 0)}"]\n'
        f'trusted_hash = "sha256:{CODEX_REPORTED["SessionStart"][1]}"\n'
        f'[hooks.state."{key.format("pre_compact", 0)}"]\n'
        'trusted_hash = "sha256:0000"\n'
        f'[hooks.state."{key.format("post_compact", 0)}"]\n'
        f'trusted_hash = "sha256:{CODEX_REPORTED["PostCompact"][1]}"\nenabled = false\n'
        # The user's own hook comes first under Stop: ctxdb's is group 1.
        f'[hooks.state."{key.format("stop", 1)}"]\n'
        f'trusted_hash = "sha256:{CODEX_REPORTED["Stop"][1]}"\n', encoding="utf-8")
    found = {hook.event: hook.status for hook in codex_hooks_trust(hooks_path, codex_home)}
    assert found == {"SessionStart": "trusted", "UserPromptSubmit": "untrusted",
                     "PreCompact": "modified", "PostCompact": "disabled", "Stop": "trusted"}


def test_no_hooks_file_no_hooks(tmp_path: Path) -> None:
    assert codex_hooks_trust(tmp_path / "hooks.json", tmp_path) == []


def gemini_rules(home: Path, rules: dict[str, str]) -> None:
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "trustedFolders.json").write_text(json.dumps(rules, indent=2),
                                                          encoding="utf-8")


def test_gemini_folder_trust_follows_the_longest_matching_rule(tmp_path: Path) -> None:
    home, repo = tmp_path / "home", tmp_path / "work" / "shop"
    repo.mkdir(parents=True)
    assert not gemini_folder_trusted(repo, home, {})  # no rule: not trusted
    gemini_rules(home, {str(repo): "TRUST_FOLDER"})
    assert gemini_folder_trusted(repo, home, {})
    gemini_rules(home, {str(repo / "anything"): "TRUST_PARENT"})  # the rule's parent: repo
    assert gemini_folder_trusted(repo, home, {})
    gemini_rules(home, {str(tmp_path / "work"): "TRUST_FOLDER", str(repo): "DO_NOT_TRUST"})
    assert not gemini_folder_trusted(repo, home, {})
    gemini_rules(home, {str(tmp_path / "work"): "DO_NOT_TRUST", str(repo): "TRUST_FOLDER"})
    assert gemini_folder_trusted(repo, home, {})
    gemini_rules(home, {str(tmp_path / "workshop"): "TRUST_FOLDER"})  # a prefix, not a parent
    assert not gemini_folder_trusted(tmp_path / "work", home, {})


def test_gemini_workspace_switch_and_disabled_folder_trust(tmp_path: Path) -> None:
    home, repo = tmp_path / "home", tmp_path / "shop"
    repo.mkdir()
    assert gemini_folder_trusted(repo, home, {"GEMINI_CLI_TRUST_WORKSPACE": "true"})
    gemini_rules(home, {str(repo): "TRUST_FOLDER"})
    assert not gemini_folder_trusted(repo, home, {"GEMINI_CLI_TRUST_WORKSPACE": "false"})
    gemini_rules(home, {})
    (home / ".gemini" / "settings.json").write_text(
        json.dumps({"security": {"folderTrust": {"enabled": False}}}), encoding="utf-8")
    assert gemini_folder_trusted(repo, home, {})


def test_gemini_project_hooks_are_found_by_their_command(tmp_path: Path) -> None:
    settings = tmp_path / ".gemini" / "settings.json"
    settings.parent.mkdir()
    assert not gemini_project_hooks(tmp_path)
    settings.write_text(json.dumps({"hooks": {"SessionStart": [{"hooks": [
        {"type": "command", "command": "other-tool"}]}]}}), encoding="utf-8")
    assert not gemini_project_hooks(tmp_path)
    settings.write_text(json.dumps({"hooks": {"SessionStart": [{"hooks": [
        {"type": "command", "command": "ctxdb hook --client gemini"}]}]}}), encoding="utf-8")
    assert gemini_project_hooks(tmp_path)


def test_doctor_names_the_users_codex_hooks_apart(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    codex_home, work = tmp_path / "codex", tmp_path / "work"
    hooks_path = write_hooks(tmp_path / "user")
    codex_home.mkdir()
    (codex_home / "hooks.json").write_text(hooks_path.read_text(encoding="utf-8"),
                                           encoding="utf-8")
    work.mkdir()
    monkeypatch.chdir(work)
    env = {"HOME": str(tmp_path / "home"), "CODEX_HOME": str(codex_home),
           "CTXDB_URL": str(tmp_path / "ctxdb.db"), "CTXDB_CONFIG": None,
           "GEMINI_CLI_TRUST_WORKSPACE": None}
    assert CliRunner().invoke(cli, ["init"], env=env).exit_code == 0
    done = CliRunner().invoke(cli, ["doctor", "--json"], env=env)
    assert done.exit_code == 0, done.output
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]
              if c["name"].startswith("codex")}
    assert set(checks) == {f"codex hook {event} (user)" for event in CODEX_REPORTED}
    assert all(c["status"] == "warn" and "/hooks" in c["detail"] for c in checks.values())
