"""``ctxdb init`` and ``ctxdb db status|upgrade|downgrade|copy|secure|optimize``: the database
schema, copying a whole database to another one, PostgreSQL's row-level security and routine
maintenance."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option
from ctxdb.cli.output import console, print_table, say, show


@click.command("init")
@json_option
@pass_app
def init_command(app: Application, as_json: bool) -> None:
    """Create the database, or upgrade its schema, at the configured URL.

    Works for the SQLite file (created with its directory) and for PostgreSQL (the database
    must exist; its tables are created). Safe to run again: an up-to-date database is left
    as it is.
    """
    from ctxdb.service.operations import schema

    result = schema.init(app.settings)

    def human() -> None:
        verb = "created" if result["created"] else "ready"
        say(f"{result['backend']} database {verb} at [bold]{result['location']}[/bold] "
            f"(schema version {result['to_version']})")
        for step in result["migrations"]:
            say(f"  applied {step['version']:04d}_{step['name']}")

    show(result, as_json, human)


@click.group("db")
def db_group() -> None:
    """Inspect and migrate the database schema; copy a whole database to another.

    A PostgreSQL database is never upgraded behind your back: after installing a new ctxdb,
    run `ctxdb db upgrade` (SQLite files upgrade themselves when opened; an empty database of
    either kind gets its schema when first opened).
    """


@db_group.command("status")
@json_option
@pass_app
def status_command(app: Application, as_json: bool) -> None:
    """Show each migration: version, name, state (applied/pending/modified) and when applied."""
    from ctxdb.service.operations import schema

    result = schema.status(app.settings)

    def human() -> None:
        say(f"{result['backend']} database at [bold]{result['location']}[/bold]: schema version "
            f"{result['current_version']} of {result['latest_version']}")
        print_table(result["migrations"], ("version", "name", "state", "applied_at"),
                    empty="no migrations known")

    show(result, as_json, human)


def _show_migration_result(result: dict[str, Any], as_json: bool) -> None:
    def human() -> None:
        steps = result["migrations"]
        if not steps:
            say(f"nothing to do: the schema is at version {result['from_version']}")
            return
        if result["dry_run"]:
            say(f"dry run: would migrate {result['direction']} from version "
                f"{result['from_version']}; nothing was changed. SQL that would run:")
            for step in steps:
                console().rule(f"{step['version']:04d}_{step['name']} ({result['direction']})")
                click.echo(step["sql"])
            return
        for step in steps:
            say(f"{result['direction']}: {step['version']:04d}_{step['name']}")
        say(f"schema version {result['from_version']} → {result['to_version']} "
            f"at {result['location']}")

    show(result, as_json, human)


@db_group.command("upgrade")
@click.option("--target", type=int, metavar="N", help="Stop at version N (default: latest).")
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run; change nothing.")
@json_option
@pass_app
def upgrade_command(app: Application, target: int | None, dry_run: bool, as_json: bool) -> None:
    """Apply pending migrations (all of them, or up to --target).

    \b
    Examples:
      ctxdb db upgrade --dry-run
      ctxdb --url postgresql://ctxdb@db:5432/ctxdb db upgrade
    """
    from ctxdb.service.operations import schema

    _show_migration_result(schema.upgrade(app.settings, target, dry_run), as_json)


@db_group.command("downgrade")
@click.option("--target", type=int, metavar="N",
              help="Roll back to version N (default: one step back; 0 drops every table).")
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_app
def downgrade_command(
    app: Application, target: int | None, dry_run: bool, yes: bool, as_json: bool
) -> None:
    """Roll back applied migrations. This can destroy data: it asks first unless --yes."""
    from ctxdb.service.operations import schema

    if not dry_run and not yes:
        plan = schema.downgrade(app.settings, target, dry_run=True)
        if not plan["migrations"]:
            _show_migration_result(plan, as_json)
            return
        names = ", ".join(f"{m['version']:04d}_{m['name']}" for m in plan["migrations"])
        click.confirm(f"Roll back {names} at {plan['location']}? Data in the affected tables "
                      "is lost", abort=True, err=True)
    _show_migration_result(schema.downgrade(app.settings, target, dry_run), as_json)


def _print_copy(result: dict[str, Any]) -> None:
    if result["dry_run"]:
        print_table(result["tables"], ("table", "source_rows", "target_rows"))
        if not result["would_copy"]:
            say(f"[yellow]dry run:[/yellow] the target holds rows (in "
                f"{', '.join(result['target_not_empty'])}): the copy would be refused "
                "without --force")
        else:
            forced = " after deleting its rows" if result["target_not_empty"] else ""
            say(f"[yellow]dry run, nothing changed:[/yellow] would copy {result['rows']:,} "
                f"rows from {result['source']} to {result['target']}{forced}")
        return
    rows = [{**row, "match": "yes" if row["match"] else "NO",
             "source_sha256": row["source_sha256"][:16],
             "target_sha256": row["target_sha256"][:16]} for row in result["tables"]]
    print_table(rows, ("table", "source_rows", "target_rows", "source_sha256",
                       "target_sha256", "match"))
    say(f"copied {result['rows']:,} rows from {result['source']} to [bold]"
        f"{result['target']}[/bold] (schema version {result['schema_version']}) in "
        f"{result['copy_seconds']:.2f} s, verified every table in "
        f"{result['verify_seconds']:.2f} s")


@db_group.command("copy")
@click.option("--from", "source_url", metavar="URL",
              help="The database to copy (default: the configured one, --url/CTXDB_URL). "
                   "Opened read-only.")
@click.option("--to", "target_url", metavar="URL", required=True,
              help="The database to copy into: a SQLite path or a postgresql:// URL.")
@click.option("--force", is_flag=True,
              help="Delete every row of a target that has some before copying (in the "
                   "copy's transaction: a failed copy keeps them).")
@click.option("--batch-size", type=click.IntRange(1, 1_000_000), default=5_000,
              show_default=True, help="Rows per insert batch and progress step.")
@click.option("--dry-run", is_flag=True,
              help="Count the rows and check the target; change nothing.")
@json_option
@pass_app
def copy_command(app: Application, source_url: str | None, target_url: str, force: bool,
                 batch_size: int, dry_run: bool, as_json: bool) -> None:
    """Copy a whole database to another one (SQLite ⇄ PostgreSQL) and verify the copy.

    The source is opened read-only and read in one consistent snapshot: the copy never
    changes it. The target is migrated to this ctxdb's schema version first and must hold no
    rows (or --force). Every table is copied in batches in one transaction on the target
    (COPY on PostgreSQL), so a failed copy leaves the target as it was; ids are kept and new
    rows are numbered after them. Then both sides are read again and each table's row count
    and content checksum (the canonical records of bundles) are compared and shown; any
    difference fails the command (exit 6).

    \b
    Examples:
      ctxdb db copy --to postgresql://ctxdb@db:5432/ctxdb --dry-run
      ctxdb db copy --from ~/.local/share/ctxdb/ctxdb.db --to postgresql://…/ctxdb
      ctxdb db copy --from postgresql://…/ctxdb --to laptop.db --force --json
    """
    from ctxdb.cli.progress import phase_progress
    from ctxdb.errors import CopyVerificationError
    from ctxdb.service.operations.dbcopy import copy_database

    source = app.settings.replace(url=source_url) if source_url else app.settings
    target = app.settings.replace(url=target_url)
    try:
        with phase_progress(not as_json) as progress:
            result = copy_database(source, target, force=force, batch_size=batch_size,
                                   dry_run=dry_run, progress=progress)
    except CopyVerificationError as exc:
        if not as_json:  # the per-table report, then the error line
            print_table(exc.details["tables"], ("table", "source_rows", "target_rows", "match"))
        raise
    show(result, as_json, lambda: _print_copy(result))


@db_group.command("secure")
@click.option("--role", default="ctxdb_app", show_default=True, metavar="NAME",
              help="The application role `ctxdb serve` connects as: created if missing; "
                   "refused if it is a superuser, has BYPASSRLS or owns the tables.")
@click.option("--password", envvar="CTXDB_APP_PASSWORD", metavar="TEXT",
              help="Set the role's password (sent hashed; never printed). Without it an "
                   "existing role keeps its password. [env: CTXDB_APP_PASSWORD]")
@json_option
@pass_app
def secure_command(app: Application, role: str, password: str | None, as_json: bool) -> None:
    """Set up PostgreSQL row-level security: a second wall between projects (PostgreSQL only).

    Run as the database owner. Creates or updates the application role (LOGIN, no BYPASSRLS,
    not a superuser), grants it what `ctxdb serve` needs on ctxdb's tables, views and
    sequences, and enables and FORCEs row-level security on every table that holds project
    data, with policies that let it see only the projects the server sets for each
    transaction. The owner keeps seeing every row (migrations, db copy, backups, the CLI).
    One transaction; safe to run again, and to be run again after `ctxdb db upgrade`
    (doctor's row_security check says when). Then run `ctxdb serve` with a URL naming the
    role. See docs/server.md.

    \b
    Examples:
      ctxdb --url postgresql://owner@db/ctxdb db secure --role ctxdb_app
      CTXDB_APP_PASSWORD=… ctxdb --url postgresql://owner@db/ctxdb db secure
    """
    result = app.db().row_security.secure(role, password)

    def human() -> None:
        verb = "created" if result["created"] else "updated"
        secret = ", password set" if result["password_set"] else ""
        say(f"application role [bold]{result['role']}[/bold] {verb}{secret}")
        print_table(result["tables"], ("table", "via"))
        say(f"row-level security enabled and forced on {len(result['tables'])} tables; run "
            f"`ctxdb serve` connected as {result['role']}")

    show(result, as_json, human)


@db_group.command("optimize")
@click.option("--vacuum", is_flag=True,
              help="SQLite: also rewrite the file to give free pages back to the disk (holds "
                   "the database while it runs: stop the agents first). PostgreSQL always "
                   "vacuums, which lets agents go on.")
@json_option
@pass_app
def optimize_command(app: Application, vacuum: bool, as_json: bool) -> None:
    """Refresh the query planner's statistics and reclaim the space of deleted rows.

    Safe while agents work: one short step per table, each committed on its own (SQLite:
    an approximate ANALYZE per table and a WAL checkpoint; PostgreSQL: VACUUM (ANALYZE) per
    table). `ctxdb gc` runs it after each collection, and `ctxdb doctor` says when it is due.

    \b
    Examples:
      ctxdb db optimize
      ctxdb db optimize --vacuum --json
    """
    result = app.db().maintenance.optimize(vacuum=vacuum)

    def human() -> None:
        before, after = result["before"], result["after"]
        say(f"{len(result['steps'])} step(s) in {result['seconds']:g} s")
        rows = [{"measure": name, "before": _shown(before[key]), "after": _shown(after[key])}
                for name, key in (("tables without statistics", "unanalyzed"),
                                  ("rows changed since analyzed", "changed_rows"),
                                  ("reclaimable bytes", "reclaimable_bytes"))]
        print_table(rows, ("measure", "before", "after"))

    show(result, as_json, human)


def _shown(value: Any) -> str:
    if value is None:
        return "not counted"
    return str(len(value)) if isinstance(value, list) else str(value)
