"""``ctxdb token …``: the API tokens of ``ctxdb serve`` (not ``ctxdb tokens``, token usage)."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option
from ctxdb.cli.output import print_record, print_table, say, show
from ctxdb.domain.access import parse_lifetime
from ctxdb.domain.models import choices
from ctxdb.domain.vocabulary import TokenScope
from ctxdb.errors import ValidationError

TOKEN_COLUMNS = ("token_id", "name", "project_id", "scope", "status", "created_at",
                 "expires_at", "revoked_at", "last_used_at")


@click.group("token")
def token_group() -> None:
    """Manage the API tokens of `ctxdb serve` (docs/server.md).

    A token is shown once, when it is created; the database keeps only its SHA-256.
    """


@token_group.command("create")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="The one project the token may reach.")
@click.option("--all-projects", is_flag=True,
              help="A fleet-wide token for operators: every project (instead of --project).")
@click.option("--scope", type=click.Choice(choices(TokenScope)), required=True,
              help="read; write (read and write); admin (also creates projects).")
@click.option("--expires", metavar="DURATION",
              help="Lifetime such as 90m, 12h, 30d or 2w (default: until revoked).")
@click.option("--name", default="", help="A name to recognise the token by.")
@json_option
@pass_app
def create_command(app: Application, project_id: str | None, all_projects: bool, scope: str,
                   expires: str | None, name: str, as_json: bool) -> None:
    """Create a token and print its secret (the only time it is shown).

    \b
    Examples:
      ctxdb token create --project proj_… --scope write --expires 30d --name ci
      ctxdb token create --all-projects --scope admin --name operators
    """
    if (project_id is None) == (not all_projects):
        raise ValidationError("give exactly one of --project PROJECT_ID and --all-projects")
    ttl = None if expires is None else parse_lifetime(expires, "--expires")
    token = app.db().access_tokens.create(project_id, scope, name=name, ttl_seconds=ttl)

    def human() -> None:
        print_record({k: v for k, v in token.items() if k != "secret"},
                     title=f"token {token['token_id']}")
        say("the secret (shown only now; send it as 'Authorization: Bearer …'):")
        click.echo(token["secret"])

    show(token, as_json, human)


@token_group.command("list")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Only this project's tokens (default: every token).")
@json_option
@pass_app
def list_command(app: Application, project_id: str | None, as_json: bool) -> None:
    """List tokens with their status (active, revoked, expired); never their secrets."""
    tokens = app.db().access_tokens.list(project_id)
    show(tokens, as_json, lambda: print_table(tokens, TOKEN_COLUMNS, title="API tokens",
                                             empty="no API tokens"))


@token_group.command("revoke")
@click.argument("token_id")
@json_option
@pass_app
def revoke_command(app: Application, token_id: str, as_json: bool) -> None:
    """Revoke TOKEN_ID: the server refuses it from the next request on."""
    token: dict[str, Any] = app.db().access_tokens.revoke(token_id)
    show(token, as_json, lambda: print_record(token, title=f"token {token_id} revoked"))
