"""``ctxdb task …``: a project's work queue, leased to agent instances."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import JsonText, ParamBase, json_option, project_option
from ctxdb.cli.output import print_record, print_table, show
from ctxdb.domain.models import choices
from ctxdb.domain.vocabulary import TaskStatus


class TaskPriority(ParamBase):
    """A number, or a context priority's name (the service maps and checks it)."""

    name = "PRIORITY"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int | str:
        text = str(value).strip()
        return int(text) if text.lstrip("+-").isdigit() else text


TASK_COLUMNS = ("task_id", "title", "priority", "status", "lease_owner", "lease_expires_at",
                "epoch", "attempts")


def show_task(task: dict[str, Any] | None, as_json: bool) -> None:
    if task is None:
        show(None, as_json, lambda: click.echo("no task to claim"))
        return
    show(task, as_json, lambda: print_record(task, title=f"task {task['task_id']}"))


def scope_option(func: Any) -> Any:
    """An optional ``--project``: the task must belong to it (ids never cross projects)."""
    return click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
                        help="Refuse the task unless it belongs to this project.")(func)


def epoch_argument(func: Any) -> Any:
    return click.argument("epoch", type=int)(func)


@click.group("task")
def task_group() -> None:
    """Tasks: a project's work queue, claimed by agent instances under leases.

    `claim` gives an instance the highest-priority ready task with a lease and an EPOCH;
    start, renew, complete, fail and release must name that epoch. A write with a stale
    epoch, or after the lease expired, is refused (exit code 4). A task whose lease
    expired can be claimed again.
    """


@task_group.command("create")
@project_option
@click.argument("title")
@click.option("--description", default="", help="What to do, in detail.")
@click.option("--priority", type=TaskPriority(), default="0", show_default=True,
              help="Higher runs first: a number, or CRITICAL (30), HIGH (20), MEDIUM (10), "
                   "LOW (0).")
@click.option("--parent", "parent_task_id", type=int, help="The parent task's id.")
@click.option("--depends-on", "depends_on", type=int, multiple=True, metavar="TASK_ID",
              help="A task that must be done first (repeatable).")
@json_option
@pass_app
def create_command(app: Application, project_id: str, title: str, description: str,
                   priority: int | str, parent_task_id: int | None,
                   depends_on: tuple[int, ...], as_json: bool) -> None:
    """Add a task; it is pending until the tasks it depends on are done.

    \b
    Example:
      ctxdb task create -p proj_… "Write the parser" --priority 5 --depends-on 12
      ctxdb task create -p proj_… "Fix the login outage" --priority CRITICAL
    """
    task = app.db().tasks.create(project_id, title, description=description, priority=priority,
                                 parent_task_id=parent_task_id, depends_on=depends_on)
    show_task(task, as_json)


@task_group.command("get")
@click.argument("task_id", type=int)
@scope_option
@json_option
@pass_app
def get_command(app: Application, task_id: int, project_id: str | None, as_json: bool) -> None:
    """Show one task, with the ids of the tasks it depends on."""
    show_task(app.db().tasks.get(task_id, project_id=project_id), as_json)


@task_group.command("list")
@project_option
@click.option("--status", type=click.Choice(choices(TaskStatus)), help="Only tasks in this status.")
@click.option("--owner", "lease_owner", metavar="INSTANCE_ID", help="Only tasks it holds.")
@click.option("--parent", "parent_task_id", type=int, help="Only subtasks of this task.")
@click.option("--after", type=int, default=0, metavar="TASK_ID",
              help="Start after this task (paging).")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@pass_app
def list_command(app: Application, project_id: str, status: str | None,
                 lease_owner: str | None, parent_task_id: int | None, after: int, limit: int,
                 as_json: bool) -> None:
    """List a project's tasks in id order."""
    tasks = app.db().tasks.list(project_id, status=status, lease_owner=lease_owner,
                                parent_task_id=parent_task_id, after=after, limit=limit)
    show(tasks, as_json, lambda: print_table(tasks, TASK_COLUMNS, title="tasks",
                                            empty="no tasks"))


@task_group.command("claim")
@project_option
@click.argument("instance_id")
@click.option("--lease", "lease_seconds", type=float, default=300.0, show_default=True,
              help="Seconds until the lease expires unless renewed.")
@json_option
@pass_app
def claim_command(app: Application, project_id: str, instance_id: str, lease_seconds: float,
                  as_json: bool) -> None:
    """Lease the highest-priority claimable task to INSTANCE_ID (JSON null when none).

    \b
    Example:
      ctxdb task claim -p proj_… inst_… --lease 600 --json
    """
    show_task(app.db().tasks.claim(project_id, instance_id, lease_seconds), as_json)


@task_group.command("start")
@click.argument("task_id", type=int)
@epoch_argument
@json_option
@pass_app
def start_command(app: Application, task_id: int, epoch: int, as_json: bool) -> None:
    """Mark a claimed task running."""
    show_task(app.db().tasks.start(task_id, epoch), as_json)


@task_group.command("renew")
@click.argument("task_id", type=int)
@epoch_argument
@click.option("--lease", "lease_seconds", type=float, default=300.0, show_default=True,
              help="Seconds from now until the lease expires.")
@json_option
@pass_app
def renew_command(app: Application, task_id: int, epoch: int, lease_seconds: float,
                  as_json: bool) -> None:
    """Extend the lease on a task."""
    show_task(app.db().tasks.renew(task_id, epoch, lease_seconds), as_json)


@task_group.command("complete")
@click.argument("task_id", type=int)
@epoch_argument
@click.option("--result", type=JsonText(), default=None, help="The result (any JSON value).")
@json_option
@pass_app
def complete_command(app: Application, task_id: int, epoch: int, result: Any,
                     as_json: bool) -> None:
    """Mark a task done; tasks waiting only for it become ready."""
    show_task(app.db().tasks.complete(task_id, epoch, result), as_json)


@task_group.command("fail")
@click.argument("task_id", type=int)
@epoch_argument
@click.argument("error")
@json_option
@pass_app
def fail_command(app: Application, task_id: int, epoch: int, error: str,
                 as_json: bool) -> None:
    """Mark a task failed with an ERROR message; tasks waiting for it are blocked."""
    show_task(app.db().tasks.fail(task_id, epoch, error), as_json)


@task_group.command("release")
@click.argument("task_id", type=int)
@epoch_argument
@json_option
@pass_app
def release_command(app: Application, task_id: int, epoch: int, as_json: bool) -> None:
    """Hand a task back to the queue unfinished."""
    show_task(app.db().tasks.release(task_id, epoch), as_json)


@task_group.command("cancel")
@click.argument("task_id", type=int)
@scope_option
@json_option
@pass_app
def cancel_command(app: Application, task_id: int, project_id: str | None,
                   as_json: bool) -> None:
    """Cancel an unfinished task (any lease on it becomes stale)."""
    show_task(app.db().tasks.cancel(task_id, project_id=project_id), as_json)
