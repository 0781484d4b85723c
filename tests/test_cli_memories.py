"""``ctxdb memory …`` on both backends: every command, its JSON, exit codes and refusals."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ctxdb.settings import Settings
from test_cli import Cli


@pytest.fixture
def run(settings: Settings, tmp_path: Path) -> Cli:
    return Cli(settings.url, tmp_path)


@pytest.fixture
def pid(run: Cli) -> str:
    project_id: str = run.ok("project", "create", "Memories")["project_id"]
    return project_id


def test_put_get_history_and_versions(run: Cli, pid: str) -> None:
    created = run.ok("memory", "put", "-p", pid, "user:prefs", "theme", '{"dark": true}',
                     "--expect-version", "0")
    assert (created["version"], created["value"]) == (1, {"dark": True})
    updated = run.ok("memory", "put", "-p", pid, "user:prefs", "theme", '{"dark": false}',
                     "--expect-version", "1", "--type", "procedural")
    assert (updated["version"], updated["memory_type"]) == (2, "procedural")
    assert run.ok("memory", "get", "-p", pid, "user:prefs", "theme")["value"] == {"dark": False}
    assert run.ok("memory", "get", "-p", pid, "user:prefs", "theme",
                  "--version", "1")["value"] == {"dark": True}
    history = run.ok("memory", "history", "-p", pid, "user:prefs", "theme")
    assert [v["version"] for v in history] == [1, 2]
    text = run("memory", "put", "-p", pid, "notes", "n", "plain words", "--text", "--ttl", "60")
    assert text.exit_code == 0 and "notes/n v1" in text.stdout
    assert run.ok("memory", "get", "-p", pid, "notes", "n")["expires_at"] is not None


def test_a_stale_version_exits_4_with_the_current_version(run: Cli, pid: str) -> None:
    run.ok("memory", "put", "-p", pid, "app:config", "x", "1")
    run.ok("memory", "put", "-p", pid, "app:config", "x", "2")
    line = run.fails(4, "memory", "put", "-p", pid, "app:config", "x", "3",
                     "--expect-version", "1")
    assert "expected at version 1 but is at version 2" in line
    result = run("memory", "put", "-p", pid, "app:config", "x", "3", "--expect-version", "0",
                 "--json")
    assert result.exit_code == 4
    error = json.loads(result.stderr)
    assert error["error"] == "version_conflict" and error["current_version"] == 2
    assert run.ok("memory", "get", "-p", pid, "app:config", "x")["value"] == 2


def test_list_delete_purge_and_sweep(run: Cli, pid: str) -> None:
    for namespace, key in [("user", "a"), ("user:prefs", "b"), ("username", "c")]:
        run.ok("memory", "put", "-p", pid, namespace, key, '"v"')
    assert [m["key"] for m in run.ok("memory", "list", "-p", pid, "user")] == ["a", "b"]
    page = run.ok("memory", "list", "-p", pid, "--limit", "1", "--after", "user", "a")
    assert [m["key"] for m in page] == ["b"]
    deleted = run.ok("memory", "delete", "-p", pid, "user", "a", "--expect-version", "1")
    assert deleted["version"] == 2 and deleted["deleted_at"]
    assert [m["key"] for m in run.ok("memory", "list", "-p", pid)] == ["b", "c"]
    assert len(run.ok("memory", "list", "-p", pid, "--deleted")) == 3
    run.fails(3, "memory", "get", "-p", pid, "user", "a")
    declined = run("memory", "purge", "-p", pid, "user", "a", input="n\n")
    assert declined.exit_code == 1
    assert len(run.ok("memory", "history", "-p", pid, "user", "a")) == 2
    purged = run.ok("memory", "purge", "-p", pid, "user", "a", "--yes")
    assert purged["purged_versions"] == 2
    run.fails(3, "memory", "history", "-p", pid, "user", "a")
    run.ok("memory", "put", "-p", pid, "session", "s", "1", "--ttl", "1")
    time.sleep(1.2)
    assert run.ok("memory", "sweep", "-p", pid) == {"removed": 1}
    assert run.ok("memory", "sweep") == {"removed": 0}
    table = run("memory", "list", "-p", pid)
    assert table.exit_code == 0 and "username" in table.stdout


def test_refusals_exit_with_their_codes_and_change_nothing(run: Cli, pid: str) -> None:
    run.fails(2, "memory", "put", "-p", pid, "user prefs", "k", "1")
    run.fails(2, "memory", "put", "-p", pid, "user", "k", "{not json")
    run.fails(2, "memory", "put", "-p", pid, "user", "k", "1", "--ttl", "0")
    run.fails(2, "memory", "put", "-p", pid, "user", "k", "1", "--type", "dream")
    run.fails(3, "memory", "put", "-p", "proj_nope", "user", "k", "1")
    run.fails(3, "memory", "get", "-p", pid, "user", "k")
    run.fails(3, "memory", "delete", "-p", pid, "user", "k")
    run.fails(3, "memory", "purge", "-p", pid, "user", "k", "--yes")
    other = run.ok("project", "create", "Other")["project_id"]
    run.ok("memory", "put", "-p", other, "user", "k", "1")
    run.fails(3, "memory", "get", "-p", pid, "user", "k")
    assert run.ok("memory", "list", "-p", pid, "--deleted", "--expired") == []
