"""``ctxdb gc`` and ``ctxdb context archived|unarchive``: retention (docs/retention.md)."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option, project_option
from ctxdb.cli.output import print_table, say, show
from ctxdb.cli.progress import phase_progress
from ctxdb.service.operations.retention import BATCH

ACTIONS = ("removed", "archived", "sealed")
KIND_LABELS = {
    "memories": "expired memories",
    "instances": "ended instances",
    "session_events": "events of closed sessions",
    "context_items": "old context items",
    "idempotency_keys": "old idempotency keys",
    "audit_entries": "audit entries to seal",
}
ARCHIVED_COLUMNS = ("item_id", "priority", "state", "content_type", "content", "created_at",
                    "archived_at")


def _age(seconds: int) -> str:
    days, rest = divmod(seconds, 86_400)
    return f"{days} days" if days and not rest else f"{seconds} s"


def _kind_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for kind, result in report["kinds"].items():
        count = result["found"] if report["dry_run"] else result["done"]
        age = result["age_seconds"]
        note = "off (age 0)" if not result["enabled"] else result.get("note") or (
            f"older than {_age(age)}" if age else "past their expiry")
        if result.get("kept_referenced"):
            note += f"; {result['kept_referenced']} kept (a remaining item points at them)"
        rows.append({"kind": KIND_LABELS[kind], result["action"]: count, "policy": note})
    return rows


@click.command("gc")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Only this project's records (default: every project).")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@click.option("--batch-size", type=int, default=BATCH, show_default=True,
              help="Most records one transaction changes (1 to 1000); smaller holds the "
                   "write lock for shorter.")
@json_option
@pass_app
def gc_command(app: Application, project_id: str | None, dry_run: bool, batch_size: int,
               as_json: bool) -> None:
    """Apply the retention policy: remove what is expired or long ended, archive old items.

    \b
    - expired memories are removed (with their versions);
    - completed or crashed instances that ended long ago are removed (CTXDB_RETENTION_INSTANCES;
      instances still holding a task lease are kept);
    - the events of sessions closed long ago are removed (CTXDB_RETENTION_SESSION_EVENTS);
    - old context items of the priorities in CTXDB_RETENTION_CONTEXT_PRIORITIES (MEDIUM,LOW
      by default: never CRITICAL unless listed) are archived, not deleted
      (CTXDB_RETENTION_CONTEXT_ITEMS); `ctxdb context unarchive ITEM_ID` brings one back;
    - idempotency keys of creates (the HTTP API's Idempotency-Key) claimed long ago are
      removed (CTXDB_RETENTION_IDEMPOTENCY_KEYS, 7 days by default): a retry after that
      creates anew;
    - the audit entries written since the last sealing are sealed into their projects' hash
      chains (with --project, that project's chain; see `ctxdb audit seal`);
    - then the planner's statistics are refreshed and freed space reclaimed, as
      `ctxdb db optimize` does.

    Each batch is one transaction with its audit row and changes at most --batch-size
    records, so agents can keep writing meanwhile. Ages are in seconds; 0 turns a kind off.

    \b
    Examples:
      ctxdb gc --dry-run
      ctxdb gc --project proj_… --json
    """
    with phase_progress(not as_json) as progress:
        report = app.db().retention.collect(project_id, dry_run=dry_run, progress=progress,
                                            batch_size=batch_size)

    def human() -> None:
        rows = _kind_rows(report)
        if dry_run:
            say("dry run: nothing was changed; this is what gc would do")
            for row in rows:
                row["would"] = next(row.pop(action) for action in ACTIONS if action in row)
            print_table(rows, ("kind", "would", "policy"))
            return
        for row in rows:
            for action in ACTIONS:
                row.setdefault(action, "")
        print_table(rows, ("kind", *ACTIONS, "policy"))
        optimized = report["optimize"]
        say(f"optimized the database: {len(optimized['steps'])} step(s) in "
            f"{optimized['seconds']:g} s (ctxdb db optimize)")

    show(report, as_json, human)


@click.command("archived")
@project_option
@click.option("--after", "after_item_id", type=int, default=0, show_default=True,
              help="Start after this item id (the last one of the previous page).")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@pass_app
def archived_command(app: Application, project_id: str, after_item_id: int, limit: int,
                     as_json: bool) -> None:
    """List a project's archived context items (moved out by `ctxdb gc`), by id."""
    items = app.db().retention.archived(project_id, after_item_id=after_item_id, limit=limit)
    show(items, as_json, lambda: print_table(items, ARCHIVED_COLUMNS, title="archived items",
                                            empty="no archived items"))


@click.command("unarchive")
@click.argument("item_id", type=int)
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Refuse the item unless it belongs to this project.")
@json_option
@pass_app
def unarchive_command(app: Application, item_id: int, project_id: str | None,
                      as_json: bool) -> None:
    """Put an archived context item back, unchanged and with its id.

    Archived items that superseded it come back with it, so that its history stays whole.
    """
    items = app.db().retention.unarchive(item_id, project_id=project_id)
    show(items, as_json, lambda: say(
        "restored " + ", ".join(f"item {i['item_id']} ({i['priority']}, {i['state']})"
                                for i in items)))
