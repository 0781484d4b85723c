"""``ctxdb hook --client …``: the one command every agent-client hook runs.

Kept lean on purpose (it starts on every prompt): no rich, and the service layer is imported
only once the input is known to be an event ctxdb handles. See ``ctxdb.hooks.dispatch``.
"""

from __future__ import annotations

import sys

import click

from ctxdb.cli.application import Application, pass_app

CLIENTS = ("claude-code", "codex", "gemini")


@click.command("hook")
@click.option("--client", required=True, type=click.Choice(CLIENTS),
              help="The agent client running the hook.")
@click.option("--deadline", type=click.FloatRange(min=0.05), metavar="SECONDS",
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
    from ctxdb.hooks.dispatch import run_hook

    try:
        raw = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    except OSError:
        raw = ""
    output = run_hook(client, raw, lambda: app.settings, deadline)
    if output is not None:
        sys.stdout.write(output + "\n")
        sys.stdout.flush()
