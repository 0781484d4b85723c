"""``ctxdb mcp``: serve ctxdb's tools to agent clients over MCP on stdin/stdout."""

from __future__ import annotations

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.errors import ConfigError
from ctxdb.mcp import SDK_HINT


@click.command("mcp")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="The project of tool calls that name none (checked at startup).")
@pass_app
def mcp_command(app: Application, project_id: str | None) -> None:
    """Run an MCP server over stdio with ctxdb's tools for coding agents.

    Tools for context (get, store, search, handoffs, heartbeats, instances), memories,
    session events, tasks, messages, approval gates, command runs and checkpoints (see
    docs/mcp.md). stdout carries only protocol messages; logs go to
    stderr. Needs the optional MCP SDK: pip install 'ctxdb[mcp]' (without it: exit 2).

    \b
    Examples:
      ctxdb mcp                          tools take a project_id argument
      ctxdb mcp --project proj_…         the default project for calls without one
      claude mcp add ctxdb -- ctxdb mcp --project proj_…
    """
    try:
        from ctxdb.mcp.server import serve
    except ImportError as exc:
        if (exc.name or "").startswith("ctxdb"):
            raise  # a bug in ctxdb itself, not a missing extra
        raise ConfigError(f"ctxdb mcp needs the MCP SDK, which is not installed "
                          f"({exc}): {SDK_HINT}") from None
    db = app.db()
    if project_id is not None:
        db.projects.get(project_id)  # an unknown project fails now, not at every call
    serve(db, project_id)
