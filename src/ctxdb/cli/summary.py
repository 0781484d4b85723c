"""``ctxdb summary``: one row per active project, the portfolio at a glance."""

from __future__ import annotations

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option
from ctxdb.cli.output import print_table, show

SUMMARY_COLUMNS = ("project_id", "name", "total_story_points", "completed_story_points",
                   "active_instances", "context_items", "total_tokens")


@click.command("summary")
@json_option
@pass_app
def summary_command(app: Application, as_json: bool) -> None:
    """One row per active project: story points, live instances, context items, tokens."""
    rows = app.db().projects.summary()
    show(rows, as_json, lambda: print_table(rows, SUMMARY_COLUMNS, title="project summary",
                                           empty=_no_projects(app)))


def _no_projects(app: Application) -> str:
    """An empty summary names the database, so that a mistyped path is seen at once."""
    from rich.markup import escape

    from ctxdb.service.operations.schema import location

    return f"no active projects in {escape(location(app.settings))}"
