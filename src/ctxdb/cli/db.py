"""``ctxdb init`` and ``ctxdb db status|upgrade|downgrade``: the database schema."""

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
    from ctxdb.service import schema

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
    """Inspect and migrate the database schema.

    A PostgreSQL database is never upgraded behind your back: after installing a new ctxdb,
    run `ctxdb db upgrade` (SQLite files upgrade themselves when opened).
    """


@db_group.command("status")
@json_option
@pass_app
def status_command(app: Application, as_json: bool) -> None:
    """Show each migration: version, name, state (applied/pending/modified) and when applied."""
    from ctxdb.service import schema

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
    from ctxdb.service import schema

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
    from ctxdb.service import schema

    if not dry_run and not yes:
        plan = schema.downgrade(app.settings, target, dry_run=True)
        if not plan["migrations"]:
            _show_migration_result(plan, as_json)
            return
        names = ", ".join(f"{m['version']:04d}_{m['name']}" for m in plan["migrations"])
        click.confirm(f"Roll back {names} at {plan['location']}? Data in the affected tables "
                      "is lost", abort=True, err=True)
    _show_migration_result(schema.downgrade(app.settings, target, dry_run), as_json)
