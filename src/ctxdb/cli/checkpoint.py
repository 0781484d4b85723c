"""``ctxdb checkpoint …``: snapshots of an agent instance's state, to resume from."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option, project_option, read_input_text
from ctxdb.cli.output import print_record, print_table, show
from ctxdb.domain.validation import load_json

CHECKPOINT_COLUMNS = ("checkpoint_id", "instance_id", "label", "generation", "phase_id",
                      "created_at", "state")


def show_checkpoint(checkpoint: dict[str, Any] | None, as_json: bool) -> None:
    if checkpoint is None:
        show(None, as_json, lambda: click.echo("no checkpoint"))
        return
    show(checkpoint, as_json, lambda: print_record(
        checkpoint, title=f"checkpoint {checkpoint['checkpoint_id']}"))


def read_state(state: str | None, file: str | None) -> Any:
    """The state: the argument, a file or stdin, as JSON."""
    if state is not None and file is not None:
        raise click.UsageError("give the state either as an argument or with --file, not both")
    if state is None:
        if file is None and sys.stdin.isatty():
            raise click.UsageError("no state: give it as an argument, with --file, or on stdin")
        state = read_input_text("-" if file is None else file).strip()
    try:
        return load_json(state, "the state")
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"the state is not valid JSON ({exc})") from None


@click.group("checkpoint")
def checkpoint_group() -> None:
    """Checkpoints: snapshots of an agent instance's state (any JSON) to resume from.

    Each save is a new checkpoint that keeps the instance's phase and generation; `latest`
    finds the newest one (of an instance, of a label, or of the project).
    """


@checkpoint_group.command("save")
@click.argument("instance_id")
@click.argument("state", required=False)
@click.option("--file", "-f", "file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Read the state from a file ('-' for stdin).")
@click.option("--label", default="", help="A name to find it by, e.g. before-migration.")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Refuse an instance of another project.")
@click.option("--key", "idempotency_key", metavar="KEY",
              help="Idempotency key: the same save again with it returns the same "
                   "checkpoint; another state or label with it is refused.")
@json_option
@pass_app
def save_command(app: Application, instance_id: str, state: str | None, file: str | None,
                 label: str, project_id: str | None, idempotency_key: str | None,
                 as_json: bool) -> None:
    """Save STATE (JSON: an argument, --file or stdin) as INSTANCE_ID's newest checkpoint.

    \b
    Example:
      ctxdb checkpoint save inst_… '{"step": 4, "todo": ["tests"]}' --label step-4
    """
    checkpoint = app.db().checkpoints.save(instance_id, read_state(state, file), label=label,
                                           project_id=project_id,
                                           idempotency_key=idempotency_key)
    show_checkpoint(checkpoint, as_json)


@checkpoint_group.command("latest")
@project_option
@click.option("--instance", "instance_id", metavar="INSTANCE_ID",
              help="The newest of this instance.")
@click.option("--label", help="The newest with this label.")
@json_option
@pass_app
def latest_command(app: Application, project_id: str, instance_id: str | None,
                   label: str | None, as_json: bool) -> None:
    """Show the newest checkpoint (JSON null when there is none)."""
    show_checkpoint(app.db().checkpoints.latest(project_id, instance_id=instance_id,
                                                label=label), as_json)


@checkpoint_group.command("show")
@click.argument("checkpoint_id", type=int)
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Refuse the checkpoint unless it belongs to this project.")
@json_option
@pass_app
def show_command(app: Application, checkpoint_id: int, project_id: str | None,
                 as_json: bool) -> None:
    """Show one checkpoint with its state."""
    show_checkpoint(app.db().checkpoints.get(checkpoint_id, project_id=project_id), as_json)


@checkpoint_group.command("list")
@project_option
@click.option("--instance", "instance_id", metavar="INSTANCE_ID",
              help="Only this instance's checkpoints.")
@click.option("--label", help="Only checkpoints with this label.")
@click.option("--after", type=int, default=0, metavar="CHECKPOINT_ID",
              help="Start after this checkpoint (paging).")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@pass_app
def list_command(app: Application, project_id: str, instance_id: str | None,
                 label: str | None, after: int, limit: int, as_json: bool) -> None:
    """List a project's checkpoints, oldest first."""
    checkpoints = app.db().checkpoints.list(project_id, instance_id=instance_id, label=label,
                                            after=after, limit=limit)
    show(checkpoints, as_json, lambda: print_table(checkpoints, CHECKPOINT_COLUMNS,
                                                  title="checkpoints", empty="no checkpoints"))
