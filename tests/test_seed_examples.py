"""The seed's example scripts run unchanged (only their import lines differ) on both backends.

Each script runs as its own process in an empty temporary directory, exactly as a user would
run it. On SQLite it uses its own relative path ``ultrathink_context.db``; on PostgreSQL the
test replaces that string with the test database's URL, which is the only change allowed.
Afterwards the database is checked through the service layer.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings

EXAMPLES = Path(__file__).parent / "seed_examples"
SEED_DB_PATH = "ultrathink_context.db"
PROJECT_ID = r"proj_\d{8}_\d{6}_[0-9a-f]+"
INSTANCE_ID = r"inst_\d{8}_\d{6}_[0-9a-f]+"


@dataclass
class Run:
    stdout: str
    settings: Settings

    def open(self) -> Ctxdb:
        return Ctxdb.open(self.settings)


def isolated_env(home: Path) -> dict[str, str]:
    """The caller's environment minus ctxdb settings, with HOME and XDG dirs inside tmp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTXDB_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_STATE_HOME=str(home / "state"),
        PYTHONIOENCODING="utf-8",
    )
    return env


@pytest.fixture
def run_example(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[str], Run]:
    """Run one example script in an empty directory on the test's backend."""
    home, workdir = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    workdir.mkdir()
    if backend == "postgres":
        url = str(request.getfixturevalue("settings").url)  # emptied for this test
    else:
        url = str(workdir / SEED_DB_PATH)

    def run(name: str) -> Run:
        script = (EXAMPLES / name).read_text(encoding="utf-8")
        assert f'"{SEED_DB_PATH}"' in script
        if backend == "postgres":
            script = script.replace(f'"{SEED_DB_PATH}"', f'"{url}"')
        (workdir / name).write_text(script, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, name], cwd=workdir, env=isolated_env(home),
            capture_output=True, text=True, encoding="utf-8", timeout=120,
        )
        assert done.returncode == 0, done.stderr
        if backend == "sqlite":
            assert (workdir / SEED_DB_PATH).is_file()
        assert not (home / "data").exists(), "the example touched the default data dir"
        env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
        return Run(done.stdout, load_settings(env=env, url=url))

    return run


def project_named(db: Ctxdb, name: str) -> dict[str, Any]:
    matches = [p for p in db.projects.list() if p["name"] == name]
    assert len(matches) == 1
    return matches[0]


def test_example_1_simple_project(run_example: Callable[[str], Run]) -> None:
    run = run_example("example_1_simple.py")
    assert run.stdout.splitlines() == [
        "Project: Simple Project", "Instances: 1", "Snapshots: 2",
    ]
    with run.open() as db:
        project = project_named(db, "Simple Project")
        assert project["total_story_points"] == 100
        assert project["description"] == "Basic example"
        context = db.context.full(project["project_id"])
        assert [i["content"] for i in context["CRITICAL"]] == [{"step": 1, "action": "Initialize"}]
        assert [i["content"] for i in context["HIGH"]] == [{"step": 2, "action": "Configure"}]
        assert [i["status"] for i in db.instances.list(project["project_id"])] == ["active"]


def test_example_2_multi_project_tokens(run_example: Callable[[str], Run]) -> None:
    run = run_example("example_2_multi_project.py")
    lines = run.stdout.splitlines()
    created = [m.group(1) for m in map(re.compile(rf"✅ Created: ({PROJECT_ID})$").match, lines)
               if m]
    launched = [m.group(1) for m in
                map(re.compile(rf"✅ Launched: ({INSTANCE_ID})$").match, lines) if m]
    cleared = [m.group(1) for m in
               map(re.compile(rf"🔄 ({INSTANCE_ID}): 180,000 → 0 tokens$").match, lines) if m]
    assert len(set(created)) == 3
    assert len(set(launched)) == 6
    assert cleared == launched
    assert lines[-3:] == [
        "📊 Total instances: 6", "📊 Total tokens: 0", "📊 Average usage: 0",
    ]
    with run.open() as db:
        assert sorted(p["project_id"] for p in db.projects.list()) == sorted(created)
        for project_id in created:
            assert db.projects.get(project_id)["total_story_points"] == 500
            assert len(db.instances.list(project_id, status="active")) == 2
        for instance_id in launched:
            instance = db.instances.get(instance_id)
            assert (instance["current_token_usage"], instance["generation"]) == (0, 1)
            handoff = db.tokens.latest_handoff(instance_id=instance_id)
            assert handoff is not None and handoff["tokens_before"] == 180_000


def test_example_3_phases(run_example: Callable[[str], Run]) -> None:
    run = run_example("example_3_phases.py")
    lines = run.stdout.splitlines()
    assert lines[:5] == [
        "✅ Phase 1: Foundation (200 SP)",
        "✅ Phase 2: Core Features (300 SP)",
        "✅ Phase 3: Advanced Features (400 SP)",
        "✅ Phase 4: Optimization (200 SP)",
        "✅ Phase 5: Deployment (200 SP)",
    ]
    assert re.fullmatch(rf"✅ Instance launched for Phase 1: {INSTANCE_ID}", lines[6])
    assert re.fullmatch(rf"✅ Instance launched for Phase 2: {INSTANCE_ID}", lines[7])
    with run.open() as db:
        project = project_named(db, "Phased Project")
        assert project["total_story_points"] == 1300
        phases = db.phases.list(project["project_id"])
        assert [(p["phase_number"], p["name"], p["story_points"]) for p in phases] == [
            (1, "Foundation", 200), (2, "Core Features", 300), (3, "Advanced Features", 400),
            (4, "Optimization", 200), (5, "Deployment", 200),
        ]
        first, second = phases[0]["phase_id"], phases[1]["phase_id"]
        instances = db.instances.list(project["project_id"])
        assert sorted(i["phase_id"] for i in instances) == sorted([first, second])
        context = db.context.full(project["project_id"])
        assert [(i["phase_id"], i["content"]["task"]) for i in context["CRITICAL"]] == [
            (first, "Setup database schema")]
        assert [(i["phase_id"], i["content"]["task"]) for i in context["HIGH"]] == [
            (first, "Implement basic CRUD")]


INTEGRATION_SHAPE = [
    "=" * 80,
    "DATABASE-FIRST CONTEXT MANAGEMENT - INTEGRATION EXAMPLE",
    "=" * 80,
    "",
    "1. Creating a project...",
    rf"   ✅ Project created: (?P<project>{PROJECT_ID})",
    "",
    "2. Launching instances...",
    rf"   ✅ Instance 1: (?P<i1>{INSTANCE_ID})",
    rf"   ✅ Instance 2: (?P<i2>{INSTANCE_ID})",
    rf"   ✅ Instance 3: (?P<i3>{INSTANCE_ID})",
    "",
    r"   Total: 3 instances for project (?P=project)",
    "",
    "3. Storing context...",
    r"   ✅ Context snapshot stored: ID (?P<snapshot>\d+)",
    "",
    "4. Checking token usage...",
    r"   Instance (?P=i1): 0 tokens \(0\.0%\)",
    r"   Instance (?P=i2): 0 tokens \(0\.0%\)",
    r"   Instance (?P=i3): 0 tokens \(0\.0%\)",
    "",
    "5. Project summary:",
    "   • Example Integration Project: 3 instances, 1 snapshots",
    "",
    "=" * 80,
    "✅ INTEGRATION EXAMPLE COMPLETED SUCCESSFULLY",
    "=" * 80,
]


def test_integration_example_output_shape(run_example: Callable[[str], Run]) -> None:
    run = run_example("integration_example.py")
    pattern = "\n".join(INTEGRATION_SHAPE) + "\n"
    match = re.fullmatch(pattern, run.stdout)
    assert match, run.stdout
    with run.open() as db:
        project_id = match["project"]
        assert project_named(db, "Example Integration Project")["project_id"] == project_id
        instances = db.instances.list(project_id, status="active")
        # Launched within the same millisecond, so compare without order.
        assert sorted(i["instance_id"] for i in instances) == sorted(
            match.group("i1", "i2", "i3"))
        item = db.context.get(int(match["snapshot"]))
        assert (item["project_id"], item["priority"]) == (project_id, "CRITICAL")


def test_integration_example_names_its_own_project(
    run_example: Callable[[str], Run]
) -> None:
    """A database that already holds projects: the summary still names only the new one."""
    first = run_example("integration_example.py")
    second = run_example("integration_example.py")
    summary = [line for line in second.stdout.splitlines() if line.startswith("   • ")]
    assert summary == ["   • Example Integration Project: 3 instances, 1 snapshots"]
    with first.open() as db:
        assert len(db.projects.list()) == 2
