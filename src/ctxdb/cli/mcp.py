"""``ctxdb mcp``: serve ctxdb's tools to agent clients over MCP on stdin/stdout."""

from __future__ import annotations

import os

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.errors import ConfigError
from ctxdb.mcp import SDK_HINT, TOOL_SETS
from ctxdb.service import Ctxdb


@click.command("mcp")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="The project of tool calls that name none (checked at startup). "
              "Default: the project of the repository the server runs in, as the hooks "
              "find it (created on first use).")
@click.option("--tools", "tool_set", type=click.Choice(TOOL_SETS), default="default",
              show_default=True,
              help="default: 6 tools (search, timeline, get, get_context, store_context and "
              "call, which runs any other tool by name), small enough to cost a session few "
              "tokens; all: every tool listed by itself.")
@pass_app
def mcp_command(app: Application, project_id: str | None, tool_set: str) -> None:
    """Run an MCP server over stdio with ctxdb's tools for coding agents.

    Tools for context (get, store, search, handoffs, heartbeats, instances), memories,
    session events, tasks, messages, approval gates, command runs and checkpoints (see
    docs/mcp.md). stdout carries only protocol messages; logs go to
    stderr. Needs the optional MCP SDK, the mcp extra (README: Install; without it: exit 2).

    \b
    Examples:
      ctxdb mcp                          the project of this repository
      ctxdb mcp --project proj_…         the default project for calls without one
      ctxdb mcp --tools all              every tool listed by itself
      claude mcp add ctxdb -- ctxdb mcp
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
        serve(db, project_id, which=tool_set)
        return
    project_id, hint = repository_project(db, os.getcwd())
    serve(db, project_id, hint, which=tool_set)


def repository_project(db: Ctxdb, cwd: str) -> tuple[str | None, str]:
    """The project of the git repository holding ``cwd`` (created on first use, exactly as
    the hooks do, so the model's tools and the injected context name the same project), or
    None and why: a folder in no repository has none."""
    from ctxdb.repo_identity import repository_identity

    repo = repository_identity(cwd)
    if repo is None:
        return None, f" (it runs in {cwd}, which is in no git repository)"
    return str(db.sessions.resolve_project(repo)["project_id"]), ""
