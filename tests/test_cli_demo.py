"""``ctxdb demo``: runs on a fresh machine, on both backends, any number of times."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    for expected in ("9/9", "handoff saved", "reloaded", "omitted", "project summary",
                     "ended 8 instances"):
        assert expected in result.stdout


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


def test_the_demo_defaults_to_the_data_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTXDB_")}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME="", XDG_CONFIG_HOME="")
    result = subprocess.run([str(CTXDB), "demo"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    default = tmp_path / ".local" / "share" / "ctxdb" / "ctxdb.db"
    assert str(default) in result.stdout
    assert demo_projects(str(default)) == (len(PROJECTS), 0)
