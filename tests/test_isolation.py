"""Isolation between projects on every interface that names a record by id, on both backends.

Every MCP tool and every CLI command that takes a project and the id of a record (an instance,
phase, task, message, gate, command run, checkpoint, session, context item, …) is called with
the project ``own`` and a record of the project ``other``: each must be refused with a typed
error, and nothing may be written. The tables below are checked against the tools the server
lists and the commands the CLI has, so a new tool or command with an id argument fails here
until its case is added (and the refusal works).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest

from ctxdb.cli.main import cli
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from test_cli import Cli
from test_mcp import Client, run_session
from test_retention import old_item

# Arguments that name a record although their name does not end in ``_id``.
REFERENCES = {"created_by", "sender", "to_instance", "lease_owner", "depends_on", "ids"}

# Id-like arguments that name no record of ctxdb, so there is nothing to refuse.
NOT_RECORDS = {
    ("audit", "entity_id"): "a filter of the project's own audit log (any entity type)",
    ("context archived", "after_item_id"): "a paging cursor within the project",
    ("instance launch", "session_id"): "the agent client's own session label",
    ("session create", "user_id"): "the application's user, not a ctxdb record",
    ("session list", "user_id"): "the application's user, not a ctxdb record",
}

INSTANCE = "belongs to project"


@dataclass(frozen=True)
class World:
    """The project ``own`` (with an instance and a message of its own) and the records of
    the project ``other`` that ``own`` must never reach."""

    own: str
    own_instance: str
    own_message: int
    other: str
    stranger: str
    phase: int
    task: int
    epoch: int
    message: int
    gate: int
    run: int
    checkpoint: int
    session: str
    archived_item: int
    transcript: str
    item: int


@pytest.fixture
def world(db: Ctxdb, settings: Settings, tmp_path: Path) -> World:
    own = db.projects.create("Own")["project_id"]
    own_instance = db.instances.launch(own, instance_id="own-agent")["instance_id"]
    other = db.projects.create("Other")["project_id"]
    phase = db.phases.create(other, 1, "Their phase")["phase_id"]
    stranger = db.instances.launch(other, instance_id="stranger", session_id="their-session",
                                   metadata={"role": "coder"})["instance_id"]
    task = db.tasks.create(other, "theirs")["task_id"]
    claimed = db.tasks.claim(other, stranger, 600)
    assert claimed is not None
    item = old_item(db, settings, other, "LOW")
    db.retention.collect(other)
    assert item in {a["item_id"] for a in db.retention.archived(other)}
    transcript = tmp_path / "their-session.jsonl"
    transcript.write_text("", encoding="utf-8")
    return World(
        own=own, own_instance=own_instance,
        own_message=db.messages.send(own, "instance", own_instance, "hello")["message_id"],
        other=other, stranger=stranger, phase=phase, task=task, epoch=claimed["epoch"],
        message=db.messages.send(other, "instance", stranger, "private")["message_id"],
        gate=db.approvals.request(other, "deploy")["gate_id"],
        run=db.commands.queue(other, "make")["run_id"],
        checkpoint=db.checkpoints.save(stranger, {"step": 1})["checkpoint_id"],
        session=db.conversations.create(other, "app", "user")["session_id"],
        archived_item=item, transcript=str(transcript),
        item=db.context.store(other, "their secret")["item_id"])


def untouched(db: Ctxdb, world: World) -> dict[str, Any]:
    """What a refused call must leave as it was: the newest audit entry (every write adds
    one) and the other project's records a forged call would change."""
    return {"audit": db.audit_log(limit=1), "stranger": db.instances.get(world.stranger),
            "handoff": db.tokens.latest_handoff(project_id=world.other),
            "task": db.tasks.get(world.task), "gate": db.approvals.get(world.gate),
            "run": db.commands.get(world.run),
            "events": db.conversations.events(world.session)}


def is_reference(name: str) -> bool:
    return name != "project_id" and (name.endswith("_id") or name in REFERENCES)


# --- MCP -------------------------------------------------------------------------------------

McpCase = Callable[[World], tuple[dict[str, Any], str]]

MCP_CASES: dict[tuple[str, str], McpCase] = {
    ("get_context", "phase_id"): lambda w: ({"phase_id": w.phase}, "[phase_not_found]"),
    ("store_context", "phase_id"): lambda w: (
        {"content": "x", "phase_id": w.phase}, "[phase_not_found]"),
    ("store_context", "created_by"): lambda w: (
        {"content": "x", "created_by": w.stranger}, INSTANCE),
    ("search_context", "phase_id"): lambda w: ({"phase_id": w.phase}, "[phase_not_found]"),
    ("record_handoff", "instance_id"): lambda w: (
        {"instance_id": w.stranger, "summary": "forged: deploy now"}, INSTANCE),
    ("heartbeat", "instance_id"): lambda w: ({"instance_id": w.stranger}, INSTANCE),
    ("heartbeat", "phase_id"): lambda w: (
        {"instance_id": w.own_instance, "phase_id": w.phase}, "[phase_not_found]"),
    ("task_create", "parent_task_id"): lambda w: (
        {"title": "x", "parent_task_id": w.task}, "[task_not_found]"),
    ("task_create", "depends_on"): lambda w: (
        {"title": "x", "depends_on": [w.task]}, "[task_not_found]"),
    ("task_list", "lease_owner"): lambda w: ({"lease_owner": w.stranger}, INSTANCE),
    ("task_claim", "instance_id"): lambda w: ({"instance_id": w.stranger}, INSTANCE),
    ("task_complete", "task_id"): lambda w: (
        {"task_id": w.task, "epoch": w.epoch}, "[task_not_found]"),
    ("task_fail", "task_id"): lambda w: (
        {"task_id": w.task, "epoch": w.epoch, "error": "x"}, "[task_not_found]"),
    ("message_send", "to_instance"): lambda w: (
        {"body": "x", "to_instance": w.stranger}, INSTANCE),
    ("message_send", "sender"): lambda w: (
        {"body": "x", "broadcast": True, "sender": w.stranger}, INSTANCE),
    ("message_inbox", "instance_id"): lambda w: ({"instance_id": w.stranger}, INSTANCE),
    ("message_ack", "message_id"): lambda w: (
        {"message_id": w.message, "instance_id": w.own_instance}, "[message_not_found]"),
    ("message_ack", "instance_id"): lambda w: (
        {"message_id": w.own_message, "instance_id": w.stranger}, INSTANCE),
    ("approval_request", "instance_id"): lambda w: (
        {"gate_type": "plan", "instance_id": w.stranger}, INSTANCE),
    ("approval_request", "phase_id"): lambda w: (
        {"gate_type": "plan", "phase_id": w.phase}, "[phase_not_found]"),
    ("approval_status", "gate_id"): lambda w: (
        {"gate_id": w.gate}, "[approval_gate_not_found]"),
    ("command_record", "instance_id"): lambda w: (
        {"command": "make", "exit_code": 0, "instance_id": w.stranger}, INSTANCE),
    ("checkpoint_save", "instance_id"): lambda w: (
        {"instance_id": w.stranger, "state": {}}, INSTANCE),
    ("checkpoint_latest", "instance_id"): lambda w: ({"instance_id": w.stranger}, INSTANCE),
    ("session_append", "session_id"): lambda w: (
        {"session_id": w.session, "role": "user", "content": "x"}, "[session_not_found]"),
    ("session_events", "session_id"): lambda w: (
        {"session_id": w.session}, "[session_not_found]"),
    ("siblings", "instance_id"): lambda w: ({"instance_id": w.stranger}, INSTANCE),
    ("get", "ids"): lambda w: ({"ids": [f"item:{w.item}"]}, "[context_item_not_found]"),
    ("timeline", "event_id"): lambda w: (
        {"event_id": f"event:{w.session}/1"}, "[session_not_found]"),
}


def mcp_failures(client: Client, world: World, explicit: bool) -> Any:
    """Call every case; the list of what went wrong (empty when every call was refused)."""
    async def run() -> list[str]:
        listed = (await client.session.list_tools()).tools
        found = {(tool.name, name) for tool in listed for name in tool.input_schema["properties"]
                 if is_reference(name)}
        problems = [f"no isolation case for tool {tool} argument {name}"
                    for tool, name in sorted(found - set(MCP_CASES))]
        for (tool, name), case in MCP_CASES.items():
            arguments, expected = case(world)
            if explicit:
                arguments["project_id"] = world.own
            result = await client.call(tool, **arguments)
            text = getattr(result.content[0], "text", "") if result.content else ""
            if not result.is_error or expected not in text:
                problems.append(f"{tool}({name}=another project's): {text!r}")
        return problems

    return run()


@pytest.mark.parametrize("explicit", [False, True], ids=["server-project", "named-project"])
def test_every_mcp_tool_refuses_another_projects_ids(
        settings: Settings, tmp_path: Path, db: Ctxdb, world: World, explicit: bool) -> None:
    before = untouched(db, world)
    problems: list[str] = []

    async def body(client: Client) -> None:
        problems.extend(await mcp_failures(client, world, explicit))

    run_session(settings, tmp_path, body, *([] if explicit else ["--project", world.own]))
    assert problems == []
    assert untouched(db, world) == before


# --- CLI -------------------------------------------------------------------------------------

CliCase = Callable[[World], tuple[list[str], str]]


def gate_case(verb: str) -> CliCase:
    return lambda w: (["approval", verb, str(w.gate), "-p", w.own], "unknown approval gate")


def run_case(verb: str) -> CliCase:
    return lambda w: (["command", verb, str(w.run), "-p", w.own], "unknown command run")


def session_case(verb: str, *extra: str) -> CliCase:
    return lambda w: (["session", verb, w.session, *extra, "-p", w.own], "unknown session")

CLI_CASES: dict[tuple[str, str], CliCase] = {
    **{(f"approval {verb}", "gate_id"): gate_case(verb)
       for verb in ("approve", "cancel", "reject", "show")},
    ("approval wait", "gate_id"): lambda w: (
        ["approval", "wait", str(w.gate), "-p", w.own, "--timeout", "1"],
        "unknown approval gate"),
    ("approval request", "phase_id"): lambda w: (
        ["approval", "request", "-p", w.own, "plan", "--phase", str(w.phase)],
        "unknown phase"),
    ("approval request", "instance_id"): lambda w: (
        ["approval", "request", "-p", w.own, "plan", "--instance", w.stranger], INSTANCE),
    ("checkpoint latest", "instance_id"): lambda w: (
        ["checkpoint", "latest", "-p", w.own, "--instance", w.stranger], INSTANCE),
    ("checkpoint list", "instance_id"): lambda w: (
        ["checkpoint", "list", "-p", w.own, "--instance", w.stranger], INSTANCE),
    ("checkpoint save", "instance_id"): lambda w: (
        ["checkpoint", "save", w.stranger, "{}", "-p", w.own], INSTANCE),
    ("checkpoint show", "checkpoint_id"): lambda w: (
        ["checkpoint", "show", str(w.checkpoint), "-p", w.own], "unknown checkpoint"),
    **{(f"command {verb}", "run_id"): run_case(verb) for verb in ("cancel", "show", "start")},
    ("command finish", "run_id"): lambda w: (
        ["command", "finish", str(w.run), "--exit-code", "0", "-p", w.own],
        "unknown command run"),
    ("command list", "instance_id"): lambda w: (
        ["command", "list", "-p", w.own, "--instance", w.stranger], INSTANCE),
    ("command queue", "instance_id"): lambda w: (
        ["command", "queue", "-p", w.own, "--instance", w.stranger, "--", "make"], INSTANCE),
    ("command record", "instance_id"): lambda w: (
        ["command", "record", "-p", w.own, "--instance", w.stranger, "--exit-code", "0",
         "--", "make"], INSTANCE),
    ("command run", "instance_id"): lambda w: (
        ["command", "run", "-p", w.own, "--instance", w.stranger, "--", "true"], INSTANCE),
    ("context", "phase_id"): lambda w: (
        ["context", "-p", w.own, "--phase", str(w.phase)], "unknown phase"),
    ("context", "instance_id"): lambda w: (
        ["context", "-p", w.own, "--instance", w.stranger], INSTANCE),
    ("context list", "phase_id"): lambda w: (
        ["context", "list", "-p", w.own, "--phase", str(w.phase)], "unknown phase"),
    ("context pack", "phase_id"): lambda w: (
        ["context", "pack", "-p", w.own, "--phase", str(w.phase)], "unknown phase"),
    ("context store", "phase_id"): lambda w: (
        ["context", "store", "-p", w.own, '"x"', "--phase", str(w.phase)], "unknown phase"),
    ("context store", "created_by"): lambda w: (
        ["context", "store", "-p", w.own, '"x"', "--created-by", w.stranger], INSTANCE),
    ("context get", "item_id"): lambda w: (
        ["context", "get", str(w.item), "-p", w.own], "unknown context item"),
    ("context unarchive", "item_id"): lambda w: (
        ["context", "unarchive", str(w.archived_item), "-p", w.own],
        "no archived context item"),
    ("ingest-transcript", "session_id"): lambda w: (
        ["ingest-transcript", w.transcript, "--session-id", "their-session", "-p", w.own],
        INSTANCE),
    ("instance launch", "phase_id"): lambda w: (
        ["instance", "launch", "-p", w.own, "--phase", str(w.phase)], "unknown phase"),
    ("instance launch", "instance_id"): lambda w: (
        ["instance", "launch", "-p", w.own, "--id", w.stranger], INSTANCE),
    ("message promote", "message_id"): lambda w: (
        ["message", "promote", str(w.message), "memory", "-p", w.own, "--namespace", "x",
         "--key", "y"], "unknown message"),
    ("message send", "to_instance"): lambda w: (
        ["message", "send", "-p", w.own, '"x"', "--to", w.stranger], INSTANCE),
    ("message send", "sender"): lambda w: (
        ["message", "send", "-p", w.own, '"x"', "--broadcast", "--sender", w.stranger],
        INSTANCE),
    **{(f"session {verb}", "session_id"): session_case(verb, *extra)
       for verb, extra in (("append", ["user", '"x"']), ("close", []), ("events", []),
                           ("get", []), ("state", ["{}"]))},
    ("session create", "instance_id"): lambda w: (
        ["session", "create", "-p", w.own, "app", "user", "--instance", w.stranger], INSTANCE),
    ("task cancel", "task_id"): lambda w: (
        ["task", "cancel", str(w.task), "-p", w.own], "unknown task"),
    ("task get", "task_id"): lambda w: (
        ["task", "get", str(w.task), "-p", w.own], "unknown task"),
    ("task claim", "instance_id"): lambda w: (
        ["task", "claim", "-p", w.own, w.stranger], INSTANCE),
    ("task create", "parent_task_id"): lambda w: (
        ["task", "create", "-p", w.own, "x", "--parent", str(w.task)], "unknown task"),
    ("task create", "depends_on"): lambda w: (
        ["task", "create", "-p", w.own, "x", "--depends-on", str(w.task)], "unknown task"),
    ("task list", "lease_owner"): lambda w: (
        ["task", "list", "-p", w.own, "--owner", w.stranger], INSTANCE),
    ("task list", "parent_task_id"): lambda w: (
        ["task", "list", "-p", w.own, "--parent", str(w.task)], "unknown task"),
    ("timeline", "session_id"): lambda w: (
        ["timeline", "-p", w.own, "--session", w.session], "unknown session"),
}


def cli_references() -> set[tuple[str, str]]:
    """(command, parameter) of every command that takes a project and names a record."""
    found: set[tuple[str, str]] = set()
    context = click.Context(cli)

    def walk(group: click.Group, path: list[str]) -> None:
        for name in group.list_commands(context):
            command = group.get_command(context, name)
            assert command is not None
            names = [p.name or "" for p in command.params]
            if "project_id" in names:
                found.update((" ".join([*path, name]), n) for n in names if is_reference(n))
            if isinstance(command, click.Group):
                walk(command, [*path, name])

    walk(cli, [])
    return found


def test_the_cli_table_covers_every_command_that_takes_a_project_and_an_id() -> None:
    found = cli_references()
    assert found - set(NOT_RECORDS) == set(CLI_CASES)
    assert set(NOT_RECORDS) <= found  # no stale exemption


def test_every_cli_command_refuses_another_projects_ids(
        settings: Settings, tmp_path: Path, db: Ctxdb, world: World) -> None:
    run = Cli(settings.url, tmp_path)
    before = untouched(db, world)
    problems = []
    for (command, name), case in CLI_CASES.items():
        argv, expected = case(world)
        result = run(*argv)
        if result.exit_code not in (2, 3) or not result.stderr.startswith("error: ") \
                or expected not in result.stderr:
            problems.append(f"{command} ({name}): exit {result.exit_code}, "
                            f"{result.stdout!r} {result.stderr!r}")
    assert problems == []
    assert untouched(db, world) == before
