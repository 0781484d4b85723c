"""``ctxdb ingest-transcript PATH``: record a transcript's token usage, compactions and
observations (the session's timeline)."""

from __future__ import annotations

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option
from ctxdb.cli.output import print_table, say, show
from ctxdb.domain.agents import CLIENTS


@click.command("ingest-transcript")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--session-id", help="The session the transcript belongs to (default: read "
              "from the transcript).")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="The project to file it under (default: the project of the session's "
              "instance, if ctxdb knows it).")
@click.option("--client", type=click.Choice(CLIENTS), default="claude-code", show_default=True,
              help="The agent client that wrote the transcript: each has its own format "
              "(Gemini CLI's chats/session-*.jsonl, Codex's sessions/…/rollout-*.jsonl).")
@click.option("--no-subagents", is_flag=True,
              help="Skip the subagent transcripts in <session>/subagents/.")
@json_option
@pass_app
def ingest_command(app: Application, path: str, session_id: str | None,
                   project_id: str | None, client: str, no_subagents: bool,
                   as_json: bool) -> None:
    """Ingest an agent's transcript (JSONL; Claude Code's unless --client says otherwise):
    token usage per API response, compaction boundaries and their summaries, and what the
    session did (its observations: `ctxdb timeline`), when its project is known.

    Incremental and idempotent: the byte offset read so far is stored, so running it again
    reads only what was appended (nothing new: nothing written). Usage is recorded once per
    API response (message id), from the response's latest record. Bad lines are skipped,
    counted (skipped_lines) and read past: they never stop the ingestion.

    \b
    Example:
      ctxdb ingest-transcript ~/.claude/projects/-home-me-shop/4d5611e5-….jsonl --json
      ctxdb ingest-transcript --client gemini ~/.gemini/tmp/shop/chats/session-….jsonl
    """
    result = app.db().transcripts.ingest(path, session_id=session_id, project_id=project_id,
                                         include_subagents=not no_subagents,
                                         actor=app.settings.actor, client=client)

    def human() -> None:
        print_table(result["files"], ("path", "from_offset", "to_offset", "records",
                                      "usage_entries", "compactions", "observations",
                                      "skipped_lines", "reset"),
                    title="ingested")
        skipped = result["skipped_lines"]
        say(f"{result['records']} new records, {result['usage_entries']} usage entries, "
            f"{result['compactions']} new compactions, {result['observations']} new observations"
            + (f", {skipped} line{'s' if skipped != 1 else ''} skipped (not JSON, nested too "
               "deep, too long, or a key that cannot be stored)" if skipped else ""))

    show(result, as_json, human)
