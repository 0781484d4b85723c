"""``ctxdb command …``: command runs — run and record one, or record its steps one by one."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option, project_option, read_input_text
from ctxdb.cli.output import print_record, print_table, show
from ctxdb.domain.models import choices
from ctxdb.domain.vocabulary import FINISHED_RUN_STATUSES, RunStatus

RUN_COLUMNS = ("run_id", "command", "arguments", "status", "exit_code", "duration_ms",
               "instance_id", "queued_at", "finished_at")
DEFAULT_MAX_OUTPUT = 65536
MARKER_ROOM = 100  # the "bytes left out" line a bounded capture adds
# Everything from the command's name on is the command's, options included (as with env(1)).
PASS_THROUGH = {"ignore_unknown_options": True, "allow_interspersed_args": False}


def show_run(run: dict[str, Any], as_json: bool) -> None:
    show(run, as_json, lambda: print_record(run, title=f"command run {run['run_id']}"))


def scope_option(func: Any) -> Any:
    """An optional ``--project``: the run must belong to it (ids never cross projects)."""
    return click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
                        help="Refuse the run unless it belongs to this project.")(func)


def creation_options(func: Any) -> Any:
    func = click.option("--key", "idempotency_key", metavar="KEY",
                        help="Idempotency key: the same command again with it returns the "
                        "same run; another command or arguments with it are refused.")(func)
    func = click.option("--cwd", metavar="DIR", help="The working directory.")(func)
    return click.option("--instance", "instance_id", metavar="INSTANCE_ID",
                        help="The agent instance that runs it (of the project).")(func)


def command_argument(func: Any) -> Any:
    return click.argument("argv", nargs=-1, required=True, metavar="-- COMMAND [ARGS]...")(func)


def read_output(output: str | None, output_file: str | None) -> str:
    if output is not None and output_file is not None:
        raise click.UsageError("give either --output or --output-file, not both")
    if output_file is None:
        return output or ""
    return read_input_text(output_file, errors="replace")


def result_options(func: Any) -> Any:
    func = click.option("--duration-ms", "duration_ms", type=int,
                        help="How long it ran (default: the database clock's time since "
                        "start).")(func)
    func = click.option("--error", metavar="TEXT", help="An error message.")(func)
    func = click.option("--output-file", metavar="PATH",
                        type=click.Path(dir_okay=False, allow_dash=True),
                        help="Read the output from a file ('-' for stdin).")(func)
    func = click.option("--output", metavar="TEXT", help="The output.")(func)
    func = click.option("--status", type=click.Choice(choices(FINISHED_RUN_STATUSES)),
                        help="The final status (default: success for exit code 0, else "
                        "failed).")(func)
    return click.option("--exit-code", "exit_code", type=int, help="The exit status.")(func)


@click.group("command")
def command_group() -> None:
    """Command runs: what an agent ran for a project, how it ended, its output and timings.

    `run -- COMMAND ARGS` runs a command, streams its output, and records it (output kept
    within --max-output). To record a run step by step: `queue`, `start`, `finish`; or
    afterwards in one step with `record`. A run moves only forward: queued → running →
    success, failed or cancelled; changing a finished run is refused (exit code 4).
    """


@command_group.command("run", context_settings=PASS_THROUGH)
@project_option
@creation_options
@click.option("--timeout", "timeout_seconds", type=float,
              help="Stop the command after this many seconds (status failed, exit 124).")
@click.option("--max-output", "max_output", type=click.IntRange(min=2),
              default=DEFAULT_MAX_OUTPUT, show_default=True,
              help="Bytes of output kept: the first and the last half.")
@command_argument
@json_option
@pass_app
def run_command(app: Application, project_id: str, instance_id: str | None, cwd: str | None,
                idempotency_key: str | None, timeout_seconds: float | None, max_output: int,
                argv: tuple[str, ...], as_json: bool) -> int:
    """Run COMMAND with ARGS and record the run; exits with the command's exit status.

    The output (stdout and stderr together) is shown as it comes, unless --json, which
    prints the recorded run instead. stdin is closed. Exit status: the command's (128+N
    when killed by signal N), 124 after --timeout, 127 when not found; ctxdb's own errors
    before the command starts keep their usual codes. With a --key that names a run
    already started, nothing is run again: that run is shown.

    \b
    Example:
      ctxdb command run -p proj_… --instance inst_… -- pytest -q tests/
    """
    from ctxdb.cli.runner import execute

    limit = app.settings.max_content_bytes - MARKER_ROOM
    if max_output > limit:
        raise click.BadParameter(f"at most {limit} (the largest output ctxdb stores)",
                                 param_hint="--max-output")
    if timeout_seconds is not None and not timeout_seconds > 0:
        raise click.BadParameter("must be more than 0", param_hint="--timeout")
    workdir = os.path.abspath(cwd or os.getcwd())
    commands = app.db().commands
    run = commands.queue(project_id, argv[0], list(argv[1:]), cwd=workdir,
                         instance_id=instance_id, idempotency_key=idempotency_key)
    if run["status"] != "queued":  # the key named a run recorded before: nothing to do
        show_run(run, as_json)
        return 0
    echo = None if as_json else sys.stdout.buffer
    outcome = execute(argv, cwd=workdir, timeout=timeout_seconds, limit=max_output,
                      echo=echo, on_start=lambda: commands.start(run["run_id"]))
    status = "cancelled" if outcome.interrupted else None
    run = commands.finish(run["run_id"], exit_code=outcome.exit_code,
                          status=status or ("failed" if outcome.error else None),
                          output=outcome.output, error=outcome.error,
                          duration_ms=outcome.duration_ms)
    if as_json:
        show_run(run, as_json)
    else:
        error = "" if run["error"] is None else f": {run['error']}"
        took = "" if run["duration_ms"] is None else f" ({run['duration_ms']} ms)"
        click.echo(f"ctxdb: command run {run['run_id']} {run['status']}{error}{took}",
                   err=True)
    return outcome.status_code


@command_group.command("queue", context_settings=PASS_THROUGH)
@project_option
@creation_options
@command_argument
@json_option
@pass_app
def queue_command(app: Application, project_id: str, instance_id: str | None,
                  cwd: str | None, idempotency_key: str | None, argv: tuple[str, ...],
                  as_json: bool) -> None:
    """Record a run that is to happen (queued); `start` and `finish` follow.

    \b
    Example:
      ctxdb command queue -p proj_… --key ci-42 -- make test
    """
    show_run(app.db().commands.queue(project_id, argv[0], list(argv[1:]), cwd=cwd,
                                     instance_id=instance_id,
                                     idempotency_key=idempotency_key), as_json)


@command_group.command("start")
@click.argument("run_id", type=int)
@scope_option
@json_option
@pass_app
def start_command(app: Application, run_id: int, project_id: str | None,
                  as_json: bool) -> None:
    """Mark a queued run running."""
    show_run(app.db().commands.start(run_id, project_id=project_id), as_json)


@command_group.command("finish")
@click.argument("run_id", type=int)
@result_options
@scope_option
@json_option
@pass_app
def finish_command(app: Application, run_id: int, exit_code: int | None, status: str | None,
                   output: str | None, output_file: str | None, error: str | None,
                   duration_ms: int | None, project_id: str | None, as_json: bool) -> None:
    """Record how a queued or running run ended (--exit-code or --status)."""
    run = app.db().commands.finish(run_id, exit_code=exit_code, status=status,
                                   output=read_output(output, output_file), error=error,
                                   duration_ms=duration_ms, project_id=project_id)
    show_run(run, as_json)


@command_group.command("cancel")
@click.argument("run_id", type=int)
@click.option("--error", metavar="TEXT", help="Why it was given up.")
@scope_option
@json_option
@pass_app
def cancel_command(app: Application, run_id: int, error: str | None, project_id: str | None,
                   as_json: bool) -> None:
    """Give up a queued or running run."""
    show_run(app.db().commands.cancel(run_id, error=error, project_id=project_id), as_json)


@command_group.command("record", context_settings=PASS_THROUGH)
@project_option
@creation_options
@result_options
@command_argument
@json_option
@pass_app
def record_command(app: Application, project_id: str, instance_id: str | None,
                   cwd: str | None, idempotency_key: str | None, exit_code: int | None,
                   status: str | None, output: str | None, output_file: str | None,
                   error: str | None, duration_ms: int | None, argv: tuple[str, ...],
                   as_json: bool) -> None:
    """Record a run that already finished, in one step.

    \b
    Example:
      ctxdb command record -p proj_… --exit-code 1 --duration-ms 5300 \\
          --output-file build.log -- npm run build
    """
    run = app.db().commands.record(project_id, argv[0], list(argv[1:]), exit_code=exit_code,
                                   status=status, output=read_output(output, output_file),
                                   error=error, duration_ms=duration_ms, cwd=cwd,
                                   instance_id=instance_id, idempotency_key=idempotency_key)
    show_run(run, as_json)


@command_group.command("list")
@project_option
@click.option("--status", type=click.Choice(choices(RunStatus)), help="Only runs in this status.")
@click.option("--command", "command", metavar="COMMAND", help="Only runs of this command.")
@click.option("--instance", "instance_id", metavar="INSTANCE_ID",
              help="Only runs of this instance.")
@click.option("--after", type=int, default=0, metavar="RUN_ID",
              help="Start after this run (paging).")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@pass_app
def list_command(app: Application, project_id: str, status: str | None, command: str | None,
                 instance_id: str | None, after: int, limit: int, as_json: bool) -> None:
    """List a project's command runs, oldest first, without their output."""
    runs = app.db().commands.list(project_id, status=status, command=command,
                                  instance_id=instance_id, after=after, limit=limit)
    show(runs, as_json, lambda: print_table(runs, RUN_COLUMNS, title="command runs",
                                           empty="no command runs"))


@command_group.command("show")
@click.argument("run_id", type=int)
@scope_option
@json_option
@pass_app
def show_command(app: Application, run_id: int, project_id: str | None,
                 as_json: bool) -> None:
    """Show one run with its whole output."""
    show_run(app.db().commands.get(run_id, project_id=project_id), as_json)
