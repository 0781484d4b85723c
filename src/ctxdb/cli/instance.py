"""``ctxdb instance …``: agent instances, their heartbeats, ends and crashes."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import JSON_OBJECT, json_option, project_option
from ctxdb.cli.output import print_record, print_table, say, show
from ctxdb.domain.models import InstanceStatus, choices

INSTANCE_COLUMNS = ("instance_id", "project_id", "client", "status", "current_token_usage",
                    "context_window", "generation", "last_heartbeat")


def show_instance(instance: dict[str, Any], as_json: bool) -> None:
    show(instance, as_json,
         lambda: print_record(instance, title=f"instance {instance['instance_id']}"))


@click.group("instance")
def instance_group() -> None:
    """Manage agent instances: launch, heartbeat, end, and reap the ones that went silent.

    An instance without a heartbeat for CTXDB_STALE_AFTER seconds is marked crashed.
    """


@instance_group.command("launch")
@project_option
@click.option("--phase", "phase_id", type=int, help="The phase the instance works on.")
@click.option("--id", "instance_id", help="Choose the id (default: inst_…); launching an "
              "existing id of the project revives that instance.")
@click.option("--client", default="cli", show_default=True,
              help="The agent client, e.g. claude-code, codex, gemini.")
@click.option("--session-id", help="The client's session id.")
@click.option("--worktree", help="The working tree the instance runs in.")
@click.option("--branch", help="The git branch it works on.")
@click.option("--model", help="The model it runs.")
@click.option("--context-window", type=int,
              help="Its context window in tokens (default: CTXDB_CONTEXT_WINDOW).")
@click.option("--metadata", type=JSON_OBJECT, help="Extra data as a JSON object.")
@json_option
@pass_app
def launch_command(app: Application, /, project_id: str, phase_id: int | None, as_json: bool,
                   **fields: Any) -> None:
    """Register a running agent instance in a project.

    \b
    Example:
      ctxdb instance launch --project proj_… --client claude-code --context-window 200000
    """
    instance = app.db().instances.launch(project_id, phase_id, actor=app.settings.actor,
                                         **fields)
    show_instance(instance, as_json)


@instance_group.command("get")
@click.argument("instance_id")
@json_option
@pass_app
def get_command(app: Application, instance_id: str, as_json: bool) -> None:
    """Show one instance: status, token usage, window, last heartbeat."""
    show_instance(app.db().instances.get(instance_id), as_json)


@instance_group.command("list")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Only this project's instances.")
@click.option("--status", help="Only instances in this status: "
              f"{', '.join(choices(InstanceStatus))}.")
@json_option
@pass_app
def list_command(app: Application, project_id: str | None, status: str | None,
                 as_json: bool) -> None:
    """List instances, oldest first; a live one without a heartbeat for CTXDB_STALE_AFTER
    seconds shows as "(stale)" (crash detection marks it crashed at its next run)."""
    instances = app.db().instances.list(project_id, status)
    # A live instance gone silent reads as stale, not as the active it still is on record.
    shown = [{**i, "status": f"{i['status']} (stale)" if i["silent"] else i["status"]}
             for i in instances]
    show(instances, as_json, lambda: print_table(shown, INSTANCE_COLUMNS, title="instances",
                                                empty="no instances match"))


@instance_group.command("heartbeat")
@click.argument("instance_id")
@click.option("--phase", "phase_id", type=int, help="Also move the instance to this phase.")
@json_option
@pass_app
def heartbeat_command(app: Application, instance_id: str, phase_id: int | None,
                      as_json: bool) -> None:
    """Record that an instance is alive (a crashed one that beats again is revived, if the
    project has room for one more live instance)."""
    show_instance(app.db().instances.heartbeat(instance_id, phase_id), as_json)


@instance_group.command("end")
@click.argument("instance_id")
@json_option
@pass_app
def end_command(app: Application, instance_id: str, as_json: bool) -> None:
    """Mark an instance completed: its session ended normally."""
    show_instance(app.db().instances.end(instance_id, actor=app.settings.actor), as_json)


@instance_group.command("reap")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Only this project's instances.")
@json_option
@pass_app
def reap_command(app: Application, project_id: str | None, as_json: bool) -> None:
    """Mark live instances without a recent heartbeat as crashed, and list them."""
    crashed = app.db().instances.reap_stale(project_id)

    def human() -> None:
        say(f"{len(crashed)} instance(s) marked crashed")
        if crashed:
            print_table(crashed, ("instance_id", "project_id", "last_heartbeat"))

    show(crashed, as_json, human)
