"""``ctxdb project …``: create, inspect, update and archive projects."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import JSON_OBJECT, json_option
from ctxdb.cli.output import print_record, print_table, show

PROJECT_COLUMNS = ("project_id", "name", "status", "total_story_points",
                   "completed_story_points", "created_at")


def show_project(project: dict[str, Any], as_json: bool) -> None:
    show(project, as_json, lambda: print_record(project, title=f"project {project['name']}"))


@click.group("project")
def project_group() -> None:
    """Manage projects: the isolation boundary of phases, instances and context."""


@project_group.command("create")
@click.argument("name")
@click.option("--description", "-d", default="", help="What the project is about.")
@click.option("--story-points", type=int, default=0, show_default=True,
              help="Total story points planned.")
@click.option("--metadata", type=JSON_OBJECT, help="Extra data as a JSON object.")
@click.option("--repo-key", help="A key that identifies the project's repository.")
@json_option
@pass_app
def create_command(app: Application, name: str, description: str, story_points: int,
                   metadata: dict[str, Any] | None, repo_key: str | None,
                   as_json: bool) -> None:
    """Create a project and print it (its id looks like proj_YYYYMMDD_HHMMSS_<hex>).

    \b
    Example:
      ctxdb project create Shop --description "e-commerce rewrite" --story-points 300
    """
    project = app.db().projects.create(name, description, story_points, metadata, repo_key)
    show_project(project, as_json)


@project_group.command("get")
@click.argument("project_id")
@json_option
@pass_app
def get_command(app: Application, project_id: str, as_json: bool) -> None:
    """Show one project: status, story points, metadata, timestamps."""
    show_project(app.db().projects.get(project_id), as_json)


@project_group.command("list")
@click.option("--all", "include_archived", is_flag=True, help="Include archived projects.")
@json_option
@pass_app
def list_command(app: Application, include_archived: bool, as_json: bool) -> None:
    """List active projects (with --all, archived ones too)."""
    projects = app.db().projects.list(include_archived)
    show(projects, as_json, lambda: print_table(projects, PROJECT_COLUMNS, title="projects",
                                               empty="no projects yet"))


@project_group.command("update")
@click.argument("project_id")
@click.option("--name", help="New name.")
@click.option("--description", "-d", help="New description.")
@click.option("--story-points", type=int, help="New total of story points.")
@click.option("--completed-points", type=int, help="Story points completed so far.")
@click.option("--metadata", type=JSON_OBJECT, help="Replace the metadata (a JSON object).")
@json_option
@pass_app
def update_command(app: Application, project_id: str, name: str | None,
                   description: str | None, story_points: int | None,
                   completed_points: int | None, metadata: dict[str, Any] | None,
                   as_json: bool) -> None:
    """Change a project's name, description, story points or metadata.

    \b
    Example:
      ctxdb project update proj_… --completed-points 40
    """
    project = app.db().projects.update(
        project_id, name=name, description=description, total_story_points=story_points,
        completed_story_points=completed_points, metadata=metadata)
    show_project(project, as_json)


@project_group.command("archive")
@click.argument("project_id")
@json_option
@pass_app
def archive_command(app: Application, project_id: str, as_json: bool) -> None:
    """Archive a project: its data is kept, it leaves listings and the project limit."""
    show_project(app.db().projects.archive(project_id), as_json)
