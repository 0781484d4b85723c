"""``ctxdb backup FILE`` and ``ctxdb restore FILE``: whole-database backups (docs/backup.md)."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option
from ctxdb.cli.output import print_table, say, show
from ctxdb.cli.progress import phase_progress


def _table_rows(tables: dict[str, int]) -> list[dict[str, Any]]:
    return [{"table": name, "rows": rows} for name, rows in sorted(tables.items()) if rows]


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace FILE if it already exists.")
@click.option("--format", "fmt", type=click.Choice(("auto", "sqlite", "pg_dump", "bundle")),
              default="auto", show_default=True,
              help="auto: sqlite for SQLite; pg_dump for PostgreSQL, or an export bundle "
                   "when pg_dump is not on PATH. bundle works for both (name it *.gz to "
                   "compress it).")
@json_option
@pass_app
def backup_command(app: Application, file: str, force: bool, fmt: str, as_json: bool) -> None:
    """Back up the whole database to FILE, consistent while agents keep writing.

    SQLite: the online backup API copies one snapshot of the database (writers are never
    held off), the copy is checked (integrity, schema version) and written durably.
    PostgreSQL: a pg_dump archive (custom format), read back whole to check it, or an
    export bundle when pg_dump is not installed. A checksum file FILE.sha256 is written
    beside the backup; `ctxdb restore` verifies it.

    \b
    Examples:
      ctxdb backup ~/backups/ctxdb-$(date +%Y%m%d).db
      ctxdb --url postgresql://ctxdb@db/ctxdb backup ctxdb.dump --json
    """
    from ctxdb.service.operations import backup

    with phase_progress(not as_json) as progress:
        result = backup.backup(app.settings, file, force=force, fmt=fmt, progress=progress)

    def human() -> None:
        say(f"backed up {result['location']} to [bold]{result['file']}[/bold] "
            f"({result['format']}, schema version {result['schema_version']}, "
            f"{result['bytes']:,} bytes, {result['rows']:,} rows, "
            f"integrity {result['integrity']}, {result['elapsed_seconds']} s)")
        say(f"sha256 {result['sha256']} (in {result['checksum_file']})")
        print_table(_table_rows(result["tables"]), ("table", "rows"), empty="no rows")

    show(result, as_json, human)


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True,
              help="Replace a database that holds data (its current content is lost).")
@click.option("--dry-run", is_flag=True,
              help="Only check the backup and say what would be replaced; change nothing.")
@json_option
@pass_app
def restore_command(app: Application, file: str, force: bool, dry_run: bool,
                    as_json: bool) -> None:
    """Restore the database from a backup FILE made by `ctxdb backup`.

    The backup is checked first (its FILE.sha256 when present, integrity, schema version);
    a damaged backup is refused and nothing changes. A database that holds data is only
    replaced with --force. SQLite: the pages are copied into the live database file through
    SQLite; PostgreSQL: pg_restore and psql replace ctxdb's tables in one transaction; an
    export bundle (either backend): the rows are replaced in one transaction.

    \b
    Examples:
      ctxdb restore ~/backups/ctxdb-20250101.db --dry-run
      ctxdb restore ~/backups/ctxdb-20250101.db --force
    """
    from ctxdb.service.operations import backup

    with phase_progress(not as_json) as progress:
        result = backup.restore(app.settings, file, force=force, dry_run=dry_run,
                                progress=progress)

    def human() -> None:
        verb = "would restore" if dry_run else "restored"
        say(f"{verb} {result['file']} ({result['format']}, schema version "
            f"{result['schema_version']}, checksum {result['checksum']}) into "
            f"[bold]{result['location']}[/bold]")
        replaced = sum(result["replaced_rows"].values())
        if replaced:
            say(f"{'would replace' if dry_run else 'replaced'} {replaced:,} rows that were "
                "in the database" + (" (the restore itself needs --force)"
                                     if result["needs_force"] else ""))
        print_table(_table_rows(result["tables"]), ("table", "rows"), empty="no rows")

    show(result, as_json, human)
