"""``ctxdb import …``: bring context in from files and from other databases (docs/imports.md).

Each subcommand is a function registered on :data:`import_group`; a new kind of import adds
one command here (or ``import_group.add_command(...)`` from its own module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option
from ctxdb.cli.output import console, print_table, show
from ctxdb.cli.progress import phase_progress

if TYPE_CHECKING:
    pass



@click.group("import")
def import_group() -> None:
    """Import context from files and other databases (idempotent; see --dry-run).

    \b
    ctxdb import files PATH     CLAUDE.md/AGENTS.md/GEMINI.md, .claude/, JSON items,
                                the MCP memory server's memory.json
    ctxdb import legacy PATH    a database built with the seed's own SQLite schema
    """


def print_report(report: dict[str, Any], what: str) -> None:
    """The summary for a person: counts per kind, then what was skipped and why."""
    verb = "would import" if report["dry_run"] else "imported"
    rows = [{"kind": kind, **counts} for kind, counts in sorted(report["counts"].items())]
    target = f" into project {report['project_id']}" if report.get("project_id") else ""
    console().print(f"{what} {report['source']}{target}", soft_wrap=True)
    print_table(rows, ("kind", "imported", "updated", "unchanged", "skipped"),
                empty="nothing to import")
    if report["skipped"]:
        print_table(report["skipped"], ("path", "kind", "reason"), title="skipped")
    totals = report["totals"]
    prefix = "[yellow]dry run, nothing written:[/yellow] " if report["dry_run"] else ""
    console().print(f"{prefix}{verb} {totals['imported']} new, {totals['updated']} updated; "
                    f"{totals['unchanged']} unchanged, {totals['skipped']} skipped")


@import_group.command("files")
@click.argument("path", type=click.Path(exists=True, file_okay=True, dir_okay=True))
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="The project to import into (default: the project of the repository "
                   "PATH is in, created on first use as the agent hooks do).")
@click.option("--dry-run", is_flag=True, help="Report what would be imported; write nothing.")
@click.option("--include-instructions", is_flag=True,
              help="Import CLAUDE.md, AGENTS.md, GEMINI.md and .claude/rules/ too (skipped by "
                   "default: the clients load them into every session themselves).")
@json_option
@pass_app
def files_command(app: Application, path: str, project_id: str | None, dry_run: bool,
                  include_instructions: bool, as_json: bool) -> None:
    """Import a project's file-based memory from PATH (a folder or one file).

    \b
    .claude/context/                  markdown/text as MEDIUM items; JSON files of items
    .claude/commands|agents|skills/   procedural memories (claude:commands, …)
    .claude/settings.json, config/    memories (claude:settings without ctxdb's own
                                      hooks, claude:config)
    memory.json                       the MCP memory server's graph → mcp:entity:<type>
                                      and mcp:relation:<type> memories
    CLAUDE.md, AGENTS.md, GEMINI.md,  skipped: the clients load them into every session
    .claude/CLAUDE.md, .claude/rules/ themselves; with --include-instructions (or named
                                      as PATH) one context item per section

    Importing again adds nothing; a changed section supersedes its earlier import. Logs,
    personal settings, large and binary files are skipped with the reason. A symlink or
    an @reference leading outside PATH refuses the whole import (exit 2, nothing written).

    \b
    Examples:
      ctxdb import files . --dry-run
      ctxdb import files ~/code/shop --project proj_… --json
      ctxdb import files ~/.local/share/mcp/memory.json -p proj_…
    """
    repo = None
    if project_id is None:
        import os

        from ctxdb.repo_identity import repo_identity

        folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        repo = repo_identity(folder)
    with phase_progress(not as_json) as progress:
        report = app.db().imports.import_files(
            path, project_id=project_id, repo=repo, dry_run=dry_run,
            include_instructions=include_instructions, progress=progress)
    show(report, as_json, lambda: print_report(report, "files from"))


@import_group.command("legacy")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Report what would be imported; write nothing.")
@json_option
@pass_app
def legacy_command(app: Application, path: str, dry_run: bool, as_json: bool) -> None:
    """Import PATH, a database built with the seed's own SQLite schema.

    Projects, phases, active_instances and context_snapshots are imported keeping their
    ids (proj_…, inst_…), priorities, token counts, sequence order and timestamps, in one
    transaction: a failure writes nothing. Importing again adds nothing. The file is only
    read. A file that is not such a database is refused (exit 2).

    \b
    Examples:
      ctxdb import legacy ultrathink_context.db --dry-run
      ctxdb --url postgresql://… import legacy ultrathink_context.db --json
    """
    with phase_progress(not as_json) as progress:
        report = app.db().imports.import_legacy(path, dry_run=dry_run, progress=progress)
    show(report, as_json, lambda: print_report(report, "legacy database"))



def _table_rows(
    tables: dict[str, dict[str, Any]], columns: tuple[str, ...]
) -> list[dict[str, Any]]:
    """One row per table that has any of the counts, for the summary table."""
    return [{"table": name, **{c: counts[c] for c in columns}}
            for name, counts in tables.items() if any(counts[c] for c in columns)]


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


@import_group.command("bundle")
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
