"""``ctxdb backup``, ``ctxdb restore``, ``ctxdb gc`` and ``ctxdb context archived|unarchive``
on both backends: JSON output, exit codes, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from test_backup import content_of
from test_cli import Cli
from test_retention import backdate


@pytest.fixture
def run(settings: Settings, tmp_path: Path) -> Cli:
    return Cli(settings.url, tmp_path)


@pytest.fixture
def pid(run: Cli) -> str:
    project_id: str = run.ok("project", "create", "Backed up")["project_id"]
    run.ok("context", "store", "-p", project_id, '{"decision": "keep it"}', "--priority",
           "CRITICAL")
    return project_id


def test_backup_and_restore_commands(run: Cli, pid: str, settings: Settings,
                                     tmp_path: Path) -> None:
    target = str(tmp_path / "nightly.backup")
    made = run.ok("backup", target)
    assert made["file"] == target and made["integrity"] == "ok" and made["rows"] > 0
    line = run.fails(4, "backup", target)
    assert "already exists" in line
    before = content_of(settings)
    run.ok("context", "store", "-p", pid, '{"note": "after"}')
    refused = run("restore", target, "--json")
    assert refused.exit_code == 4
    assert json.loads(refused.stderr)["error"] == "database_not_empty"
    dry = run.ok("restore", target, "--force", "--dry-run")
    assert dry["dry_run"] and dry["replaced_rows"]["context_items"] == 2
    restored = run.ok("restore", target, "--force")
    assert restored["checksum"] == "verified"
    assert content_of(settings) == before
    human = run("backup", target, "--force")
    assert human.exit_code == 0 and "backed up" in human.stdout and "sha256" in human.stdout


def test_a_damaged_backup_exits_2_and_changes_nothing(run: Cli, pid: str, settings: Settings,
                                                      tmp_path: Path) -> None:
    target = tmp_path / "nightly.backup"
    run.ok("backup", str(target))
    with target.open("r+b") as handle:
        handle.seek(target.stat().st_size // 2)
        handle.write(b"\x00garbage\x00")
    before = content_of(settings)
    line = run.fails(2, "restore", str(target), "--force")
    assert "does not match its checksum" in line
    assert content_of(settings) == before


def test_gc_and_the_archive_commands(run: Cli, pid: str, settings: Settings) -> None:
    item = run.ok("context", "store", "-p", pid, '{"old": "note"}', "--priority", "LOW")
    backdate(settings, "context_items", "created_at", "item_id", item["item_id"])
    dry = run.ok("gc", "--dry-run")
    assert dry["dry_run"] and dry["kinds"]["context_items"]["found"] == 1
    text = run("gc", "--dry-run")
    assert text.exit_code == 0 and "would" in text.stdout and "180 days" in text.stdout
    done = run.ok("gc", "--project", pid)
    assert done["kinds"]["context_items"]["done"] == 1
    archived = run.ok("context", "archived", "-p", pid)
    assert [a["item_id"] for a in archived] == [item["item_id"]]
    run.ok("context", "unarchive", str(item["item_id"]))
    shown = run("gc", TTY_COMPATIBLE="1")  # Rich draws its progress bar as on a terminal
    assert shown.exit_code == 0, shown.output
    assert "archiving old context items" in shown.stderr
    assert "archiving" not in shown.stdout
    assert archived[0]["content"] == {"old": "note"}
    back = run.ok("context", "unarchive", str(item["item_id"]))
    assert [b["item_id"] for b in back] == [item["item_id"]]
    assert run.fails(3, "context", "unarchive", str(item["item_id"])).startswith("error: ")
    assert run.fails(3, "gc", "--project", "proj_missing")
    with Ctxdb.open(settings) as db:
        assert db.context.get(item["item_id"])["state"] == "active"
    more = [run.ok("context", "store", "-p", pid, f'{{"old": {n}}}', "--priority", "LOW")
            for n in range(3)]
    for old_one in more:
        backdate(settings, "context_items", "created_at", "item_id", old_one["item_id"])
    small = run.ok("gc", "--batch-size", "2")["kinds"]["context_items"]
    assert (small["done"], small["batches"]) == (4, 2)  # one transaction per 2 items
    refused = run.fails(2, "gc", "--batch-size", "0")
    assert "batch_size must be an integer between 1 and 1000" in refused
