"""The coordination tools of ``ctxdb mcp`` (a real subprocess over stdio) on both backends:
tasks, messages, approval gates, command runs and checkpoints."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from test_mcp import Client, run_session

COORDINATION_TOOLS = {"task_create", "task_list", "task_claim", "task_complete", "task_fail",
                      "message_send", "message_inbox", "message_ack", "approval_request",
                      "approval_status", "command_record", "checkpoint_save",
                      "checkpoint_latest"}


@pytest.fixture
def project_id(db: Ctxdb, project: dict[str, Any]) -> str:
    return str(project["project_id"])


@pytest.fixture
def agent(db: Ctxdb, project_id: str) -> str:
    return str(db.instances.launch(project_id, instance_id="agent-1",
                                   metadata={"role": "coder"})["instance_id"])


def test_the_coordination_tools_are_listed(settings: Settings, tmp_path: Path) -> None:
    async def body(client: Client) -> None:
        listed = {tool.name: tool for tool in (await client.session.list_tools()).tools}
        assert set(listed) >= COORDINATION_TOOLS
        for name in COORDINATION_TOOLS:
            assert len(listed[name].description or "") > 40, name
        assert listed["task_complete"].input_schema["required"] == ["task_id", "epoch"]
        assert listed["approval_status"].annotations.read_only_hint is True
        assert listed["task_claim"].annotations.read_only_hint is False
        schema = listed["approval_status"].input_schema["properties"]["wait_seconds"]
        assert schema["maximum"] == 60

    run_session(settings, tmp_path, body)


def test_tasks_create_claim_complete_fail(settings: Settings, tmp_path: Path, db: Ctxdb,
                                          project_id: str, agent: str) -> None:
    async def body(client: Client) -> None:
        created = await client.text("task_create", title="Write the parser", priority=5,
                                    description="in parser.py")
        assert created == (f"Created task 1 (ready, priority 5) in project {project_id}: "
                           "Write the parser.")
        after = await client.text("task_create", title="Test it", depends_on=[1])
        assert after.startswith("Created task 2 (pending") and "waits for tasks 1" in after
        await client.text("task_create", title="Doomed")
        claimed = await client.text("task_claim", instance_id=agent, lease_seconds=60)
        assert claimed.splitlines()[0].startswith(
            "Claimed task 1: Write the parser (priority 5, epoch 1, lease until ")
        assert "task_id=1 and epoch=1" in claimed and "in parser.py" in claimed
        listing = (await client.text("task_list", lease_owner=agent)).splitlines()
        assert listing[0] == f"1 tasks in project {project_id}:"
        assert listing[1].startswith("- task 1: Write the parser (claimed, priority 5, "
                                     f"held by {agent} (epoch 1)")
        assert await client.text("task_complete", task_id=1, epoch=1,
                                 result={"ok": True}) == "Task 1 is done."
        stale = await client.error("task_complete", task_id=1, epoch=1)
        assert "[invalid_transition]" in stale
        await client.text("task_claim", instance_id=agent)  # task 2, now ready
        await client.text("task_complete", task_id=2, epoch=1)
        await client.text("task_claim", instance_id=agent)
        assert await client.text("task_fail", task_id=3, epoch=1,
                                 error="cannot be done") == "Task 3 is failed: cannot be done."
        assert "No task to claim" in await client.text("task_claim", instance_id=agent)
        assert "[stale_epoch]" in await client.error("task_fail", task_id=3, epoch=0,
                                                    error="x")
        done = await client.text("task_list", status="done", limit=1)
        assert done.splitlines()[-1] == "More may follow: call again with after=1."

    run_session(settings, tmp_path, body, "--project", project_id)
    assert db.tasks.get(1)["result"] == {"ok": True}
    assert [t["status"] for t in db.tasks.list(project_id)] == ["done", "done", "failed"]


def test_messages_send_inbox_ack(settings: Settings, tmp_path: Path, db: Ctxdb,
                                 project_id: str, agent: str) -> None:
    lead = db.instances.launch(project_id, instance_id="lead-1")["instance_id"]

    async def body(client: Client) -> None:
        sent = await client.text("message_send", body={"review": "pr-12"}, to_role="coder",
                                 subject="review", sender=lead)
        assert sent == "Sent message 1 to every instance with role 'coder'."
        assert (await client.text("message_send", body="hi all", broadcast=True,
                                  sender=lead)) == (
            "Sent message 2 to every instance of the project.")
        inbox = (await client.text("message_inbox", instance_id=agent,
                                   visibility_seconds=0.2)).splitlines()
        assert inbox[0].startswith(f"2 messages for {agent} (call message_ack")
        assert inbox[1:] == [f'- message 1 from {lead} [review]: {{"review": "pr-12"}}',
                             f"- message 2 from {lead}: hi all"]
        assert await client.text("message_ack", message_id=1, instance_id=agent) == (
            f"Acknowledged message 1 for {agent}; it will not come back.")
        await anyio.sleep(0.3)
        again = (await client.text("message_inbox", instance_id=agent)).splitlines()
        assert again[1:] == [f"- message 2 from {lead} (delivery 2): hi all"]
        assert "No new messages" in await client.text("message_inbox", instance_id=lead)
        both = await client.error("message_send", body=1, to_role="coder", broadcast=True)
        assert "exactly one of" in both

    run_session(settings, tmp_path, body, "--project", project_id)
    assert db.messages.ack(2, agent)["delivered_count"] == 2


def test_approvals_request_and_status(settings: Settings, tmp_path: Path, db: Ctxdb,
                                      project_id: str, agent: str) -> None:
    def approve_soon() -> None:
        with Ctxdb.open(settings) as other:
            other.approvals.approve(1, {"ok": "ship it"}, actor="user:lead")

    async def body(client: Client) -> None:
        requested = await client.text("approval_request", gate_type="deploy",
                                      request={"version": "2.1"}, title="Ship 2.1",
                                      instance_id=agent, idempotency_key="ship-2.1")
        assert requested.startswith(f"Approval gate 1 [deploy] (Ship 2.1) is pending: "
                                    f"requested by {agent} at ")
        assert "gate_id=1" in requested
        assert await client.text("approval_request", gate_type="deploy",
                                 request={"version": "2.1"}, title="Ship 2.1",
                                 instance_id=agent, idempotency_key="ship-2.1") == requested
        reused = await client.error("approval_request", gate_type="deploy",
                                    idempotency_key="ship-2.1")
        assert "already names approval gate 1" in reused and "[idempotency_conflict]" in reused
        assert (await client.text("approval_status", gate_id=1)).startswith(
            "Approval gate 1 [deploy] (Ship 2.1) is pending")
        timer = threading.Timer(0.5, approve_soon)
        timer.start()
        try:
            decided = await client.text("approval_status", gate_id=1, wait_seconds=30)
        finally:
            timer.join()
        lines = decided.splitlines()
        assert lines[0].startswith("Approval gate 1 [deploy] (Ship 2.1) is approved by "
                                   "user:lead at ")
        assert lines[1] == 'Response: {"ok": "ship it"}'
        pending = await client.text("approval_request", gate_type="plan")
        assert "gate 2 [plan] is pending" in pending
        still = await client.text("approval_status", gate_id=2, wait_seconds=0.5)
        assert "is pending" in still
        assert "[approval_gate_not_found]" in await client.error("approval_status",
                                                                gate_id=99)
        assert "[project_not_found]" in await client.error("approval_request",
                                                          gate_type="plan",
                                                          project_id="proj_nope")

    run_session(settings, tmp_path, body, "--project", project_id)
    assert db.approvals.get(1)["decided_by"] == "user:lead"
    assert db.approvals.get(2)["status"] == "pending"


def test_command_record_and_checkpoints(settings: Settings, tmp_path: Path, db: Ctxdb,
                                        project_id: str, agent: str) -> None:
    async def body(client: Client) -> None:
        recorded = await client.text("command_record", command="pytest",
                                     arguments=["-q", "tests/"], exit_code=1,
                                     output="1 failed", duration_ms=4200, instance_id=agent)
        assert recorded == ('Recorded command run 1: pytest ["-q", "tests/"] failed, exit '
                            "code 1, 4200 ms.")
        assert "[invalid_input]" in await client.error("command_record", command="make")
        assert "[invalid_status]" in await client.error("command_record", command="make",
                                                       status="running")
        assert "No checkpoint found" in await client.text("checkpoint_latest")
        saved = await client.text("checkpoint_save", instance_id=agent,
                                  state={"step": 4, "todo": ["tests"]}, label="step-4")
        assert saved.startswith(f"Saved checkpoint 1 'step-4' of instance {agent} "
                                "(generation 0) at ")
        await client.text("checkpoint_save", instance_id=agent, state="later")
        latest = await client.text("checkpoint_latest", instance_id=agent)
        assert latest.startswith(f"Checkpoint 2 of instance {agent}") and latest.endswith(
            ":\nlater")
        labelled = await client.text("checkpoint_latest", label="step-4")
        assert labelled.endswith(':\n{"step": 4, "todo": ["tests"]}')
        assert "[instance_not_found]" in await client.error(
            "checkpoint_save", instance_id="nobody", state={})

    run_session(settings, tmp_path, body, "--project", project_id)
    assert db.commands.get(1)["output"] == "1 failed"
    assert len(db.checkpoints.list(project_id)) == 2


def test_ids_of_another_project_are_refused(settings: Settings, tmp_path: Path, db: Ctxdb,
                                            project_id: str, agent: str) -> None:
    other = db.projects.create("Other")["project_id"]
    stranger = db.instances.launch(other, instance_id="stranger")["instance_id"]
    task_id = db.tasks.create(other, "theirs")["task_id"]
    epoch = db.tasks.claim(other, stranger, 60)["epoch"]  # type: ignore[index]
    message_id = db.messages.send(other, "instance", stranger, "private")["message_id"]
    gate_id = db.approvals.request(other, "deploy")["gate_id"]

    async def body(client: Client) -> None:
        assert "[task_not_found]" in await client.error("task_complete", task_id=task_id,
                                                        epoch=epoch)
        assert "[task_not_found]" in await client.error("task_fail", task_id=task_id,
                                                        epoch=epoch, error="x")
        assert "belongs to project" in await client.error("task_claim",
                                                          instance_id=stranger)
        assert "belongs to project" in await client.error("message_inbox",
                                                          instance_id=stranger)
        assert "[message_not_found]" in await client.error("message_ack",
                                                           message_id=message_id,
                                                           instance_id=stranger)
        assert "[approval_gate_not_found]" in await client.error("approval_status",
                                                                gate_id=gate_id)
        assert "belongs to project" in await client.error("checkpoint_save",
                                                          instance_id=stranger, state={})
        assert "belongs to project" in await client.error("command_record", command="x",
                                                          exit_code=0,
                                                          instance_id=stranger)

    run_session(settings, tmp_path, body, "--project", project_id)
    assert db.tasks.get(task_id)["status"] == "claimed"
    assert db.messages.inbox(stranger)[0]["delivered_count"] == 1
    assert db.checkpoints.list(other) == [] and db.commands.list(project_id) == []
