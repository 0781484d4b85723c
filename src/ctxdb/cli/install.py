"""``ctxdb install``: wire ctxdb's hooks and MCP server into an agent client's settings."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option
from ctxdb.cli.output import emit_json
from ctxdb.clients import (
    CLIENTS,
    SCOPES,
    CtxdbCommand,
    apply_changes,
    codex,
    ctxdb_command,
    plan_install,
    project_root,
)
from ctxdb.clients.files import FileChange
from ctxdb.clients.merge import TOKEN_ENV_VAR
from ctxdb.errors import ConfigError


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
              help="The ctxdb program the client should run, written as given (default: "
              "'ctxdb' when the ctxdb on PATH is this one, which works in every clone; "
              "else this ctxdb's absolute path, with a warning).")
@click.option("--no-mcp", "no_mcp", is_flag=True,
              help="Install the hooks only; an MCP server entry already there is left as "
              "it is. Without it, an environment lacking the MCP SDK (the mcp extra) is "
              "refused.")
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
                    executable: str | None, no_mcp: bool, server_url: str | None,
                    trust: bool, as_json: bool) -> None:
    """Merge ctxdb's hooks and MCP server into an agent client's settings.

    Your own settings, hooks and MCP servers are kept; running it twice changes nothing the
    second time; an outdated ctxdb entry (another path or timeout) is updated in place.
    A settings file that cannot be parsed is refused with an error and nothing is written.
    Files are replaced atomically; no backup is kept (use --dry-run to review first).

    \b
    Files touched (project scope: in the repository root; user scope: in ~, and for Codex
    in $CODEX_HOME when it is set):
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
    --server URL: the client connects to URL/mcp). The command is the bare 'ctxdb' when
    the ctxdb on PATH is this one; else this ctxdb's absolute path, and a warning: such a
    path works on this machine only. See docs/install.md for the entries.

    \b
    Examples:
      ctxdb install claude-code --dry-run       show what would change
      ctxdb install claude-code                 this repository's Claude Code settings
      ctxdb install codex --scope user          every Codex session of this user
      ctxdb install gemini --uninstall          take ctxdb out again
      ctxdb install claude-code --server https://ctxdb.internal:8080
      ctxdb install gemini --no-mcp             the hooks only
    """
    mcp_url = _checked_options(client, uninstall, trust, no_mcp, server_url)
    command = CtxdbCommand(executable, portable=True) if executable else ctxdb_command()
    root = project_root(Path.cwd())
    changes = plan_install(client, scope, root, Path.home(), command.command, uninstall,
                           mcp_url, with_mcp=not no_mcp)
    warnings = [] if uninstall else _warnings(mcp_url, command, changes, client)
    if trust:
        changes.append(codex.trust_plan(root, Path.home()))
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if not dry_run:
        apply_changes(changes)
    steps = _next_steps(client, scope, root, uninstall, trust)
    if as_json:
        emit_json({"client": client, "scope": scope, "uninstall": uninstall,
                   "dry_run": dry_run, "files": [_file_record(c, dry_run) for c in changes],
                   "warnings": warnings, "next_steps": steps})
    elif dry_run:
        _print_diffs(changes)
    else:
        _print_summary(client, scope, uninstall, changes, steps)


def mcp_endpoint(server_url: str) -> str:
    """The ``/mcp`` URL of the server at ``server_url`` (given with or without it; a query such
    as ``?tools=all`` is kept)."""
    parts = urlsplit(server_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{server_url!r} is not an http:// or https:// URL",
                                 param_hint="--server")
    path = parts.path.rstrip("/")
    return urlunsplit(parts._replace(path=path if path.endswith("/mcp") else f"{path}/mcp"))


def _checked_options(client: str, uninstall: bool, trust: bool, no_mcp: bool,
                     server_url: str | None) -> str | None:
    """The MCP server's URL (``--server``), once the options fit together and the MCP SDK a
    local server needs is here (a client could not start 'ctxdb mcp' without it)."""
    if trust and (client != "codex" or uninstall):
        raise click.UsageError("--trust is for installing into Codex (ctxdb install codex "
                               "--trust)")
    if no_mcp and (uninstall or server_url is not None):
        raise click.UsageError("--no-mcp installs the hooks only: it goes with neither "
                               "--uninstall nor --server")
    mcp_url = None if server_url is None or uninstall else mcp_endpoint(server_url)
    if not (no_mcp or uninstall or mcp_url is not None or mcp_sdk_installed()):
        raise ConfigError(_missing_sdk_message(), extra="mcp")
    return mcp_url


def mcp_sdk_installed() -> bool:
    """Whether ``ctxdb mcp`` can import its SDK here (without importing it: it is slow)."""
    return importlib.util.find_spec("mcp") is not None


def _missing_sdk_message() -> str:
    requirement = _extra_requirement("mcp")
    return ("refusing to register ctxdb's MCP server: 'ctxdb mcp' needs the MCP SDK (the "
            "mcp extra), which is not installed in this ctxdb's environment, so the client "
            f"could not start it. Install it: {sys.executable} -m pip install "
            f"'{requirement}' (or reinstall ctxdb from its clone with the extra, see the "
            "README's Install section); or pass --no-mcp to install the hooks only, or "
            "--server URL to use a ctxdb serve's MCP endpoint. Nothing was written.")


def _extra_requirement(extra: str) -> str:
    """The requirement ctxdb's ``extra`` adds (e.g. ``mcp>=2.3,<3``), read from the installed
    package's metadata, so that the hint never drifts from pyproject.toml."""
    marker = re.compile(rf"""extra\s*==\s*["']{re.escape(extra)}["']""")
    try:
        requires = importlib.metadata.requires("ctxdb") or []
    except importlib.metadata.PackageNotFoundError:
        requires = []
    for line in requires:
        requirement, _, condition = line.partition(";")
        if marker.search(condition):
            return requirement.strip().replace(" ", "")
    return extra


def _warnings(mcp_url: str | None, command: CtxdbCommand, changes: list[FileChange],
              client: str) -> list[str]:
    """What will not work (everywhere) although the install succeeds."""
    warnings = []
    if not command.portable:
        warnings.append(_machine_path_warning(command.command, changes, client))
    if mcp_url is not None and not os.environ.get(TOKEN_ENV_VAR):
        warnings.append(
            f"{TOKEN_ENV_VAR} is not set here: the client sends the token it finds in "
            f"{TOKEN_ENV_VAR} (create one with 'ctxdb token create', on the server's "
            "database) and cannot connect without it")
    return warnings


def _machine_path_warning(command: str, changes: list[FileChange], client: str) -> str:
    # As written in the file: JSON and TOML escape a backslash (a Windows path) the same way.
    forms = (command, json.dumps(command)[1:-1])
    holding = [str(c.path) for c in changes
               if c.after is not None and any(form in c.after for form in forms)]
    files = ", ".join(holding) or "the settings"
    if command == "ctxdb":
        return (f"no ctxdb program was found here (neither this one nor on PATH): {files} "
                "run the bare 'ctxdb', which the client must find on its PATH")
    return (f"{files} now hold {command}, a path of this machine: committed, it fails in "
            "other clones and on other machines. To write the portable 'ctxdb' instead, put "
            "this ctxdb on PATH (activate its virtualenv, or install it with pipx or uv "
            f"tool, see the README's Install section) and rerun 'ctxdb install {client}'")


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


def _print_summary(client: str, scope: str, uninstall: bool, changes: list[FileChange],
                   steps: list[str]) -> None:
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
    for step in steps:
        click.echo(f"next: {step}")
