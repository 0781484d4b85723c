"""The demo's second half: what agents see and do with each other, on the first demo project.

What a new session is given at its start, a search over the project's records, a task queue
worked by two instances, messages to a role and to one instance, and an approval gate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ctxdb.cli.approval import GATE_COLUMNS
from ctxdb.cli.message import INBOX_COLUMNS
from ctxdb.cli.output import print_table, say
from ctxdb.cli.search import print_hits
from ctxdb.cli.task import TASK_COLUMNS

if TYPE_CHECKING:
    from ctxdb.service import Ctxdb

# Lines of the injected text shown: enough to see its shape, not a screenful.
SHOWN_LINES = 12
LINE_CHARS = 100
TASKS = (("Write checkout tests", "HIGH"), ("Retry declined cards once", "CRITICAL"),
         ("Polish the receipt email", "LOW"))


def show_new_session(db: Ctxdb, project_id: str) -> None:
    """The text SessionStart injects into a new Claude Code session of the project."""
    text = db.continuity.new_session(project_id, "claude-code")["text"]
    lines = text.splitlines()
    for line in lines[:SHOWN_LINES]:
        click.echo(f"  │ {line if len(line) <= LINE_CHARS else line[:LINE_CHARS - 1] + '…'}")
    if len(lines) > SHOWN_LINES:
        click.echo(f"  │ … {len(lines) - SHOWN_LINES} more line(s)")
    say("(print it any time with: ctxdb context --as-new-session)")


def show_search(db: Ctxdb, project_id: str, query: str) -> None:
    print_hits(db.search.search(project_id, query, limit=5), query)


def work_tasks(db: Ctxdb, project_id: str, workers: list[str], actor: str) -> None:
    """Three tasks (priorities by name); two instances claim the most urgent ones, one is
    done; the other stays leased, the last one waits."""
    for title, priority in TASKS:
        db.tasks.create(project_id, title, priority=priority, actor=actor)
    for worker in workers[:2]:
        task = db.tasks.claim(project_id, worker, lease_seconds=600, actor=actor)
        if task is not None and worker == workers[0]:
            db.tasks.complete(task["task_id"], task["epoch"], {"tests": 12}, actor=actor)
    print_table(db.tasks.list(project_id), TASK_COLUMNS, title="tasks")


def exchange_messages(db: Ctxdb, project_id: str, instances: list[str]) -> None:
    """A message to the reviewers (a role) and one to an instance; its inbox shows both."""
    lead, reviewer = instances[0], instances[1]  # the second has the role "reviewer"
    db.messages.send(project_id, "role", "reviewer", "checkout freeze at 17:00",
                     subject="heads-up", sender=lead)
    db.messages.send(project_id, "instance", reviewer,
                     {"review": "cart.py", "why": "totals moved to the server"},
                     subject="review please", sender=lead)
    inbox = db.messages.inbox(reviewer, project_id=project_id)
    print_table(inbox, INBOX_COLUMNS, title=f"inbox of {reviewer}")
    for message in inbox:
        db.messages.ack(message["message_id"], reviewer, project_id=project_id)
    say(f"{reviewer} acknowledged {len(inbox)} message(s)")


def approve_deploy(db: Ctxdb, project_id: str, requester: str, actor: str) -> None:
    """An agent asks before deploying; a person approves (ctxdb approval approve)."""
    gate = db.approvals.request(project_id, "deploy", {"target": "staging"},
                                title="deploy checkout to staging", instance_id=requester,
                                actor=actor)
    db.approvals.approve(gate["gate_id"], {"note": "go ahead"}, project_id=project_id,
                         actor=actor)
    print_table(db.approvals.list(project_id), GATE_COLUMNS, title="approval gates")


def tour(db: Ctxdb, project: dict[str, Any], instances: list[str], actor: str,
         step: Any) -> None:
    """Steps 8 to 12 of the demo, on ``project`` and its ``instances``."""
    pid = project["project_id"]
    step(8, "What a new agent session of this project is given when it starts.")
    show_new_session(db, pid)
    step(9, "Search the project's context, memories and events.")
    show_search(db, pid, "stripe")
    step(10, "A task queue: instances claim the most urgent task first, with a lease.")
    work_tasks(db, pid, instances, actor)
    step(11, "Messages between instances: to a role (reviewer) and to one instance.")
    exchange_messages(db, pid, instances)
    step(12, "An approval gate: an agent asks before deploying, a person decides.")
    approve_deploy(db, pid, instances[0], actor)
