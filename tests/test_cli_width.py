"""Every listing is readable at 80 columns (issue 15, finding 6): no line runs past the
terminal, no column gets narrower than its header, and ids and times are never folded.

Each listing command runs against a database holding one of everything, with ``COLUMNS=80``
as a terminal of that width would set it; wider terminals keep the table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest
from click.testing import CliRunner

from ctxdb.cli.approval import GATE_COLUMNS
from ctxdb.cli.audit import AUDIT_COLUMNS
from ctxdb.cli.command import RUN_COLUMNS
from ctxdb.cli.context import ITEM_COLUMNS
from ctxdb.cli.instance import INSTANCE_COLUMNS
from ctxdb.cli.memory import MEMORY_COLUMNS
from ctxdb.cli.message import INBOX_COLUMNS
from ctxdb.cli.phase import PHASE_COLUMNS
from ctxdb.cli.project import PROJECT_COLUMNS
from ctxdb.cli.root import cli
from ctxdb.cli.session import EVENT_COLUMNS, SESSION_COLUMNS
from ctxdb.cli.summary import SUMMARY_COLUMNS
from ctxdb.cli.task import TASK_COLUMNS
from ctxdb.cli.token import TOKEN_COLUMNS
from ctxdb.cli.tokens import USAGE_COLUMNS
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # rendering, not storage


@pytest.fixture
def filled(db: Ctxdb) -> dict[str, str]:
    project = db.projects.create("a project with a rather long name", "described at length",
                                 1300)["project_id"]
    db.phases.create(project, 1, "planning the checkout flow", story_points=300)
    instance = db.instances.launch(project, client="claude-code")["instance_id"]
    db.tokens.update_usage(instance, 123_456)
    db.context.store(project, {"decision": "payments are retried three times with backoff"},
                     priority="HIGH")
    db.memories.put(project, "decisions", "payments", {"retries": 3})
    db.tasks.create(project, "verify webhook signatures with the signing secret")
    db.messages.send(project, "instance", instance, {"text": "rebased"}, subject="heads up")
    db.approvals.request(project, "deploy", {"env": "prod"}, title="ship it")
    session = db.conversations.create(project, "shop", "user-1", instance_id=instance)
    db.conversations.append(session["session_id"], "user", {"text": "hello there"})
    db.commands.record(project, "pytest", ["-q", "tests"], exit_code=0)
    db.access_tokens.create(project, "write", name="ci runner")
    return {"project": project, "instance": instance, "session": session["session_id"]}


def listings(ids: dict[str, str]) -> list[tuple[list[str], Sequence[str]]]:
    project, instance = ids["project"], ids["instance"]
    return [
        (["project", "list"], PROJECT_COLUMNS),
        (["phase", "list", "-p", project], PHASE_COLUMNS),
        (["instance", "list", "-p", project], INSTANCE_COLUMNS),
        (["tokens", "all"], USAGE_COLUMNS),
        (["context", "list", "-p", project], ITEM_COLUMNS),
        (["memory", "list", "-p", project], MEMORY_COLUMNS),
        (["task", "list", "-p", project], TASK_COLUMNS),
        (["message", "inbox", instance], INBOX_COLUMNS),
        (["approval", "list", "-p", project], GATE_COLUMNS),
        (["session", "list", "-p", project], SESSION_COLUMNS),
        (["session", "events", ids["session"]], EVENT_COLUMNS),
        (["command", "list", "-p", project], RUN_COLUMNS),
        (["token", "list"], TOKEN_COLUMNS),
        (["audit", "-p", project], AUDIT_COLUMNS),
        (["summary"], SUMMARY_COLUMNS),
    ]


def run(settings: Settings, args: list[str], width: int) -> str:
    result = CliRunner().invoke(cli, ["--url", str(settings.sqlite_path), *args],
                                env={"COLUMNS": str(width)})
    assert result.exit_code == 0, (args, result.output)
    return result.output


def whole_word(word: str, text: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", text) is not None


def test_every_listing_fits_80_columns(settings: Settings, filled: dict[str, str]) -> None:
    for args, columns in listings(filled):
        output = run(settings, args, 80)
        too_long = [line for line in output.splitlines() if len(line) > 80]
        assert not too_long, (args, too_long)
        folded = [c for c in columns if not whole_word(c, output)]
        assert not folded, f"{args}: headers cut: {folded}\n{output}"
        for value in (filled["project"], filled["instance"]):
            if value in output.replace("\n", ""):
                assert value in output, f"{args}: {value} folded over lines\n{output}"


def test_a_wide_terminal_keeps_the_table(settings: Settings, filled: dict[str, str]) -> None:
    output = run(settings, ["instance", "list", "-p", filled["project"]], 200)
    header = next(line for line in output.splitlines() if "instance_id" in line)
    assert all(column in header for column in INSTANCE_COLUMNS)


def test_a_narrow_terminal_prints_one_block_per_row(settings: Settings,
                                                    filled: dict[str, Any]) -> None:
    output = run(settings, ["summary"], 80)
    lines = output.splitlines()
    assert any(line.strip().startswith("completed_story_points") for line in lines)
    assert any(filled["project"] in line and "project_id" in line for line in lines)
