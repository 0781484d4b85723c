"""``ctxdb export``: a verified JSON Lines bundle of the database or one project
(docs/bundles.md); ``ctxdb import bundle`` reads it back (``cli/imports.py``)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option
from ctxdb.cli.output import console, print_table, show
from ctxdb.cli.progress import phase_progress


def _size(count: int) -> str:
    if count < 1024:
        return f"{count:,} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:,.1f} KiB"
    return f"{count / 1024 / 1024:,.1f} MiB"


def _print_export(result: dict[str, Any], to_stderr: bool) -> None:
    from rich.console import Console

    out = Console(stderr=True, highlight=False) if to_stderr else console()
    scope = f"project {result['project_id']}" if result["project_id"] else "every project"
    if not to_stderr:
        rows = [{"table": name, "rows": t["rows"]} for name, t in result["tables"].items()]
        print_table([r for r in rows if r["rows"]], ("table", "rows"), empty="no rows")
    out.print(f"exported {result['records']:,} records of {scope} "
              f"({_size(result['bytes'])}) to [bold]{result['path']}[/bold] in "
              f"{result['seconds']:.2f} s; sha256 {result['sha256']}", soft_wrap=True)


@click.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Only this project's records (default: the whole database).")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@json_option
@pass_app
def export_command(app: Application, file: str, project_id: str | None, force: bool,
                   as_json: bool) -> None:
    """Write every record (or one project's) to FILE as a verified bundle.

    A bundle is JSON Lines: a header (format and schema version, source, project), one line
    per row with its SHA-256, and a trailer with the counts and checksums of every table and
    of the whole file. It holds everything: projects, phases, instances, context items with
    their history and tombstones, archived items, memories with all versions, sessions and
    events, tasks, messages, approvals, command runs, checkpoints, handoffs and the audit
    log. It is read from one consistent snapshot, and written to a temporary file renamed
    into place when complete. FILE ending in .gz is gzip-compressed; '-' writes the bundle
    to stdout (the summary, or --json, then goes to stderr).

    \b
    Examples:
      ctxdb export backup.jsonl.gz
      ctxdb export --project proj_… shop.jsonl
      ctxdb --url postgresql://… export - | gzip > team.jsonl.gz
    """
    to_stdout = file == "-"
    with phase_progress(not as_json) as progress:
        if to_stdout:
            result = app.db().bundles.export(sys.stdout.buffer, project_id, progress=progress)
            sys.stdout.buffer.flush()
        else:
            result = app.db().bundles.export(file, project_id, overwrite=force,
                                             progress=progress)
    if to_stdout and as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False), err=True)
        return
    show(result, as_json, lambda: _print_export(result, to_stdout))
