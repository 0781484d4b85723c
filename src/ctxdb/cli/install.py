"""``ctxdb install``: wire ctxdb's hooks and MCP server into an agent client's settings."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from urllib.parse import urlsplit

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option
from ctxdb.cli.output import emit_json
from ctxdb.clients import (
    CLIENTS,
    SCOPES,
    apply_changes,
    codex,
    ctxdb_executable,
    plan_install,
    project_root,
)
from ctxdb.clients.files import FileChange
from ctxdb.clients.merge import TOKEN_ENV_VAR

# What `ctxdb mcp` needs beyond ctxdb itself (the `mcp` extra of the package).
MCP_EXTRA_HINT = "pip install 'ctxdb[mcp]'"


@click.command("install")
@click.argument("client", type=click.Choice(sorted(CLIENTS)))
@click.option("--scope", type=click.Choice(SCOPES), default="project", show_default=True,
              help="project: the settings of the repository holding the current directory "
              "(its git top level, else the current directory); user: the settings in your "
              "home directory, for every project.")
@click.option("--dry-run", is_flag=True,
              help="Print a unified diff of every file that would change; write nothing.")
@click.option("--uninstall", is_flag=True,
              help="Remove ctxdb's hooks and MCP server (and only those) instead.")
@click.option("--ctxdb-command", "executable", metavar="PATH",
              help="The ctxdb program the client should run (default: this ctxdb's absolute "
              "path, else 'ctxdb' found on PATH).")
@click.option("--server", "server_url", metavar="URL",
              help="Register ctxdb's MCP server by URL: a 'ctxdb serve' at URL (its /mcp), "
              "with the token the client reads from $CTXDB_TOKEN, instead of a local "
              "'ctxdb mcp'. The token itself is never written.")
@click.option("--trust", is_flag=True,
              help="Codex only: also trust this repository in your Codex config "
              "($CODEX_HOME/config.toml, default ~/.codex): [projects.\"<repo>\"] "
              "trust_level = \"trusted\", as Codex's own trust prompt does.")
@json_option
@pass_app
def install_command(app: Application, client: str, scope: str, dry_run: bool, uninstall: bool,
                    executable: str | None, server_url: str | None, trust: bool,
                    as_json: bool) -> None:
    """Merge ctxdb's hooks and MCP server into an agent client's settings.

    Your own settings, hooks and MCP servers are kept; running it twice changes nothing the
    second time; an outdated ctxdb entry (another path or timeout) is updated in place.
    A settings file that cannot be parsed is refused with an error and nothing is written.
    Files are replaced atomically; no backup is kept (use --dry-run to review first).

    \b
    Files touched (project scope: in the repository root; user scope: in ~):
      claude-code  .claude/settings.json  hooks SessionStart, UserPromptSubmit,
                                          PreCompact, PostCompact, Stop, SubagentStop,
                                          SessionEnd
                   .mcp.json (user scope: ~/.claude.json)  mcpServers.ctxdb
      codex        .codex/hooks.json      hooks SessionStart, UserPromptSubmit,
                                          PreCompact, PostCompact, Stop
                   .codex/config.toml     [mcp_servers.ctxdb]; [features] hooks =
                                          true for a Codex older than 0.171
                   with --trust: ~/.codex/config.toml  [projects."<repo>"]
      gemini       .gemini/settings.json  hooks SessionStart, BeforeAgent, AfterAgent,
                                          PreCompress, SessionEnd; mcpServers.ctxdb

    Every hook runs 'ctxdb hook --client CLIENT'; the MCP server runs 'ctxdb mcp' (with
    --server URL: the client connects to URL/mcp). See docs/install.md for the entries.

    \b
    Examples:
      ctxdb install claude-code --dry-run       show what would change
      ctxdb install claude-code                 this repository's Claude Code settings
      ctxdb install codex --scope user          every Codex session of this user
      ctxdb install gemini --uninstall          take ctxdb out again
      ctxdb install claude-code --server https://ctxdb.internal:8080
    """
    if trust and (client != "codex" or uninstall):
        raise click.UsageError("--trust is for installing into Codex (ctxdb install codex "
                               "--trust)")
    mcp_url = None if server_url is None or uninstall else mcp_endpoint(server_url)
    root = project_root(Path.cwd())
    changes = plan_install(client, scope, root, Path.home(), executable or ctxdb_executable(),
                           uninstall, mcp_url)
    if trust:
        changes.append(codex.trust_plan(root, Path.home()))
    warnings = [] if uninstall else _warnings(mcp_url)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if not dry_run:
        apply_changes(changes)
    if as_json:
        steps = _next_steps(client, scope, root, uninstall, trust)
        emit_json({"client": client, "scope": scope, "uninstall": uninstall,
                   "dry_run": dry_run, "files": [_file_record(c, dry_run) for c in changes],
                   "warnings": warnings, "next_steps": steps})
    elif dry_run:
        _print_diffs(changes)
    else:
        _print_summary(client, scope, uninstall, changes)
        for step in _next_steps(client, scope, root, uninstall, trust):
            click.echo(f"next: {step}")


def mcp_endpoint(server_url: str) -> str:
    """The ``/mcp`` URL of the server at ``server_url`` (given with or without it)."""
    url = server_url.strip().rstrip("/")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise click.BadParameter(f"{server_url!r} is not an http:// or https:// URL",
                                 param_hint="--server")
    return url if url.endswith("/mcp") else f"{url}/mcp"


def _warnings(mcp_url: str | None) -> list[str]:
    """What will not work although the install succeeds."""
    if mcp_url is not None:
        if os.environ.get(TOKEN_ENV_VAR):
            return []
        return [f"{TOKEN_ENV_VAR} is not set here: the client sends the token it finds in "
                f"{TOKEN_ENV_VAR} (create one with 'ctxdb token create', on the server's "
                "database) and cannot connect without it"]
    if not _mcp_installed():
        return ["the MCP server is registered, but 'ctxdb mcp' cannot start: the MCP SDK is "
                f"not installed here; run: {MCP_EXTRA_HINT} (the hooks work without it)"]
    return []


def _mcp_installed() -> bool:
    return importlib.util.find_spec("mcp") is not None


def _next_steps(client: str, scope: str, root: Path, uninstall: bool,
                trusted_now: bool) -> list[str]:
    """What the user must still do in the client itself (Codex's trust)."""
    if client != "codex" or uninstall:
        return []
    return codex.trust_steps(scope, root, Path.home(), trusted_now)


def _file_record(change: FileChange, dry_run: bool) -> dict[str, object]:
    record: dict[str, object] = change.to_dict()
    if dry_run:
        record["diff"] = change.diff()
    return record


def _print_diffs(changes: list[FileChange]) -> None:
    for change in changes:
        if change.changed:
            click.echo(change.diff(), nl=False)
        else:
            click.echo(f"unchanged: {change.path}", err=True)
    click.echo("dry run: nothing was written", err=True)


PAST_TENSE = {"create": "created", "update": "updated", "remove": "removed",
              "unchanged": "unchanged"}


def _print_summary(client: str, scope: str, uninstall: bool,
                   changes: list[FileChange]) -> None:
    for change in changes:
        click.echo(f"{PAST_TENSE[change.action]} {change.path}")
        for note in change.notes:
            click.echo(f"  {note}")
    title = CLIENTS[client].title
    if uninstall:
        click.echo(f"ctxdb is removed from {title}'s {scope} settings.")
    else:
        click.echo(f"ctxdb is installed in {title}'s {scope} settings; start a new "
                   f"{title} session to load it.")
