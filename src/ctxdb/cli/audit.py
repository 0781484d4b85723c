"""``ctxdb audit``: the audit log, and its hash chains sealed and verified."""

from __future__ import annotations

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option
from ctxdb.cli.output import EXIT_OK, EXIT_UNHEALTHY, print_table, say, show
from ctxdb.cli.progress import phase_progress

AUDIT_COLUMNS = ("audit_id", "occurred_at", "actor", "action", "entity_type", "entity_id",
                 "details")


@click.group("audit", invoke_without_command=True)
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Only entries of this project.")
@click.option("--entity", "entity_id", metavar="ID",
              help="Only entries about this entity (a project, instance, phase or item id).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True,
              help="How many entries, newest first.")
@json_option
@click.pass_context
def audit_command(ctx: click.Context, project_id: str | None, entity_id: str | None,
                  limit: int, as_json: bool) -> None:
    """Recent audit entries, newest first: who changed what, and when.

    Every change ctxdb makes writes one entry, in the change's own transaction. `ctxdb audit
    seal` chains the entries written so far by hash (one chain per project), and `ctxdb audit
    verify` recomputes the chains: an entry changed or removed after it was sealed is named.

    \b
    Examples:
      ctxdb audit -p proj_… --limit 20
      ctxdb audit seal
      ctxdb audit verify --json
    """
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(Application)
    assert app is not None
    rows = app.db().audit_log(project_id, entity_id, limit)
    show(rows, as_json, lambda: print_table(rows, AUDIT_COLUMNS, title="audit log",
                                           empty="no audit entries"))


@audit_command.command("seal")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Only this project's chain (default: every chain).")
@json_option
@pass_app
def audit_seal_command(app: Application, project_id: str | None, as_json: bool) -> None:
    """Seal the audit entries written since the last sealing into their projects' hash
    chains (`ctxdb gc` does it too). Prints how many, and each chain's head: keep the heads
    elsewhere to notice later a chain rewritten as a whole."""
    with phase_progress(not as_json) as progress:
        result = app.db().audit_chain.seal(project_id, progress=progress)

    def human() -> None:
        say(f"sealed {result['sealed']} audit entries")
        print_table(_chain_rows(result["chains"]), ("chain", "seals", "head"),
                    title="chain heads", empty="no audit entries")

    show(result, as_json, human)


@audit_command.command("verify")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Only this project's chain (default: every chain).")
@json_option
@pass_app
def audit_verify_command(app: Application, project_id: str | None, as_json: bool) -> int:
    """Recompute every hash chain of the audit log from its entries. Exits with status 7
    when an entry was changed or removed after it was sealed, or a seal was removed or
    rewritten; entries not sealed yet are counted, not judged."""
    with phase_progress(not as_json) as progress:
        result = app.db().audit_chain.verify(project_id, progress=progress)

    def human() -> None:
        from rich.markup import escape

        print_table(_chain_rows(result["chains"]), ("chain", "seals", "head"),
                    title="audit chains", empty="no sealed entries")
        say(f"{result['sealed']} sealed entries, {result['unsealed']} not sealed yet")
        for problem in result["problems"]:
            say(f"problem: {escape(problem)}")
        if result["problem_count"] > len(result["problems"]):
            say(f"… and {result['problem_count'] - len(result['problems'])} more")
        say("ok: every sealed entry is as it was sealed" if result["ok"]
            else f"FAILED: {result['problem_count']} problem(s)")

    show(result, as_json, human)
    return EXIT_OK if result["ok"] else EXIT_UNHEALTHY


def _chain_rows(chains: dict[str, dict[str, object]]) -> list[dict[str, object]]:
    return [{"chain": chain or "(no project)", **state} for chain, state in chains.items()]
