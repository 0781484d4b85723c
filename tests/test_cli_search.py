"""``ctxdb search`` on both backends: filters, JSON, the human table, exit codes."""

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
def pid(run: Cli) -> str:
    project_id: str = run.ok("project", "create", "Search")["project_id"]
    run.ok("context", "store", "--project", project_id, '{"decision": "payments via Stripe"}',
           "--priority", "CRITICAL", "--type", "decision")
    run.ok("context", "store", "--project", project_id, "stripe [bold]webhooks[/bold] retry",
           "--text", "--priority", "LOW", "--type", "note")
    run.ok("memory", "put", "-p", project_id, "billing:psp", "provider", '"stripe"')
    session = run.ok("session", "create", "-p", project_id, "chat", "ana")
    run.ok("session", "append", session["session_id"], "user", '"is stripe down?"')
    return project_id


def test_search_finds_and_filters_every_kind(run: Cli, pid: str) -> None:
    hits = run.ok("search", "-p", pid, "stripe")
    assert sorted(hit["kind"] for hit in hits) == ["context", "context", "event", "memory"]
    assert set(hits[0]) >= {"kind", "id", "score", "time", "type", "snippet"}
    assert [h["type"] for h in run.ok("search", "-p", pid, "stripe", "--kind", "context",
                                      "--priority", "low")] == ["note"]
    assert [h["kind"] for h in run.ok("search", "-p", pid, "stripe", "--kind", "memory",
                                      "--kind", "event")] != []
    assert [h["key"] for h in run.ok("search", "-p", pid, "stripe", "--namespace",
                                     "billing")] == ["provider"]
    assert [h["type"] for h in run.ok("search", "-p", pid, "stripe", "--type", "user")] == [
        "user"]
    assert run.ok("search", "-p", pid, "stripe", "--since", "2999-01-01") == []
    assert len(run.ok("search", "-p", pid, "stripe", "--until", "2999-01-01",
                      "--limit", "2")) == 2
    both = run.ok("search", "-p", pid, "payments", "stripe")  # the words of several arguments
    assert [hit["type"] for hit in both if hit["match"] == "all"] == ["decision"]
    assert both[0]["type"] == "decision"  # those with some of the words come after
    assert run.ok("search", "-p", pid, '"via stripe"')[0]["snippet"].endswith(
        "**via** **Stripe**")


def test_the_table_marks_words_and_escapes_the_rest(run: Cli, pid: str) -> None:
    result = run("search", "-p", pid, "webhooks", COLUMNS="200")
    assert result.exit_code == 0, result.output
    assert "1 best matches for 'webhooks'" in result.stdout
    assert "stripe [bold]webhooks[/bold] retry" in result.stdout  # the item's own text
    assert "item " in result.stdout and "LOW" in result.stdout
    nothing = run("search", "-p", pid, "absent")
    assert nothing.exit_code == 0 and "nothing matches 'absent'" in nothing.stdout


def test_bad_searches_exit_2_and_unknown_projects_3(run: Cli, pid: str) -> None:
    assert "has no words to search for" in run.fails(2, "search", "-p", pid, "?!")
    assert "only excludes words" in run.fails(2, "search", "-p", pid, "--", "-stripe")
    bad_raw = run.fails(2, "search", "-p", pid, "stripe", "AND", "--raw")
    assert "cannot parse the raw query" in bad_raw
    assert "since must be" in run.fails(2, "search", "-p", pid, "x", "--since", "soon")
    result = run("search", "-p", pid, "?!", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stderr)["error"] == "invalid_search_query"
    assert "proj_void" in run.fails(3, "search", "-p", "proj_void", "stripe")
