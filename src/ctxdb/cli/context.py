"""``ctxdb context …``: store and read prioritized context, and build the budgeted pack."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import (
    JSON_OBJECT,
    content_options,
    json_option,
    project_option,
    read_content,
)
from ctxdb.cli.output import emit_json, print_record, print_table, show
from ctxdb.cli.packs import PACK_FORMATS, print_pack_table
from ctxdb.domain.agents import CLIENTS, RepoIdentity
from ctxdb.domain.models import DEFAULT_CONTENT_TYPE
from ctxdb.domain.pack_formats import pack_payload
from ctxdb.domain.render import MAX_INJECTION_CHARS, injection_title, render_context
from ctxdb.errors import ProjectNotFoundError

# ``--format markdown`` renders every packed item: a cap no pack reaches.
UNCAPPED = 10**12

ITEM_COLUMNS = ("item_id", "sequence_number", "priority", "content_type", "token_count",
                "phase_id", "content")


def _default_budget(app: Application) -> int:
    return int(app.settings.context_window * app.settings.pack_budget_fraction)


def _build_pack(app: Application, project_id: str, budget: int | None,
                phase_id: int | None, partial_critical: bool = False) -> dict[str, Any]:
    budget = _default_budget(app) if budget is None else budget
    pack = app.db().context.pack(project_id, budget, phase_id,
                                 partial_critical=partial_critical)
    # A server answers the pack in its JSON form already (ctxdb.connect).
    return pack if isinstance(pack, dict) else pack_payload(project_id, pack)


def show_item(item: dict[str, Any], as_json: bool) -> None:
    show(item, as_json, lambda: print_record(item, title=f"context item {item['item_id']}"))


@click.group("context", invoke_without_command=True)
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="The project whose context to print (default: the project of the git "
              "repository of the current directory).")
@click.option("--budget-tokens", type=int, metavar="N",
              help="Token budget (default: CTXDB_CONTEXT_WINDOW × CTXDB_PACK_BUDGET_FRACTION).")
@click.option("--phase", "phase_id", type=int, help="Rank this phase first (default: current).")
@click.option("--instance", "instance_id", metavar="INSTANCE_ID",
              help="Put this instance's latest handoff first, as the reload after a "
              "compaction or /clear does.")
@click.option("--format", "output_format", type=click.Choice(PACK_FORMATS), default="text",
              show_default=True, help="text: exactly what a hook injects (under 10,000 "
              "characters); markdown: the same without the cap; json: pack, manifest, text.")
@click.option("--as-new-session", is_flag=True,
              help="Print exactly what a new session started here would receive: the pack, "
              "where the project's work left off and the live sibling sessions (text and "
              "markdown alike; json adds the handoff offered).")
@click.option("--client", type=click.Choice(CLIENTS),
              help="With --as-new-session: the client of that session, whose injection limit "
              "applies (default: claude-code).")
@click.pass_context
def context_group(ctx: click.Context, project_id: str | None, budget_tokens: int | None,
                  phase_id: int | None, instance_id: str | None, output_format: str,
                  as_new_session: bool, client: str | None) -> None:
    """Print the budgeted pack a hook would inject, or manage context items.

    Without a subcommand: every CRITICAL item, then HIGH, MEDIUM and LOW (current phase
    first, newest first) within the budget, rendered as the SessionStart hook injects it
    (with --instance, that instance's handoff first). When CRITICAL items alone exceed the
    budget, those that fit (in sequence order) are shown and the others named, as a reload
    does; `ctxdb context pack` refuses such a budget (exit 5).

    With --as-new-session: exactly what a new agent session started here would receive,
    the pack, then where the project's work left off and the live sibling sessions.

    \b
    Examples:
      ctxdb context --budget-tokens 8000
      ctxdb context --as-new-session --client codex
      ctxdb context --project proj_… --format json
      ctxdb context store --project proj_… '{"decision": "use Stripe"}' --priority CRITICAL
      ctxdb context list --project proj_… --json
    """
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.ensure_object(Application)
    if as_new_session:
        if budget_tokens is not None or phase_id is not None or instance_id is not None:
            raise click.UsageError("--as-new-session takes neither --budget-tokens, --phase "
                                   "nor --instance: a new session gets the default pack")
        _print_new_session(app, project_id, client or "claude-code", output_format)
        return
    if client is not None:
        raise click.UsageError("--client needs --as-new-session")
    project_id = project_id or _project_of_current_repository(app)
    payload = _build_pack(app, project_id, budget_tokens, phase_id, partial_critical=True)
    handoff = None
    if instance_id is not None:
        handoff = app.db().tokens.latest_handoff(instance_id=instance_id,
                                                 project_id=project_id)
    source = "compact" if handoff else "startup"
    rendered = render_context(
        payload["items"], title=injection_title(project_id, source),
        handoff_text=handoff["summary"] if handoff else None,
        max_chars=MAX_INJECTION_CHARS if output_format == "text" else UNCAPPED,
        critical_omitted=payload["critical_omitted"])
    if output_format == "json":
        emit_json({**payload, "handoff": handoff, "text": rendered.text,
                   "injected_item_ids": rendered.item_ids})
    elif rendered.text:
        click.echo(rendered.text)
    else:
        # Nothing would be injected: said on stderr, so that stdout stays exactly the text.
        click.echo(f"nothing to inject: project {project_id} has no live context items "
                   "(ctxdb context store)", err=True)


def _print_new_session(app: Application, project_id: str | None, client: str,
                       output_format: str) -> None:
    """What SessionStart (startup) of a new ``client`` session here would inject."""
    import os

    from ctxdb.repo_identity import repo_identity

    repo = repo_identity(os.getcwd())
    project_id = project_id or _project_of_current_repository(app, repo)
    context = app.db().continuity.new_session(project_id, client, repo)
    if output_format == "json":
        emit_json(context)
    else:
        click.echo(context["text"])


def _project_of_current_repository(app: Application, repo: RepoIdentity | None = None) -> str:
    import os

    from ctxdb.repo_identity import repo_identity

    # Computed here (git runs on this machine); through a server, the project is looked up
    # among those the token sees.
    repo = repo or repo_identity(os.getcwd())
    project = app.db().sessions.find_project(repo.repo_key)
    if project is None:
        raise ProjectNotFoundError(
            f"no project for the repository at {repo.worktree} (key {repo.repo_key!r}); "
            "pass --project, or start an agent session here with the ctxdb hooks installed",
            repo_key=repo.repo_key)
    return str(project["project_id"])


@context_group.command("store")
@project_option
@content_options
@click.option("--priority", default="HIGH", show_default=True,
              help="CRITICAL, HIGH, MEDIUM or LOW.")
@click.option("--type", "content_type", default=DEFAULT_CONTENT_TYPE, show_default=True,
              help="What kind of content: code, decision, note, …")
@click.option("--phase", "phase_id", type=int, help="The phase the item belongs to.")
@click.option("--token-count", type=int, help="Exact token count (default: estimated).")
@click.option("--metadata", type=JSON_OBJECT, help="Extra data as a JSON object.")
@click.option("--created-by", metavar="INSTANCE_ID", help="The instance that wrote it.")
@click.option("--key", "idempotency_key",
              help="Idempotency key: storing the same item again with it returns the first "
                   "one; other content, priority, type or metadata with it is refused.")
@json_option
@pass_app
def store_command(app: Application, /, project_id: str, content: str | None, file: str | None,
                  as_text: bool, as_json: bool, **fields: Any) -> None:
    """Store one context item; CONTENT is JSON (or use --file, stdin, --text).

    \b
    Examples:
      ctxdb context store -p proj_… '{"decision": "payments via Stripe"}' --priority CRITICAL
      git diff | ctxdb context store -p proj_… --text --type diff --priority LOW
    """
    value = read_content(content, file, as_text)
    item = app.db().context.store(project_id, value, fields.pop("priority"),
                                  fields.pop("content_type"), fields.pop("phase_id"),
                                  actor=app.settings.actor, **fields)
    show_item(item, as_json)


@context_group.command("get")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Only an item of this project: another project's item is refused.")
@click.argument("item_id", type=int)
@json_option
@pass_app
def get_command(app: Application, project_id: str | None, item_id: int, as_json: bool) -> None:
    """Show one context item, whatever its state (active, superseded, deleted).

    ITEM_ID is the item id: the number shown as `#41` in the injected context and in
    `ctxdb context`, and in the item_id column of `ctxdb context list` (not the sequence
    number). With --project (here or on `ctxdb context`), an item of another project is
    refused rather than shown.
    """
    # An empty --project is refused as such, not read as no project (which would show the
    # item of any project).
    scope = project_id if project_id is not None else _group_project()
    show_item(app.db().context.get(item_id, scope), as_json)


def _group_project() -> str | None:
    """The --project given to ``ctxdb context`` itself (``ctxdb context -p P get 41``)."""
    parent = click.get_current_context().parent
    value = parent.params.get("project_id") if parent is not None else None
    return value if isinstance(value, str) else None


@context_group.command("list")
@project_option
@click.option("--phase", "phase_id", type=int, help="Only items of this phase.")
@json_option
@pass_app
def list_command(app: Application, project_id: str, phase_id: int | None,
                 as_json: bool) -> None:
    """List every live item of a project, grouped by priority (JSON: an object per priority)."""
    grouped = app.db().context.full(project_id, phase_id)

    def human() -> None:
        for priority, items in grouped.items():
            print_table(items, ITEM_COLUMNS, title=f"{priority} ({len(items)})",
                        empty=f"{priority}: no items")

    show(grouped, as_json, human)


@context_group.command("page")
@project_option
@click.option("--priority", required=True, help="CRITICAL, HIGH, MEDIUM or LOW.")
@click.option("--after", "after_sequence", type=int, default=0, show_default=True,
              help="Return items after this sequence number (from next_after_sequence).")
@click.option("--limit", type=int, default=100, show_default=True, help="Items per page.")
@json_option
@pass_app
def page_command(app: Application, project_id: str, priority: str, after_sequence: int,
                 limit: int, as_json: bool) -> None:
    """One page of live items of a priority, in sequence order (keyset paging)."""
    page = app.db().context.page(project_id, priority, after_sequence, limit)

    def human() -> None:
        print_table(page["items"], ITEM_COLUMNS, empty="no more items")
        if page["next_after_sequence"] is not None:
            click.echo(f"next page: --after {page['next_after_sequence']}")

    show(page, as_json, human)


@context_group.command("pack")
@project_option
@click.option("--budget-tokens", type=int, metavar="N",
              help="Token budget (default: CTXDB_CONTEXT_WINDOW × CTXDB_PACK_BUDGET_FRACTION).")
@click.option("--phase", "phase_id", type=int, help="Rank this phase first (default: current).")
@json_option
@pass_app
def pack_command(app: Application, project_id: str, budget_tokens: int | None,
                 phase_id: int | None, as_json: bool) -> None:
    """The budgeted pack with its manifest: what was included, omitted and why."""
    payload = _build_pack(app, project_id, budget_tokens, phase_id)
    show(payload, as_json, lambda: print_pack_table(payload))


@context_group.command("supersede")
@click.argument("item_id", type=int)
@content_options
@click.option("--priority", help="New priority (default: the old item's).")
@click.option("--type", "content_type", help="New content type (default: the old item's).")
@click.option("--token-count", type=int, help="Exact token count (default: estimated).")
@click.option("--metadata", type=JSON_OBJECT, help="New metadata (default: the old item's).")
@json_option
@pass_app
def supersede_command(app: Application, /, item_id: int, content: str | None, file: str | None,
                      as_text: bool, as_json: bool, **fields: Any) -> None:
    """Replace an item by a new one; the old one is kept, marked superseded."""
    value = read_content(content, file, as_text)
    item = app.db().context.supersede(item_id, value, actor=app.settings.actor, **fields)
    show_item(item, as_json)


@context_group.command("delete")
@click.argument("item_id", type=int)
@json_option
@pass_app
def delete_command(app: Application, item_id: int, as_json: bool) -> None:
    """Delete an item: it leaves every load and pack, and stays in the history."""
    show_item(app.db().context.delete(item_id), as_json)


def _add_archive_commands() -> None:
    # Defined with `ctxdb gc` (cli/gc.py), which is what archives items.
    from ctxdb.cli.gc import archived_command, unarchive_command

    context_group.add_command(archived_command)
    context_group.add_command(unarchive_command)


_add_archive_commands()
