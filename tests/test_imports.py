"""``db.imports.import_files`` on both backends: a realistic repository tree with CLAUDE.md,
AGENTS.md, GEMINI.md, .claude/ and memory.json; idempotence, supersede, dry run, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ctxdb.domain.agents import RepoIdentity
from ctxdb.errors import (
    ImportSourceError,
    MalformedImportFileError,
    ProjectNotFoundError,
    UnsafePathError,
)
from ctxdb.service import Ctxdb
from import_tree import CLAUDE_MD, MEMORY_GRAPH, build_repository, write


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return build_repository(tmp_path / "shop")


def with_instructions(db: Ctxdb, path: str, **options: Any) -> dict[str, Any]:
    """An import of ``path`` that takes the instruction files too (most tests are about them)."""
    return db.imports.import_files(path, include_instructions=True, **options)


def items_of(db: Ctxdb, project_id: str) -> list[dict[str, Any]]:
    grouped = db.context.full(project_id)
    return sorted((item for group in grouped.values() for item in group),
                  key=lambda item: item["sequence_number"])


def memories_of(db: Ctxdb, project_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["namespace"], m["key"]): m for m in db.memories.list(project_id, limit=1000)}


def nothing_written(db: Ctxdb) -> bool:
    return db.projects.list(include_archived=True) == [] and db.audit_log() == []


def by_source(items: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    return [i for i in items if i["metadata"]["import"]["source"] == source]


def test_each_kind_of_file_is_mapped(db: Ctxdb, project: dict[str, Any], repo: Path) -> None:
    pid = project["project_id"]
    report = with_instructions(db, str(repo), project_id=pid)
    counts = report["counts"]
    assert counts["instructions"]["imported"] == 11
    assert counts["context"] == {"imported": 2, "updated": 0, "unchanged": 0, "skipped": 2}
    assert counts["context_items"]["imported"] == 3
    assert counts["memories"]["imported"] == 5
    assert (counts["mcp_entities"]["imported"], counts["mcp_relations"]["imported"]) == (3, 2)
    reasons = {s["path"]: s["reason"] for s in report["skipped"]}
    assert reasons[".claude/settings.local.json"].startswith("personal settings")
    assert reasons[".claude/logs/2025-11-19.log"].startswith("logs are not imported")
    assert "import legacy" in reasons[".claude/state.db"]
    assert reasons[".claude/context/blob.txt"] == "binary file"
    assert reasons[".claude/context/huge.md"].startswith("larger than")
    assert reasons[".claude/skills/release/scripts/bump.sh"].startswith("skill resource")

    items = items_of(db, pid)
    claude = by_source(items, "CLAUDE.md")
    # One item per section with a body, in file order; CRITICAL by heading or emphasis.
    assert [(i["metadata"]["import"]["section"], i["priority"]) for i in claude] == [
        (["Shop"], "HIGH"),
        (["Shop", "Build and test"], "HIGH"),
        (["Shop", "Critical rules"], "CRITICAL"),
        (["Shop", "Architecture", "Payments"], "CRITICAL"),
        (["Shop", "Architecture", "Cart"], "HIGH"),
    ]
    # Instruction files come first in the sequence.
    assert items[0]["content_type"] == "instructions"
    assert all(i["content_type"] == "instructions" for i in items[:11])
    build = claude[1]["content"]
    assert build.startswith("CLAUDE.md › Shop > Build and test")
    assert "# this line is code, not a heading" in build
    assert {i["content_type"] for i in claude} == {"instructions"}
    assert [i["priority"] for i in by_source(items, "frontend/CLAUDE.md")] == ["HIGH"]
    assert len(by_source(items, "AGENTS.md")) == 3 and len(by_source(items, "GEMINI.md")) == 1
    assert len(by_source(items, "docs/conventions.md")) == 1  # through @docs/conventions.md
    assert not [i for i in items if "node_modules" in i["metadata"]["import"]["source"]]
    decisions = by_source(items, ".claude/context/decisions.json")
    assert [(i["priority"], i["content_type"]) for i in decisions] == [
        ("CRITICAL", "decision"), ("MEDIUM", "note"), ("LOW", "code")]  # code: the default
    assert decisions[2]["metadata"]["owner"] == "ana"
    assert [i["priority"] for i in by_source(items, ".claude/context/architecture.md")] == [
        "MEDIUM", "MEDIUM"]

    memories = memories_of(db, pid)
    review = memories[("claude:commands", "review")]
    assert review["memory_type"] == "procedural"
    assert review["value"]["front_matter"]["description"] == "Review the staged diff"
    assert review["value"]["text"].startswith("Review the staged changes")
    assert memories[("claude:agents", "code-reviewer")]["memory_type"] == "procedural"
    assert memories[("claude:skills", "release")]["value"]["front_matter"]["name"] == "release"
    settings = memories[("claude:settings", "settings.json")]
    assert settings["value"]["json"]["permissions"]["deny"] == ["Read(./.env)"]
    assert memories[("claude:config", "team.json")]["value"]["json"] == {
        "reviewers": ["ana", "bo"]}
    ana = memories[("mcp:entity:person", "Ana_Lima")]
    assert ana["value"] == {k: v for k, v in MEMORY_GRAPH[0].items() if k != "type"}
    assert memories[("mcp:entity:payment_provider", "Stripe")]["value"]["entityType"] == \
        "payment provider"
    relation = memories[("mcp:relation:depends_on", "Shop -> Stripe")]
    assert relation["value"] == {"from": "Shop", "to": "Stripe", "relationType": "depends on"}
    actions = [a["action"] for a in db.audit_log(project_id=pid, limit=1000)]
    assert actions[0] == "import.files"
    assert actions.count("context.store") == 16 and actions.count("memory.put") == 10


def test_importing_again_adds_nothing(db: Ctxdb, project: dict[str, Any], repo: Path) -> None:
    pid = project["project_id"]
    first = with_instructions(db, str(repo), project_id=pid)
    items, memories = items_of(db, pid), memories_of(db, pid)
    again = with_instructions(db, str(repo), project_id=pid)
    assert again["totals"]["imported"] == again["totals"]["updated"] == 0
    assert again["totals"]["unchanged"] == first["totals"]["imported"]
    assert items_of(db, pid) == items
    assert memories_of(db, pid) == memories  # same versions: no new version written


def test_a_changed_section_supersedes_its_earlier_import(
    db: Ctxdb, project: dict[str, Any], repo: Path
) -> None:
    pid = project["project_id"]
    with_instructions(db, str(repo), project_id=pid)
    cart = "Cart totals are cached for 60 s in Redis."
    (repo / "CLAUDE.md").write_text(CLAUDE_MD.replace(cart, "Cart totals are never cached."))
    report = with_instructions(db, str(repo), project_id=pid)
    assert report["counts"]["instructions"]["updated"] == 1
    assert report["totals"]["imported"] == 0
    live = [i for i in by_source(items_of(db, pid), "CLAUDE.md")
            if i["metadata"]["import"]["section"][-1] == "Cart"]
    assert len(live) == 1 and "never cached" in live[0]["content"]
    assert not [i for i in items_of(db, pid) if "cached for 60 s" in str(i["content"])]
    # Back to the first text: it becomes the live item again (a new version of the slot).
    (repo / "CLAUDE.md").write_text(CLAUDE_MD)
    assert with_instructions(db, str(repo), project_id=pid)["counts"]["instructions"][
        "updated"] == 1
    live = [i for i in by_source(items_of(db, pid), "CLAUDE.md")
            if i["metadata"]["import"]["section"][-1] == "Cart"]
    assert len(live) == 1 and cart in live[0]["content"]


def test_a_changed_entity_is_a_new_memory_version(
    db: Ctxdb, project: dict[str, Any], repo: Path
) -> None:
    pid = project["project_id"]
    db.imports.import_files(str(repo / "memory.json"), project_id=pid)
    graph = [dict(r) for r in MEMORY_GRAPH]
    graph[0]["observations"] = [*graph[0]["observations"], "Moved to the checkout team"]
    write(repo / "memory.json", "".join(json.dumps(r) + "\n" for r in graph))
    report = db.imports.import_files(str(repo / "memory.json"), project_id=pid)
    assert report["counts"]["mcp_entities"] == {"imported": 0, "updated": 1, "unchanged": 2,
                                                "skipped": 0}
    history = db.memories.history(pid, "mcp:entity:person", "Ana_Lima")
    assert [len(v["value"]["observations"]) for v in history] == [2, 3]


def test_dry_run_writes_nothing_and_reports_the_same(
    db: Ctxdb, repo: Path, make_settings: Any
) -> None:
    identity = RepoIdentity("git:example.com/acme/shop@0123456789ab", "shop", str(repo))
    dry = with_instructions(db, str(repo), repo=identity, dry_run=True)
    assert dry["dry_run"] is True and dry["totals"]["imported"] == 26
    assert nothing_written(db)  # not even the repository's project
    real = with_instructions(db, str(repo), repo=identity)
    assert {k: v for k, v in real.items() if k not in ("dry_run", "project_id")} == \
        {k: v for k, v in dry.items() if k not in ("dry_run", "project_id")}
    project = db.projects.get(real["project_id"])
    assert project["repo_key"] == identity.repo_key
    # The repository's project is found again, not created twice.
    assert with_instructions(db, str(repo), repo=identity)["project_id"] == project["project_id"]


def test_a_symlink_pointing_out_refuses_the_import(db: Ctxdb, repo: Path,
                                                   tmp_path: Path) -> None:
    secret = write(tmp_path / "outside" / "secrets.md", "# Keys\n\nsk_live_x\n")
    os.symlink(secret, repo / ".claude" / "context" / "notes.md")
    identity = RepoIdentity("dir:shop", "shop", str(repo))
    with pytest.raises(UnsafePathError) as caught:
        with_instructions(db, str(repo), repo=identity)
    assert caught.value.details["path"] == ".claude/context/notes.md"
    assert nothing_written(db)


def test_a_symlinked_folder_pointing_out_refuses_the_import(db: Ctxdb, repo: Path,
                                                            tmp_path: Path) -> None:
    write(tmp_path / "elsewhere" / "CLAUDE.md", "# Other\n\nNot this repository.\n")
    os.symlink(tmp_path / "elsewhere", repo / "linked")
    with pytest.raises(UnsafePathError):
        with_instructions(db, str(repo), repo=RepoIdentity("dir:shop", "shop"))
    assert nothing_written(db)


def test_an_at_reference_leading_out_refuses_the_import(db: Ctxdb, repo: Path,
                                                        tmp_path: Path) -> None:
    write(tmp_path / "private.md", "# Private\n\nmy notes\n")
    write(repo / "CLAUDE.md", CLAUDE_MD + "\nSee @../private.md too.\n")
    with pytest.raises(UnsafePathError) as caught:
        with_instructions(db, str(repo), repo=RepoIdentity("dir:shop", "shop"))
    assert "@../private.md" in caught.value.message
    assert nothing_written(db)


def test_symlinks_inside_the_folder_are_read_once(db: Ctxdb, project: dict[str, Any],
                                                  tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root / "CLAUDE.md", "# Repo\n\nShared instructions.\n")
    os.symlink("CLAUDE.md", root / "AGENTS.md")
    report = with_instructions(db, str(root), project_id=project["project_id"])
    assert report["counts"]["instructions"]["imported"] == 1
    assert report["skipped"] == [{"kind": "instructions", "path": "AGENTS.md",
                                  "reason": "same file as CLAUDE.md"}]


@pytest.mark.timeout(20)
def test_a_fifo_or_a_symlink_loop_is_skipped_not_opened(db: Ctxdb, project: dict[str, Any],
                                                        tmp_path: Path) -> None:
    """A FIFO named CLAUDE.md would block the import forever if opened: its type is checked
    first. A symlink loop is skipped too, not a traceback."""
    root = tmp_path / "repo"
    write(root / ".claude" / "context" / "notes.md", "# Notes\n\nkept\n")
    os.mkfifo(root / "CLAUDE.md")
    os.symlink("loop.md", root / ".claude" / "context" / "loop.md")
    report = with_instructions(db, str(root), project_id=project["project_id"])
    reasons = {s["path"]: s["reason"] for s in report["skipped"]}
    assert reasons["CLAUDE.md"] == "not a regular file (a FIFO)"
    assert reasons[".claude/context/loop.md"] == "a symlink loop"
    assert report["counts"]["context"]["imported"] == 1
    with pytest.raises(ImportSourceError, match=r"CLAUDE\.md is not a regular file"):
        db.imports.import_files(str(root / "CLAUDE.md"), project_id=project["project_id"])


@pytest.mark.parametrize("name", [".claude/context/deep.json", "memory.json",
                                  ".claude/settings.json"])
def test_json_over_the_depth_limit_is_a_skip_in_a_folder_and_an_error_when_named(
    db: Ctxdb, project: dict[str, Any], tmp_path: Path, name: str
) -> None:
    """Not 'internal error: RecursionError': the limit of every JSON ctxdb takes, named."""
    root = tmp_path / "repo"
    deep = write(root / name, "[" * 5_000 + "]" * 5_000)
    report = with_instructions(db, str(root), project_id=project["project_id"])
    reasons = {s["path"]: s["reason"] for s in report["skipped"]}
    assert "nested deeper than the limit of 100 levels" in reasons.get(name, ""), reasons
    if not name.startswith(".claude/settings"):
        with pytest.raises(MalformedImportFileError, match="nested deeper than the limit"):
            db.imports.import_files(str(deep), project_id=project["project_id"])
    assert items_of(db, project["project_id"]) == []


def test_malformed_json_is_a_reported_skip_in_a_folder_and_an_error_when_named(
    db: Ctxdb, project: dict[str, Any], repo: Path
) -> None:
    pid = project["project_id"]
    bad = write(repo / ".claude" / "context" / "broken.json", '[{"content": "a"},')
    write(repo / ".claude" / "context" / "shapeless.json", '[{"text": "no content key"}]')
    report = with_instructions(db, str(repo), project_id=pid)
    reasons = {s["path"]: s["reason"] for s in report["skipped"]}
    assert reasons[".claude/context/broken.json"].startswith("malformed: not valid JSON")
    assert reasons[".claude/context/shapeless.json"].startswith("malformed: not a list")
    assert report["counts"]["context_items"]["imported"] == 3  # the good file still counts
    before = len(db.audit_log(project_id=pid, limit=1000))
    with pytest.raises(MalformedImportFileError) as caught:
        db.imports.import_files(str(bad), project_id=pid)
    assert "not valid JSON" in caught.value.message
    write(repo / "graph.json", '{"type": "entity", "name": "x"}\n')
    with pytest.raises(MalformedImportFileError, match="entityType"):
        db.imports.import_files(str(repo / "graph.json"), project_id=pid)
    assert len(db.audit_log(project_id=pid, limit=1000)) == before


def test_a_json_file_of_items_in_the_seeds_export_shape(
    db: Ctxdb, project: dict[str, Any], tmp_path: Path
) -> None:
    exported = {"CRITICAL": [{"content": {"decision": "Use factory pattern"},
                              "content_type": "code", "token_count": 9}],
                "HIGH": [{"content": {"feature": "user_authentication"}}], "LOW": []}
    path = write(tmp_path / "full_context.json", json.dumps(exported))
    pid = project["project_id"]
    report = db.imports.import_files(str(path), project_id=pid)
    assert report["counts"]["context_items"]["imported"] == 2
    items = items_of(db, pid)
    assert (items[0]["priority"], items[0]["token_count"]) == ("CRITICAL", 9)
    assert items[1]["content"] == {"feature": "user_authentication"}


def test_bad_targets_are_refused(db: Ctxdb, project: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ImportSourceError, match="no such file"):
        db.imports.import_files(str(tmp_path / "missing"), project_id=project["project_id"])
    other = write(tmp_path / "notes.csv", "a,b\n")
    with pytest.raises(ImportSourceError, match="not a kind of file"):
        db.imports.import_files(str(other), project_id=project["project_id"])
    with pytest.raises(ProjectNotFoundError):
        db.imports.import_files(str(tmp_path), project_id="proj_unknown")
    assert len(db.audit_log()) == 1  # the fixture's project.create only


def install_every_client(root: Path) -> None:
    """What `ctxdb install` writes into a repository, for each client (project scope)."""
    from ctxdb.clients import CLIENTS, apply_changes, plan_install

    for client in sorted(CLIENTS):
        apply_changes(plan_install(client, "project", root, root / "home", "ctxdb"))


def test_a_folder_import_leaves_out_what_clients_load_and_what_install_wrote(
    db: Ctxdb, project: dict[str, Any], tmp_path: Path
) -> None:
    """CLAUDE.md (the client loads it: importing it injects it twice) and ctxdb's hooks in
    .claude/settings.json are skipped with the reason; the rest of the folder is imported."""
    root = tmp_path / "repo"
    write(root / "CLAUDE.md", CLAUDE_MD)
    write(root / "AGENTS.md", "# Agents\n\nRun make test.\n")
    write(root / ".claude" / "rules" / "style.md", "# Style\n\nShort functions.\n")
    write(root / ".claude" / "context" / "notes.md", "# Notes\n\nThe cache is per tenant.\n")
    install_every_client(root)
    assert (root / ".claude" / "settings.json").exists()
    pid = project["project_id"]
    report = db.imports.import_files(str(root), project_id=pid)
    reasons = {s["path"]: s["reason"] for s in report["skipped"]}
    assert "Claude Code loads it into every session itself" in reasons["CLAUDE.md"]
    assert "--include-instructions" in reasons["CLAUDE.md"]
    assert reasons["AGENTS.md"].startswith("Codex loads it")
    assert reasons[".claude/rules/style.md"].startswith("Claude Code loads it")
    assert reasons[".claude/settings.json"].startswith("only ctxdb's own hooks")
    assert [i["metadata"]["import"]["source"] for i in items_of(db, pid)] == [
        ".claude/context/notes.md"]
    assert memories_of(db, pid) == {}


def test_settings_keep_the_users_own_entries_without_ctxdbs_hooks(
    db: Ctxdb, project: dict[str, Any], tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    write(root / ".claude" / "settings.json", json.dumps({
        "permissions": {"deny": ["Read(./.env)"]},
        "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "make lint"}]}]}}))
    install_every_client(root)
    pid = project["project_id"]
    db.imports.import_files(str(root), project_id=pid)
    value = memories_of(db, pid)[("claude:settings", "settings.json")]["value"]
    assert value["json"] == {"permissions": {"deny": ["Read(./.env)"]},
                             "hooks": {"Stop": [{"hooks": [{"type": "command",
                                                            "command": "make lint"}]}]}}
    assert value["ctxdb_hooks_left_out"] >= 5
