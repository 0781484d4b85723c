"""The command line documents itself: every --help works, docs/cli.md is current and its exit
code table and environment variables match the code; short commands stay light to import."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import ctxdb
from ctxdb import errors
from ctxdb.cli.main import COMMANDS, cli
from ctxdb.cli.output import EXIT_CODE_MEANINGS, EXIT_CODES, EXIT_UNHEALTHY
from ctxdb.cli.reference import render_reference, walk
from ctxdb.settings import SETTINGS_HELP

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def command_paths() -> list[list[str]]:
    root = cli.make_context("ctxdb", [], resilient_parsing=True)
    return [ctx.command_path.split()[1:] for ctx in walk(cli, root)]


def test_the_command_tree_covers_every_use_case() -> None:
    paths = {" ".join(p) for p in command_paths()}
    expected = {
        "init", "db status", "db upgrade", "db downgrade", "project create", "project get",
        "project list", "project update", "project archive", "phase create", "phase list",
        "phase start", "phase complete", "phase block", "phase current", "instance launch",
        "instance get", "instance list", "instance heartbeat", "instance end", "instance reap",
        "context", "context store", "context get", "context list", "context page",
        "context pack", "context supersede", "context delete", "tokens update", "tokens check",
        "tokens all", "tokens clear", "tokens auto", "summary", "audit", "demo",
    }
    assert expected <= paths
    assert set(COMMANDS) == {p.split()[0] for p in paths if p}


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "ctxdb")
def test_every_command_has_help(path: list[str]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], env={"CTXDB_CONTEXT_WINDOW": "lots"})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: ctxdb {' '.join(path)}".rstrip())
    summary = result.stdout.split("\n\n")[1].strip()
    assert len(summary) >= 10, f"{path} needs a real description"


def test_root_help_names_every_environment_variable() -> None:
    text = CliRunner().invoke(cli, ["--help"]).stdout
    for setting in SETTINGS_HELP:
        assert setting.env_var in text


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"ctxdb, version {ctxdb.__version__}"


def test_docs_are_generated_from_the_current_help() -> None:
    assert DOC.read_text(encoding="utf-8") == render_reference(), \
        "docs/cli.md is out of date: run python scripts/gen_cli_docs.py"


def test_documented_exit_codes_match_the_code() -> None:
    table = re.findall(r"^\| (\d+) \| (.+) \|$", DOC.read_text(encoding="utf-8"), re.MULTILINE)
    documented = {int(code): meaning for code, meaning in table}
    assert documented == dict(EXIT_CODE_MEANINGS)
    assert set(EXIT_CODES.values()) | {0, EXIT_UNHEALTHY} == set(documented) == set(range(9))


def all_error_classes() -> list[type[errors.CtxdbError]]:
    found: list[type[errors.CtxdbError]] = []
    pending: list[type[errors.CtxdbError]] = [errors.CtxdbError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_error_category_has_an_exit_code() -> None:
    assert {cls.category for cls in all_error_classes()} <= set(EXIT_CODES)
    assert EXIT_CODES[errors.ProjectNotFoundError.category] == 3
    assert EXIT_CODES[errors.InvalidPriorityError.category] == 2
    assert EXIT_CODES[errors.InvalidTransitionError.category] == 4
    assert EXIT_CODES[errors.BudgetExceededError.category] == 5
    assert EXIT_CODES[errors.SchemaOutdatedError.category] == 6


def test_a_json_listing_imports_neither_rich_nor_psycopg(tmp_path: Path) -> None:
    # A later `ctxdb hook` runs on every agent event: the JSON path must stay light.
    probe = (
        "import sys\n"
        "from ctxdb.cli.main import cli\n"
        f"code = cli.main(['--url', {str(tmp_path / 'x.db')!r}, 'project', 'list', '--json'],"
        " standalone_mode=False)\n"
        "print(code, sorted(m for m in ('rich', 'psycopg') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env={"HOME": str(tmp_path)}, check=True, timeout=60)
    assert result.stdout.splitlines()[-1] == "0 []"
