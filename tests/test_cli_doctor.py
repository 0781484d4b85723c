"""``ctxdb doctor`` on the command line: the table, --json, --fix and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxdb.cli.output import EXIT_UNHEALTHY
from ctxdb.settings import Settings
from test_cli import Cli
from test_doctor import (
    copy_database,
    fill,
    healthy,
    leaf_pages,
    raw_execute,
    rewrite_page,
)


def test_a_healthy_database(scratch: Settings, tmp_path: Path) -> None:
    run = Cli(scratch.url, tmp_path)
    report = run.ok("doctor")
    expected = healthy(report["backend"])
    warned = sum(status == "warn" for status in expected.values())  # PostgreSQL without RLS
    skipped = sum(status == "skipped" for status in expected.values())  # without amcheck
    passed = sum(status == "pass" for status in expected.values())
    assert set(report) == {"backend", "location", "ok", "fix", "thorough", "summary", "checks",
                           "dry_run"}
    assert report["ok"] is True and report["summary"] == {"pass": passed, "warn": warned,
                                                          "fail": 0, "skipped": skipped}
    assert [c["name"] for c in report["checks"]] == list(expected)
    for entry in report["checks"]:
        assert set(entry) == {"name", "status", "detail", "fixed", "data"}
        assert entry["status"] == expected[entry["name"]] and entry["detail"]
        assert entry["fixed"] == ""
    human = run("doctor")
    assert human.exit_code == 0, human.output
    assert "ctxdb doctor" in human.stdout and f"{passed} passed" in human.stdout
    assert (f"{skipped} skipped" in human.stdout) == bool(skipped)
    for name in expected:
        assert name in human.stdout


def test_a_dropped_index_exits_7_and_fix_recreates_it(scratch: Settings, tmp_path: Path) -> None:
    run = Cli(scratch.url, tmp_path)
    raw_execute(scratch.url, "DROP INDEX idx_messages_inbox")
    failed = run("doctor", "--json")
    assert failed.exit_code == EXIT_UNHEALTHY and failed.stderr == ""
    report = json.loads(failed.stdout)
    assert report["ok"] is False and report["summary"]["fail"] == 2
    human = run("doctor")
    assert human.exit_code == EXIT_UNHEALTHY and "unhealthy" in human.stdout
    assert "idx_messages_inbox" in human.stdout and "--fix" in human.stdout

    dry = run("doctor", "--fix", "--dry-run", "--json")
    assert dry.exit_code == EXIT_UNHEALTHY, dry.output
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True and planned["fix"] is False
    indexes = next(c for c in planned["checks"] if c["name"] == "indexes")
    assert indexes["status"] == "fail" and indexes["fixed"] == ""
    assert "idx_messages_inbox" in indexes["detail"] and "--fix" in indexes["detail"]
    assert run("doctor").exit_code == EXIT_UNHEALTHY  # the dry run recreated nothing

    fixed = run.ok("doctor", "--fix")
    assert fixed["fix"] is True and fixed["ok"] is True and fixed["dry_run"] is False
    indexes = next(c for c in fixed["checks"] if c["name"] == "indexes")
    assert indexes["fixed"] == "recreated index(es) idx_messages_inbox"
    assert run("doctor").exit_code == 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_corrupted_file_exits_7(scratch: Settings, tmp_path: Path) -> None:
    fill(scratch)
    damaged = copy_database(scratch.sqlite_path, tmp_path / "damaged.db")
    pages = leaf_pages(damaged, "context_items")
    rewrite_page(damaged, pages[len(pages) // 2],
                 lambda data: data.__setitem__(slice(100, 300), b"\xff" * 200))
    run = Cli(str(damaged), tmp_path)
    result = run("doctor", "--thorough", "--json")
    assert result.exit_code == EXIT_UNHEALTHY
    report = json.loads(result.stdout)
    integrity = next(c for c in report["checks"] if c["name"] == "integrity")
    assert integrity["status"] == "fail" and integrity["data"]["method"] == "integrity_check"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_wal_limit_option(scratch: Settings, tmp_path: Path) -> None:
    run = Cli(scratch.url, tmp_path)
    report = run.ok("doctor", "--wal-limit", "0")
    size = next(c for c in report["checks"] if c["name"] == "size")
    assert size["data"]["wal_warn_bytes"] == 0
    refused = run("doctor", "--wal-limit", "-1")
    assert refused.exit_code == 2 and "--wal-limit" in refused.stderr


def test_a_progress_bar_on_a_terminal_and_none_with_json(
    scratch: Settings, tmp_path: Path
) -> None:
    run = Cli(scratch.url, tmp_path)
    shown = run("doctor", TTY_COMPATIBLE="1")  # Rich draws as on a terminal
    assert shown.exit_code == 0, shown.output
    assert "running checks" in shown.stderr and "running checks" not in shown.stdout
    quiet = run("doctor", "--json", TTY_COMPATIBLE="1")
    assert quiet.exit_code == 0 and quiet.stderr == ""
