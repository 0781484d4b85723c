"""``ctxdb hook --client …``: the one command every agent-client hook runs.

A well-formed invocation never gets here: ``ctxdb.cli.main.main`` runs it without click (see
``ctxdb.hooks.command``). This command serves ``--help``, the usage errors, and the hook run
with global options (``ctxdb --url … hook …``), through the same ``run_hook_command``.
"""

from __future__ import annotations

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.domain.agents import CLIENTS
from ctxdb.hooks.command import MIN_DEADLINE, run_hook_command


@click.command("hook")
@click.option("--client", required=True, type=click.Choice(CLIENTS),
              help="The agent client running the hook.")
@click.option("--deadline", type=click.FloatRange(min=MIN_DEADLINE), metavar="SECONDS",
              help="Seconds of database work allowed (default: per event, e.g. 1 for "
              "SessionEnd, 10 for SessionStart).")
@pass_app
def hook_command(app: Application, client: str, deadline: float | None) -> None:
    """Handle one agent-client hook event read as JSON on stdin.

    Always exits 0 and prints nothing or one JSON object
    ({"hookSpecificOutput": {"hookEventName": …, "additionalContext": …}}); failures go to
    the hook log ($CTXDB_HOOK_LOG, else $XDG_STATE_HOME/ctxdb/hook.log, by default
    ~/.local/state/ctxdb/hook.log). Events: SessionStart (startup, resume, clear, compact),
    UserPromptSubmit, PreCompact, PostCompact, Stop, SubagentStop, SessionEnd; Gemini's
    BeforeAgent, AfterAgent and PreCompress are mapped to their equivalents. See
    docs/hooks.md.

    \b
    Example (.claude/settings.json):
      {"hooks": {"SessionStart": [{"hooks": [{"type": "command",
                 "command": "ctxdb hook --client claude-code"}]}]}}
    """
    run_hook_command(client, deadline, lambda: app.settings, detach=True)
