"""``ctxdb demo``: runs on a fresh machine, on both backends, any number of times."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import ctxdb
from ctxdb.cli.demo import DEMO_MARK, PROJECTS
from ctxdb.cli.main import cli
from ctxdb.settings import CONFIG_ENV, SETTINGS_HELP, Settings

CTXDB = Path(sys.executable).parent / "ctxdb"
CLEAN_ENV: dict[str, str | None] = {s.env_var: None for s in SETTINGS_HELP} | {CONFIG_ENV: None}


def demo_projects(url: str) -> tuple[int, int]:
    """(active, archived) demo projects, and check no demo instance is left running."""
    with ctxdb.open(Settings(url=url)) as db:
        projects = [p for p in db.projects.list(include_archived=True)
                    if p["metadata"].get(DEMO_MARK) is True]
        for project in projects:
            live = db.instances.list(project["project_id"], "active")
            assert live == [], f"the demo left instances running in {project['name']}"
    active = sum(p["status"] == "active" for p in projects)
    return active, len(projects) - active


def test_demo_runs_again_and_again_within_the_project_limit(
    settings: Settings, tmp_path: Path
) -> None:
    env = {**CLEAN_ENV, "HOME": str(tmp_path), "CTXDB_MAX_PROJECTS": str(len(PROJECTS))}
    for run in range(1, 3):
        result = CliRunner().invoke(cli, ["--traceback", "--url", settings.url, "demo"], env=env)
        assert result.exit_code == 0, result.output
        assert demo_projects(settings.url) == (len(PROJECTS), len(PROJECTS) * (run - 1))
    for expected in ("14/14", "handoff saved", "reloaded", "omitted", "project summary",
                     "ended 8 instances", "on your database",
                     # what a new session is given, search, tasks, messages, approvals
                     "│ # ctxdb context: project", "│ # Where we left off",
                     "best matches for 'stripe'", "Retry declined cards once", "inbox of",
                     "checkout freeze at 17:00", "acknowledged 2 message(s)",
                     "deploy checkout to staging", "approved"):
        assert expected in result.stdout, expected


def test_the_installed_command_runs_the_demo(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTXDB_")}
    env.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME="", XDG_CONFIG_HOME="")
    url = tmp_path / "demo.db"
    for _ in range(2):
        result = subprocess.run([str(CTXDB), "--url", str(url), "demo"], env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "done." in result.stdout and result.stderr == ""
    assert demo_projects(str(url)) == (len(PROJECTS), len(PROJECTS))


def test_the_demo_never_writes_into_the_default_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --database or --url it runs on a new file in a temporary folder, and says
    where; the user's own database is not even created."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    home = tmp_path / "home"
    env = {**CLEAN_ENV, "HOME": str(home), "XDG_DATA_HOME": "", "XDG_CONFIG_HOME": ""}
    result = CliRunner().invoke(cli, ["--traceback", "demo"], env=env)
    assert result.exit_code == 0, result.output
    [throwaway] = (tmp_path / "tmp").glob("ctxdb-demo-*/ctxdb.db")
    assert "on a throwaway database" in result.stdout
    assert f"ctxdb --url {throwaway} summary" in " ".join(result.stdout.split())
    assert demo_projects(str(throwaway)) == (len(PROJECTS), 0)
    assert not (home / ".local" / "share" / "ctxdb").exists()


def test_the_demo_runs_on_the_database_it_is_given(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.db"
    result = CliRunner().invoke(cli, ["demo", "--database", str(chosen)],
                                env={**CLEAN_ENV, "HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert demo_projects(str(chosen)) == (len(PROJECTS), 0)
