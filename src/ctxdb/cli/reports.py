"""``ctxdb summary`` and ``ctxdb audit``: read-only reports."""

from __future__ import annotations

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option
from ctxdb.cli.output import print_table, show

SUMMARY_COLUMNS = ("project_id", "name", "total_story_points", "completed_story_points",
                   "active_instances", "total_snapshots", "total_tokens")
AUDIT_COLUMNS = ("audit_id", "occurred_at", "actor", "action", "entity_type", "entity_id",
                 "details")


@click.command("summary")
@json_option
@pass_app
def summary_command(app: Application, as_json: bool) -> None:
    """One row per active project: story points, live instances, context items, tokens."""
    rows = app.db().projects.summary()
    show(rows, as_json, lambda: print_table(rows, SUMMARY_COLUMNS, title="project summary",
                                           empty="no active projects"))


@click.command("audit")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Only entries of this project.")
@click.option("--entity", "entity_id", metavar="ID",
              help="Only entries about this entity (a project, instance, phase or item id).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True,
              help="How many entries, newest first.")
@json_option
@pass_app
def audit_command(app: Application, project_id: str | None, entity_id: str | None,
                  limit: int, as_json: bool) -> None:
    """Recent audit entries, newest first: who changed what, and when."""
    rows = app.db().audit_log(project_id, entity_id, limit)
    show(rows, as_json, lambda: print_table(rows, AUDIT_COLUMNS, title="audit log",
                                           empty="no audit entries"))
