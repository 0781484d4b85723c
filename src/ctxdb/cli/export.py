"""``ctxdb export`` and ``ctxdb import bundle``: verified JSON Lines bundles (docs/bundles.md).

``import_bundle_command`` is attached to the ``import`` group in ``cli/imports.py``.
"""

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


def _table_rows(
    tables: dict[str, dict[str, Any]], columns: tuple[str, ...]
) -> list[dict[str, Any]]:
    """One row per table that has any of the counts, for the summary table."""
    return [{"table": name, **{c: counts[c] for c in columns}}
            for name, counts in tables.items() if any(counts[c] for c in columns)]


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


def _print_import(result: dict[str, Any]) -> None:
    columns = ("rows", "inserted", "skipped", "replaced", "renumbered")
    print_table(_table_rows(result["tables"], columns), ("table", *columns), empty="no rows")
    scope = f"project {result['project_id']}" if result["project_id"] else "every project"
    made = f"made {result['created_at']} from {result['source_backend']}"
    if result["dry_run"]:
        verb = "[yellow]dry run, nothing written:[/yellow] would insert"
    else:
        verb = "imported"
    console().print(
        f"bundle of {scope}, {made}, verified ({result['records']:,} records); {verb} "
        f"{result['inserted']:,}, skipped {result['skipped']:,} already present, replaced "
        f"{result['replaced']:,}; {result['renumbered']:,} given new ids", soft_wrap=True)
    for chain, sealed in sorted(result.get("resealed", {}).items()):
        console().print(
            f"audit chain of {chain or '(no project)'}: {sealed['seals']:,} entries sealed "
            f"again here; its head {sealed['head']} (in the bundle: {sealed['bundle_head']})",
            soft_wrap=True, markup=False)


@click.command("bundle")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True,
              help="Verify the bundle and count what would be imported; write nothing.")
@click.option("--replace", is_flag=True,
              help="Overwrite rows of the bundle's own projects that hold a different version "
                   "of a record with the bundle's, losing their changes made here (default: "
                   "such a row refuses the whole import). Never writes other projects' rows.")
@json_option
@pass_app
def import_bundle_command(app: Application, file: str, dry_run: bool, replace: bool,
                          as_json: bool) -> None:
    """Import FILE, a bundle written by `ctxdb export`, after verifying all of it.

    Every line's checksum, the counts and checksums of the trailer and the schema version
    are checked before anything is written; a damaged bundle is refused (exit 2) with
    nothing written. The import is one transaction: all of it or nothing. Into an empty
    database every id is kept. Into one with other projects, their rows are never written:
    a record whose number is taken here gets a new one (every reference follows it, and the
    project's audit chain is sealed again); rows already present are skipped, so importing
    again changes nothing. A row of the bundle's own project that holds a different version
    refuses the import (exit 4; --dry-run lists such conflicts) unless --replace.

    \b
    Examples:
      ctxdb import bundle backup.jsonl.gz --dry-run
      ctxdb --url postgresql://… import bundle laptop.jsonl --json
    """
    with phase_progress(not as_json) as progress:
        result = app.db().bundles.import_bundle(file, dry_run=dry_run, replace=replace,
                                                progress=progress)
    show(result, as_json, lambda: _print_import(result))
