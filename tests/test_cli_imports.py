"""``ctxdb import files|legacy`` on both backends: JSON and human output, dry run, exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ctxdb.settings import Settings
from import_tree import build_repository, write
from legacy_db import SHOP, build_seed_database
from test_cli import Cli


@pytest.fixture
def run(settings: Settings, tmp_path: Path) -> Cli:
    return Cli(settings.url, tmp_path)


def live_items(run: Cli, pid: str) -> int:
    grouped = run.ok("context", "list", "-p", pid)
    return sum(len(items) for items in grouped.values())


def test_import_files_into_a_project(run: Cli, tmp_path: Path) -> None:
    repo = build_repository(tmp_path / "shop")
    pid = run.ok("project", "create", "Shop")["project_id"]
    dry = run.ok("import", "files", str(repo), "--project", pid, "--dry-run",
                 "--include-instructions")
    assert dry["dry_run"] is True and dry["totals"]["imported"] == 26
    assert live_items(run, pid) == 0
    report = run.ok("import", "files", str(repo), "-p", pid, "--include-instructions")
    assert report["project_id"] == pid and report["totals"] == dry["totals"]
    assert run.ok("memory", "get", "-p", pid, "mcp:entity:person", "Ana_Lima")["version"] == 1
    human = run("import", "files", str(repo), "-p", pid, "--include-instructions")
    assert human.exit_code == 0
    assert "imported 0 new, 0 updated; 26 unchanged, 6 skipped" in human.stdout
    assert "personal settings" in human.stdout


def test_import_files_says_which_files_the_clients_load_themselves(run: Cli,
                                                                  tmp_path: Path) -> None:
    repo = build_repository(tmp_path / "shop")
    pid = run.ok("project", "create", "Shop")["project_id"]
    human = run("import", "files", str(repo), "-p", pid)
    assert human.exit_code == 0, human.output
    flat = " ".join(human.stdout.split())
    assert "Claude Code loads it into every session itself" in flat
    assert "--include-instructions" in flat
    report = run.ok("import", "files", str(repo), "-p", pid)
    skipped = {s["path"] for s in report["skipped"] if s["kind"] == "instructions"}
    assert {"CLAUDE.md", "AGENTS.md", "GEMINI.md", "frontend/CLAUDE.md"} <= skipped
    assert report["counts"].get("instructions", {}).get("imported", 0) == 0
    assert report["totals"]["unchanged"] == 15


def test_import_files_defaults_to_the_repositorys_project(run: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "blog"
    write(repo / "CLAUDE.md", "# Blog\n\nStatic site.\n")
    first = run.ok("import", "files", str(repo))
    project = run.ok("project", "get", first["project_id"])
    assert project["repo_key"].startswith("dir:") and project["repo_key"].endswith("blog")
    assert run.ok("import", "files", str(repo / "CLAUDE.md"))["project_id"] == \
        first["project_id"]


def test_unsafe_and_malformed_inputs_exit_2_and_write_nothing(run: Cli,
                                                              tmp_path: Path) -> None:
    repo = build_repository(tmp_path / "shop")
    pid = run.ok("project", "create", "Shop")["project_id"]
    os.symlink(write(tmp_path / "secret.md", "# s\n\nx\n"), repo / ".claude" / "context" / "s.md")
    line = run.fails(2, "import", "files", str(repo), "-p", pid)
    assert "points outside the import folder" in line
    result = run("import", "files", str(repo), "-p", pid, "--json")
    assert result.exit_code == 2 and json.loads(result.stderr)["error"] == "unsafe_path"
    bad = write(tmp_path / "items.json", "[{\"content\": 1},")
    assert "not valid JSON" in run.fails(2, "import", "files", str(bad), "-p", pid)
    assert live_items(run, pid) == 0


def test_import_legacy(run: Cli, tmp_path: Path) -> None:
    seed = tmp_path / "ultrathink_context.db"
    build_seed_database(seed)
    dry = run.ok("import", "legacy", str(seed), "--dry-run")
    assert dry["totals"]["imported"] == 17
    assert run.ok("project", "list") == []
    report = run.ok("import", "legacy", str(seed))
    assert report["counts"]["context_items"]["imported"] == 7
    assert run.ok("project", "get", SHOP)["name"] == "E-Commerce Platform"
    human = run("import", "legacy", str(seed))
    assert human.exit_code == 0 and "17 unchanged" in human.stdout
    text = write(tmp_path / "notes.txt", "not a database at all, just text" * 20)
    assert "not a readable SQLite database" in run.fails(2, "import", "legacy", str(text))
