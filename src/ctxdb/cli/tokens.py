"""``ctxdb tokens …``: token usage against each instance's window, and clear-and-reload."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option
from ctxdb.cli.output import print_record, print_table, say, show
from ctxdb.domain.models import PRIORITY_ORDER

USAGE_COLUMNS = ("instance_id", "project_id", "current_token_usage", "context_window",
                 "percentage", "status")


def _rounded(view: dict[str, Any]) -> dict[str, Any]:
    return {**view, "percentage": f"{view['percentage']:.1f}%"}


def print_reload(result: dict[str, Any]) -> None:
    """The handoff that was saved and what was loaded back, per priority."""
    handoff = result["handoff"]
    say(f"cleared instance [bold]{result['instance_id']}[/bold]: {result['tokens_before']} → "
        f"{result['tokens_after']} tokens, generation {result['generation']}")
    print_record({"handoff_id": handoff["handoff_id"], "kind": handoff["kind"],
                  "summary": handoff["summary"], "next_steps": handoff["next_steps"]},
                 title="handoff saved")
    counts = [{"priority": p, "items": result[f"{p.lower()}_items"]} for p in PRIORITY_ORDER]
    print_table(counts, ("priority", "items"),
                title=f"reloaded {result['context_items_loaded']} items")
    omitted = result["critical_omitted"]
    if omitted:
        print_table(omitted, ("item_id", "sequence_number", "content_type", "token_count"),
                    title=f"{len(omitted)} CRITICAL item(s) over the reload budget of "
                    f"{result['manifest']['budget']} tokens, not loaded")
        say("fetch one with `ctxdb context get ITEM_ID`; `ctxdb doctor` names projects whose "
            "CRITICAL items exceed the reload budget")


def _handoff_options(func: Any) -> Any:
    func = click.option("--budget-tokens", type=int, metavar="N",
                        help="Budget of the reload pack (default: CTXDB_PACK_BUDGET_FRACTION "
                        "of the instance's window).")(func)
    func = click.option("--next-step", "next_steps", multiple=True,
                        help="A next step for whoever continues (repeatable).")(func)
    return click.option("--summary", default="", help="What was done so far.")(func)


@click.group("tokens")
def tokens_group() -> None:
    """Track token usage and clear-and-reload instances that near their window."""


@tokens_group.command("update")
@click.argument("instance_id")
@click.argument("tokens", type=int)
@json_option
@pass_app
def update_command(app: Application, instance_id: str, tokens: int, as_json: bool) -> None:
    """Set an instance's current usage to TOKENS (0 … its context window)."""
    view = app.db().tokens.update_usage(instance_id, tokens, actor=app.settings.actor)
    show(view, as_json, lambda: print_record(_rounded(view), title="token usage"))


@tokens_group.command("check")
@click.argument("instance_id")
@json_option
@pass_app
def check_command(app: Application, instance_id: str, as_json: bool) -> None:
    """Show an instance's usage, window and percentage."""
    view = app.db().tokens.check_usage(instance_id)
    show(view, as_json, lambda: print_record(_rounded(view), title="token usage"))


@tokens_group.command("all")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Only this project's instances.")
@json_option
@pass_app
def all_command(app: Application, project_id: str | None, as_json: bool) -> None:
    """Usage of every live instance; 'warning' at or past CTXDB_CLEAR_THRESHOLD."""
    report = app.db().tokens.all_usage(project_id)

    def human() -> None:
        print_table([_rounded(v) for v in report["instances"]], USAGE_COLUMNS,
                    title="token usage", empty="no live instances")
        say(f"{report['total_instances']} instances, {report['total_tokens_used']} tokens "
            f"in use, {report['average_usage']:.0f} on average")

    show(report, as_json, human)


@tokens_group.command("clear")
@click.argument("instance_id")
@_handoff_options
@json_option
@pass_app
def clear_command(app: Application, instance_id: str, summary: str,
                  next_steps: tuple[str, ...], budget_tokens: int | None,
                  as_json: bool) -> None:
    """Clear and reload: save a handoff, reset usage, bump the generation, reload context.

    \b
    Example:
      ctxdb tokens clear inst_… --summary "cart done" --next-step "checkout" --next-step "tests"
    """
    result = app.db().tokens.clear_and_reload(
        instance_id, summary=summary, next_steps=list(next_steps), budget_tokens=budget_tokens,
        actor=app.settings.actor)
    show(result, as_json, lambda: print_reload(result))


@tokens_group.command("auto")
@click.argument("instance_id")
@click.option("--threshold", type=float,
              help="Fraction of the window that triggers a clear (default: "
              "CTXDB_CLEAR_THRESHOLD).")
@_handoff_options
@json_option
@pass_app
def auto_command(app: Application, instance_id: str, threshold: float | None, summary: str,
                 next_steps: tuple[str, ...], budget_tokens: int | None,
                 as_json: bool) -> None:
    """Clear and reload only if usage has reached the threshold (JSON null when not)."""
    result = app.db().tokens.auto_manage(
        instance_id, threshold, summary=summary, next_steps=list(next_steps),
        budget_tokens=budget_tokens, actor=app.settings.actor)
    if result is None:
        show(None, as_json, lambda: say("below the threshold: nothing to do"))
    else:
        show(result, as_json, lambda: print_reload(result))
