"""``ctxdb search QUERY``: full-text search over a project's context, memories, events and
observations."""

from __future__ import annotations

import re
from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option, project_option
from ctxdb.cli.output import console, say, show
from ctxdb.domain.models import Priority, choices
from ctxdb.domain.vocabulary import SearchKind

_MARKED = re.compile(r"\*\*(.+?)\*\*")


def where(hit: dict[str, Any]) -> str:
    """Where the record lives: what to pass to ``context get``, ``memory get``, ``session``."""
    if hit["kind"] == "context":
        return f"item {hit['id']} (#{hit['sequence']}, {hit['priority']})"
    if hit["kind"] == "memory":
        return f"{hit['namespace']}/{hit['key']} v{hit['version']}"
    if hit["kind"] == "observation":
        return f"{hit['session_id']} observation {hit['id']}"
    return f"{hit['session_id']} #{hit['sequence']}"


def highlighted(snippet: str) -> str:
    """The snippet as Rich markup: its text escaped, the matched words (``**…**``) in bold."""
    from rich.markup import escape

    return _MARKED.sub(r"[bold]\1[/bold]", escape(snippet))


def print_hits(hits: list[dict[str, Any]], query: str) -> None:
    from rich.table import Table

    if not hits:
        say(f"[dim]nothing matches {query!r}[/dim]")
        return
    table = Table(title=f"{len(hits)} best matches for {query!r}", title_justify="left")
    for column in ("kind", "where", "type", "time", "score", "snippet"):
        table.add_column(column, no_wrap=column in ("kind", "time", "score"), overflow="fold")
    for hit in hits:
        table.add_row(hit["kind"], where(hit), hit["type"], hit["time"], f"{hit['score']:.3g}",
                      highlighted(hit["snippet"]))
    console().print(table)


@click.command("search")
@project_option
@click.argument("words", nargs=-1, required=True)
@click.option("--kind", "kinds", multiple=True, type=click.Choice(choices(SearchKind)),
              help="Only this kind of record (repeat for several; default: all).")
@click.option("--type", "content_type", metavar="TYPE",
              help="Only records of this type: an item's content type, a memory's type or an "
              "event's role.")
@click.option("--priority", type=click.Choice(choices(Priority), case_sensitive=False),
              help="Only context items of this priority.")
@click.option("--namespace", metavar="PATH",
              help="Only memories in this namespace path or below it.")
@click.option("--since", metavar="WHEN",
              help="Only records written at or after WHEN: 2025-01-31, 2025-01-31T12:00Z, or "
              "an age such as 30m, 12h, 7d.")
@click.option("--until", metavar="WHEN", help="Only records written before WHEN.")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--raw", is_flag=True,
              help="WORDS are in the engine's own syntax (SQLite FTS5, PostgreSQL to_tsquery).")
@json_option
@pass_app
def search_command(app: Application, project_id: str, words: tuple[str, ...],
                   kinds: tuple[str, ...],
                   content_type: str | None, priority: str | None, namespace: str | None,
                   since: str | None, until: str | None, limit: int, raw: bool,
                   as_json: bool) -> None:
    """Find the project's context items, memories and conversation events by their WORDS.

    Records with every word come first, then those with some of them; a word finds its
    other forms (retry: retried) and the words of identifiers (config: parseConfig,
    parse_config); "a phrase" must occur in order; -word must not occur; 'or' between words
    gives alternatives; word* matches words starting with word. Best matches first (weighed
    by priority and age), each with a snippet in which the matching words are marked.

    \b
    Examples:
      ctxdb search -p proj_… stripe webhook
      ctxdb search -p proj_… '"payment intent" -refund' --kind context --since 7d
      ctxdb search -p proj_… 'theme or colours' --namespace user:prefs --json
    """
    query = " ".join(words)
    hits = app.db().search.search(
        project_id, query, kinds=kinds or tuple(SearchKind), priority=priority,
        content_type=content_type, namespace=namespace, since=since, until=until, limit=limit,
        raw=raw)
    show(hits, as_json, lambda: print_hits(hits, query))
