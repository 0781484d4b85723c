"""``ctxdb export``, ``ctxdb import bundle`` and ``ctxdb db copy`` on both backends: JSON and
human output, stdout bundles, dry runs, exit codes of damaged bundles and conflicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxdb.settings import Settings
from test_cli import Cli


@pytest.fixture
def run(settings: Settings, tmp_path: Path) -> Cli:
    return Cli(settings.url, tmp_path)


@pytest.fixture
def other(tmp_path: Path) -> Cli:
    """ctxdb on a second (SQLite) database."""
    return Cli(str(tmp_path / "other.db"), tmp_path)


@pytest.fixture
def pid(run: Cli) -> str:
    project_id: str = run.ok("project", "create", "Shop")["project_id"]
    run.ok("context", "store", "-p", project_id, '{"decision": "Stripe"}', "--priority",
           "CRITICAL")
    run.ok("memory", "put", "-p", project_id, "user:prefs", "theme", '{"dark": true}')
    return project_id


def test_export_and_import_a_bundle(run: Cli, other: Cli, pid: str, tmp_path: Path) -> None:
    bundle = str(tmp_path / "shop.jsonl.gz")
    exported = run.ok("export", bundle)
    assert exported["records"] == 7 and exported["path"] == bundle
    assert exported["tables"]["memory_versions"]["rows"] == 1
    plan = other.ok("import", "bundle", bundle, "--dry-run")
    assert plan["dry_run"] and plan["inserted"] == 7
    assert other.ok("project", "list") == []
    imported = other.ok("import", "bundle", bundle)
    assert (imported["inserted"], imported["skipped"]) == (7, 0)
    assert other.ok("project", "get", pid)["name"] == "Shop"
    human = other("import", "bundle", bundle)
    assert human.exit_code == 0, human.output
    assert "imported 0, skipped 7 already present" in human.stdout
    line = run.fails(2, "export", bundle)
    assert "already exists" in line
    assert run.ok("export", bundle, "--force")["records"] == 7


def test_export_one_project_to_stdout(run: Cli, pid: str, tmp_path: Path) -> None:
    run.ok("project", "create", "Blog")
    result = run("export", "-", "--project", pid, "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert json.loads(lines[0])["project_id"] == pid
    assert json.loads(lines[-1])["kind"] == "trailer"
    summary = json.loads(result.stderr)
    assert summary["path"] == "-" and summary["records"] == len(lines) - 2
    human = run("export", "-p", pid, "-")
    assert human.exit_code == 0 and "exported" in human.stderr
    assert run.fails(3, "export", str(tmp_path / "x.jsonl"), "-p", "proj_unknown")


def test_damaged_bundles_and_conflicts_exit_with_their_codes(
    run: Cli, other: Cli, pid: str, tmp_path: Path
) -> None:
    bundle = tmp_path / "shop.jsonl"
    run.ok("export", str(bundle))
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes(bundle.read_bytes().replace(b"Stripe", b"Stripf"))
    line = other.fails(2, "import", "bundle", str(damaged))
    assert "checksum does not match" in line and "nothing was imported" in line
    result = other("import", "bundle", str(damaged), "--json")
    assert result.exit_code == 2 and json.loads(result.stderr)["error"] == "invalid_bundle"
    other.ok("project", "create", "Elsewhere")  # its numbers are the bundle's: moved aside
    assert other.ok("import", "bundle", str(bundle))["renumbered"] > 0
    assert sorted(p["name"] for p in other.ok("project", "list")) == ["Elsewhere", "Shop"]
    human = other("import", "bundle", str(bundle))
    assert human.exit_code == 0 and "skipped 7 already present" in human.stdout
    run.ok("project", "update", pid, "--description", "changed after the export")
    run.ok("export", str(bundle), "--force")
    line = other.fails(4, "import", "bundle", str(bundle))
    assert "projects" in line and "--replace would overwrite" in line and "lose" in line
    assert other.ok("project", "get", pid)["description"] != "changed after the export"


def test_db_copy(run: Cli, pid: str, tmp_path: Path) -> None:
    target = str(tmp_path / "copy.db")
    plan = run.ok("db", "copy", "--to", target, "--dry-run")
    assert plan["dry_run"] and plan["would_copy"] and plan["rows"] == 7
    copied = run.ok("db", "copy", "--to", target, "--batch-size", "2")
    assert copied["rows"] == 7 and all(t["match"] for t in copied["tables"])
    assert Cli(target, tmp_path).ok("project", "get", pid)["name"] == "Shop"
    line = run.fails(4, "db", "copy", "--to", target)
    assert "holds rows" in line and "--force" in line
    human = run("db", "copy", "--to", target, "--force")
    assert human.exit_code == 0, human.output
    words = " ".join(human.stdout.split())  # the summary line wraps where the paths fall
    assert "verified every table" in words and "memory_versions" in words
    back = run("db", "copy", "--from", target, "--to", str(tmp_path / "third.db"), "--json")
    assert back.exit_code == 0 and json.loads(back.stdout)["rows"] == 7
    assert "same database" in run.fails(2, "db", "copy", "--from", target, "--to", target)
