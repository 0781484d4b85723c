"""``ctxdb phase …``: the numbered lifecycle stages of a project."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option, project_option
from ctxdb.cli.output import print_record, print_table, say, show

PHASE_COLUMNS = ("phase_id", "phase_number", "name", "status", "story_points",
                 "blocked_reason", "started_at", "completed_at")


def show_phase(phase: dict[str, Any], as_json: bool) -> None:
    show(phase, as_json, lambda: print_record(phase, title=f"phase {phase['phase_id']}"))


@click.group("phase")
def phase_group() -> None:
    """Manage phases: pending → active → completed (or blocked).

    The current phase (the active one with the highest number) ranks context first when a
    pack is built.
    """


@phase_group.command("create")
@project_option
@click.argument("number", type=int)
@click.argument("name")
@click.option("--story-points", type=int, default=0, show_default=True)
@click.option("--description", "-d", default="")
@json_option
@pass_app
def create_command(app: Application, project_id: str, number: int, name: str,
                   story_points: int, description: str, as_json: bool) -> None:
    """Add phase NUMBER called NAME to a project (it starts as pending).

    \b
    Example:
      ctxdb phase create --project proj_… 1 "Design" --story-points 20
    """
    phase = app.db().phases.create(project_id, number, name, story_points, description)
    show_phase(phase, as_json)


@phase_group.command("list")
@project_option
@json_option
@pass_app
def list_command(app: Application, project_id: str, as_json: bool) -> None:
    """List a project's phases in order."""
    phases = app.db().phases.list(project_id)
    show(phases, as_json, lambda: print_table(phases, PHASE_COLUMNS, title="phases",
                                             empty="this project has no phases"))


@phase_group.command("start")
@click.argument("phase_id", type=int)
@json_option
@pass_app
def start_command(app: Application, phase_id: int, as_json: bool) -> None:
    """Start a pending or blocked phase."""
    show_phase(app.db().phases.start(phase_id), as_json)


@phase_group.command("complete")
@click.argument("phase_id", type=int)
@json_option
@pass_app
def complete_command(app: Application, phase_id: int, as_json: bool) -> None:
    """Complete an active or blocked phase."""
    show_phase(app.db().phases.complete(phase_id), as_json)


@phase_group.command("block")
@click.argument("phase_id", type=int)
@click.option("--reason", default="", help="Why the phase is blocked.")
@json_option
@pass_app
def block_command(app: Application, phase_id: int, reason: str, as_json: bool) -> None:
    """Mark a pending or active phase blocked."""
    show_phase(app.db().phases.block(phase_id, reason), as_json)


@phase_group.command("current")
@project_option
@json_option
@pass_app
def current_command(app: Application, project_id: str, as_json: bool) -> None:
    """Show the project's current phase (JSON null when none is active)."""
    phase = app.db().phases.current(project_id)
    if phase is None:
        show(None, as_json, lambda: say("no phase is active in this project"))
    else:
        show_phase(phase, as_json)
