"""``ctxdb timeline``: what agent sessions did, in order (docs/timeline.md)."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option
from ctxdb.cli.output import console, say, show

# "2026-02-12 21:03:04  command   " before each observation's text.
KIND_WIDTH = 10
PATH_KINDS = ("read", "edit")


def observation_line(observation: dict[str, Any], width: int) -> str:
    """One observation on one line of at most ``width`` characters: its time (UTC, to the
    second), kind and text, cut to fit: a path keeps its end (the file's name), a command
    shows a failure's exit code first (``exit ?`` when its result was not seen)."""
    moment = str(observation["occurred_at"]).replace("T", " ")[:19]
    text = " ".join(str(observation["text"]).split())
    if observation["kind"] == "command" and observation["exit_code"] != 0:
        code = observation["exit_code"]
        text = f"exit {'?' if code is None else code}: {text}"
    prefix = f"{moment}  {observation['kind']:<{KIND_WIDTH}}"
    room = max(width - len(prefix), 2)
    if len(text) > room:
        keep_end = observation["kind"] in PATH_KINDS
        text = "…" + text[-(room - 1):] if keep_end else text[: room - 1] + "…"
    return prefix + text


def session_heading(observation: dict[str, Any]) -> str:
    generation = observation["generation"]
    return (f"session {observation['session_id']}"
            + (f", generation {generation}" if generation is not None else ""))


def print_timeline(observations: list[dict[str, Any]]) -> None:
    """The observations under a heading per session (and generation), one line each."""
    from rich.markup import escape

    if not observations:
        say("[dim]no observations: ingest a transcript (ctxdb ingest-transcript) or let the "
            "hooks record sessions[/dim]")
        return
    out = console()
    heading = None
    for observation in observations:
        if session_heading(observation) != heading:
            heading = session_heading(observation)
            out.print(f"[bold]{escape(heading)}[/bold]", overflow="ellipsis", no_wrap=True)
        out.print(escape(observation_line(observation, out.width)), no_wrap=True)


@click.command("timeline")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="The project (default: the project of the repository here).")
@click.option("--session", "session_id", metavar="SESSION_ID",
              help="Only this agent session (the client's session id).")
@click.option("--since", metavar="WHEN",
              help="Only observations since: ISO-8601 or an age (30m, 12h, 7d).")
@click.option("--limit", "-n", type=click.IntRange(1, 1_000), default=50, show_default=True,
              help="The latest N observations.")
@json_option
@pass_app
def timeline_command(app: Application, project_id: str | None, session_id: str | None,
                     since: str | None, limit: int, as_json: bool) -> None:
    """What agent sessions did, oldest first: prompts, files read and edited, commands with
    their exit code, errors, todo lists, decisions, compactions with their summaries and
    handoffs.

    Observations are extracted from the sessions' transcripts (no language model), each
    once, when the hooks ingest them at the end of every turn or by `ctxdb
    ingest-transcript`; handoffs are added as they are saved. They are searchable too:
    `ctxdb search --kind observation`.

    \b
    Example:
      ctxdb timeline --since 1d
      ctxdb timeline -p proj_… --session 4d5611e5-… --limit 200 --json
    """
    if project_id is None:
        from ctxdb.cli.context import _project_of_current_repository

        project_id = _project_of_current_repository(app)
    observations = app.db().observations.timeline(project_id, session_id=session_id,
                                                  since=since, limit=limit)
    show(observations, as_json, lambda: print_timeline(observations))
