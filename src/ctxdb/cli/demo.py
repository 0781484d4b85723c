"""``ctxdb demo``: a guided run of the whole cycle, on a throwaway database unless told one.

Three projects with phases, two or three agent instances each, context at every priority, an
instance pushed past the clear threshold and cleared-and-reloaded (handoff shown), a budgeted
pack with its manifest; then (demo_tour.py) what a new session is given, search, tasks,
messages and an approval gate; and the project summary.

It writes into a new SQLite file in a temporary folder, never into the user's database,
unless a database is named (``--database`` or ``ctxdb --url``). There, demo projects carry
``{"ctxdb_demo": true}`` in their metadata: each run archives the previous run's projects
first and ends its own instances last, so the demo can run any number of times without
reaching a limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.demo_tour import tour
from ctxdb.cli.output import print_table, say
from ctxdb.cli.packs import print_pack_table
from ctxdb.cli.summary import SUMMARY_COLUMNS
from ctxdb.cli.tokens import USAGE_COLUMNS, print_reload
from ctxdb.domain.pack_formats import pack_payload

if TYPE_CHECKING:
    from ctxdb.service import Ctxdb

DEMO_MARK = "ctxdb_demo"
STEPS = 14
DEMO_WINDOW = 200_000
ROLES = ("reviewer", "developer")  # instance metadata "role", what messages address


@dataclass(frozen=True)
class DemoProject:
    name: str
    description: str
    story_points: int
    phases: tuple[str, ...]
    clients: tuple[str, ...]
    context: tuple[tuple[str, str, Any], ...]  # (priority, content type, content)


PROJECTS = (
    DemoProject(
        "Demo web shop", "e-commerce rewrite", 300, ("Checkout", "Payments"),
        ("claude-code", "codex", "gemini"),
        (
            ("CRITICAL", "decision", {"decision": "payments go through Stripe, never stored"}),
            ("CRITICAL", "constraint", {"rule": "all prices are integer cents"}),
            ("HIGH", "code", {"file": "cart.py", "note": "cart totals moved to the server"}),
            ("HIGH", "decision", {"decision": "checkout is one page, guest checkout allowed"}),
            ("MEDIUM", "note", {"note": "coupon codes are case-insensitive"}),
            ("MEDIUM", "code", {"file": "checkout.py", "todo": "retry declined cards once"}),
            ("LOW", "note", {"note": "design review notes: " + "spacing, colours, copy; " * 40}),
            ("LOW", "log", {"log": "load test: p95 checkout 180 ms at 200 rps " * 20}),
        ),
    ),
    DemoProject(
        "Demo data pipeline", "nightly ingestion of partner feeds", 200, ("Ingest", "Report"),
        ("claude-code", "codex"),
        (
            ("CRITICAL", "decision", {"decision": "raw feeds are immutable; fix downstream"}),
            ("HIGH", "code", {"file": "ingest/csv.py", "note": "detect the delimiter"}),
            ("MEDIUM", "note", {"note": "partner B sends Latin-1, convert at the edge"}),
            ("LOW", "note", {"note": "nice to have: a dashboard of feed freshness"}),
        ),
    ),
    DemoProject(
        "Demo mobile app", "offline-first notes app", 150, ("Sync", "Release"),
        ("gemini", "claude-code", "codex"),
        (
            ("CRITICAL", "constraint", {"rule": "never drop a local edit during sync"}),
            ("HIGH", "decision", {"decision": "last-writer-wins per field, not per note"}),
            ("MEDIUM", "code", {"file": "sync/queue.ts", "note": "batch uploads by 50"}),
            ("LOW", "note", {"note": "app store screenshots still to do"}),
        ),
    ),
)


def step(number: int, text: str) -> None:
    click.echo()
    say(f"[bold cyan]{number}/{STEPS}[/bold cyan] [bold]{text}[/bold]")


def archive_previous_runs(db: Ctxdb, actor: str) -> int:
    """Archive earlier demo projects, ending any instances a crashed run left behind."""
    previous = [p for p in db.projects.list() if p["metadata"].get(DEMO_MARK) is True]
    for project in previous:
        for instance in db.instances.list(project["project_id"]):
            if instance["status"] in ("active", "idle"):
                db.instances.end(instance["instance_id"], actor=actor)
        db.projects.archive(project["project_id"], actor=actor)
    return len(previous)


def create_projects(db: Ctxdb, actor: str) -> list[dict[str, Any]]:
    created = []
    for spec in PROJECTS:
        project = db.projects.create(spec.name, spec.description, spec.story_points,
                                     {DEMO_MARK: True}, actor=actor)
        phases = [db.phases.create(project["project_id"], number, name, actor=actor)
                  for number, name in enumerate(spec.phases, start=1)]
        db.phases.start(phases[0]["phase_id"], actor=actor)
        created.append({**project, "spec": spec, "phase_id": phases[0]["phase_id"]})
    return created


def launch_instances(db: Ctxdb, projects: list[dict[str, Any]]) -> dict[str, list[str]]:
    launched: dict[str, list[str]] = {}
    for project in projects:
        pid = project["project_id"]
        launched[pid] = [
            db.instances.launch(pid, project["phase_id"], client=client, model="demo",
                                context_window=DEMO_WINDOW,
                                session_id=f"demo-{index}",
                                metadata={"role": ROLES[index % len(ROLES)]})["instance_id"]
            for index, client in enumerate(project["spec"].clients, start=1)
        ]
    return launched


def store_context(db: Ctxdb, projects: list[dict[str, Any]],
                  instances: dict[str, list[str]]) -> int:
    stored = 0
    for project in projects:
        pid = project["project_id"]
        writer = instances[pid][0]
        for priority, content_type, content in project["spec"].context:
            db.context.store(pid, content, priority, content_type, project["phase_id"],
                             created_by=writer)
            stored += 1
    return stored


def report_usage(db: Ctxdb, projects: list[dict[str, Any]]) -> None:
    rows = []
    for project in projects:
        for view in db.tokens.all_usage(project["project_id"])["instances"]:
            rows.append({**view, "percentage": f"{view['percentage']:.1f}%"})
    print_table(rows, USAGE_COLUMNS, title="token usage")


def run_demo(db: Ctxdb, actor: str, threshold: float) -> None:
    step(1, "Archive the projects of earlier demo runs (their data is kept).")
    say(f"archived {archive_previous_runs(db, actor)} earlier demo project(s)")

    step(2, "Create 3 projects, each with 2 phases; the first phase is started.")
    projects = create_projects(db, actor)
    print_table(projects, ("project_id", "name", "description", "phase_id"), title="projects")

    step(3, "Launch 2–3 agent instances per project (Claude Code, Codex, Gemini CLI).")
    instances = launch_instances(db, projects)
    for project in projects:
        say(f"{project['name']}: {', '.join(instances[project['project_id']])}")

    step(4, "Store context at every priority: CRITICAL, HIGH, MEDIUM, LOW.")
    say(f"stored {store_context(db, projects, instances)} context items")
    first = projects[0]["project_id"]
    counts = db.context.counts(first)
    print_table([{"priority": p, **c} for p, c in counts.items()], ("priority", "items", "tokens"),
                title=f"context of {projects[0]['name']}")

    step(5, f"Report token usage; one instance passes the clear threshold ({threshold:.0%}).")
    busy = instances[first][0]
    for index, instance_id in enumerate(instances[first]):
        db.tokens.update_usage(instance_id, int(DEMO_WINDOW * (0.9 if index == 0 else 0.3)))
    report_usage(db, projects[:1])

    step(6, "Clear and reload it: save a handoff, reset usage, reload context by priority.")
    reload = db.tokens.auto_manage(
        busy, summary="checkout page done; card retries half-way",
        next_steps=["finish the retry of declined cards", "write checkout tests"])
    if reload is None:  # only when CTXDB_CLEAR_THRESHOLD is above 0.9
        reload = db.tokens.clear_and_reload(busy, summary="manual clear for the demo")
    print_reload(reload)

    step(7, "Build a budgeted pack: all CRITICAL, then the rest until the budget is spent.")
    # Room for every CRITICAL, HIGH and MEDIUM item plus a little: the large LOW notes are
    # left out, and the manifest says so.
    budget = sum(counts[p]["tokens"] for p in ("CRITICAL", "HIGH", "MEDIUM")) + 40
    say(f"budget {budget} tokens: every CRITICAL, HIGH and MEDIUM item fits, the large LOW "
        "notes do not")
    print_pack_table(pack_payload(first, db.context.pack(first, budget)))

    tour(db, projects[0], instances[first], actor, step)

    step(13, "The project summary (the seed's v_project_summary).")
    ours = {p["project_id"] for p in projects}
    rows = [row for row in db.projects.summary() if row["project_id"] in ours]
    print_table(rows, SUMMARY_COLUMNS, title="project summary")

    step(14, "End the demo's instances, as their sessions would end.")
    ended = [db.instances.end(i, actor=actor) for ids in instances.values() for i in ids]
    say(f"ended {len(ended)} instances")


@click.command("demo")
@click.option("--database", metavar="URL",
              help="Run on this database (a SQLite path or postgresql://…) instead of a "
                   "throwaway one; the global --url does the same.")
@pass_app
def demo_command(app: Application, database: str | None) -> None:
    """A guided tour of ctxdb, on a throwaway database (safe to run again and again).

    Creates 3 demo projects with instances and context, clears and reloads an instance
    that passed its threshold, builds a budgeted pack, shows what a new agent session is
    given, searches, works a task queue, exchanges messages, approves a deploy and prints
    the summary. It runs on a new SQLite file in a temporary folder (kept, so that you can
    look around afterwards) and never touches your own database unless you name one with
    --database (or ctxdb --url); there, the previous run's demo projects are archived first.

    \b
    Examples:
      ctxdb demo                                 on a throwaway SQLite file
      ctxdb demo --database /tmp/demo.db         on a file of your choice
      ctxdb --url postgresql://postgres@127.0.0.1/ctxdb demo
    """
    from ctxdb.service.operations import schema

    throwaway = database is None and app.url is None
    if database is not None:
        app.url = database
    elif throwaway:
        import tempfile
        from pathlib import Path

        app.url = str(Path(tempfile.mkdtemp(prefix="ctxdb-demo-")) / "ctxdb.db")
    settings = app.settings
    db = app.db()
    backend = "PostgreSQL" if settings.is_postgres else "SQLite"
    where = "a throwaway database" if throwaway else "your database"
    say(f"[bold]ctxdb demo[/bold] on {where} ({backend}): {schema.location(settings)}")
    run_demo(db, settings.actor, settings.clear_threshold)
    click.echo()
    again = f"ctxdb --url {app.url}" if throwaway else "ctxdb"
    say(f"[bold green]done.[/bold green] Look around with: {again} summary (or project list, "
        "context --project <id> --format markdown, audit)")
