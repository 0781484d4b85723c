"""The MCP tools for working together: tasks, messages, approval gates, command runs and
checkpoints, declared with their typed arguments (the input schemas the model sees).

Each is a module-level function of the server's :class:`~ctxdb.mcp.tools.ContextTools` and its
typed arguments, run in a worker thread; :data:`TOOLS` lists them for ``server.build_server``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from ctxdb.domain.models import choices
from ctxdb.domain.vocabulary import FINISHED_RUN_STATUSES, TaskStatus
from ctxdb.errors import ApprovalTimeoutError, ValidationError
from ctxdb.mcp import render_coordination as render
from ctxdb.mcp.toolbox import READ_ONLY, WRITES, Declared, InstanceId, ProjectId
from ctxdb.mcp.tools import ContextTools

TASK_STATUSES = choices(TaskStatus)
RUN_FINAL_STATUSES = choices(FINISHED_RUN_STATUSES)
MAX_STATUS_WAIT = 60.0

TaskId = Annotated[int, Field(description="The task's id.", ge=1)]
Epoch = Annotated[int, Field(description="The epoch task_claim returned with the task (it "
                             "proves you still hold the lease).", ge=0)]
AnyJson = Annotated[Any, Field(description="Any JSON: object, list, text, number, true/false "
                               "or null.")]
IdempotencyKey = Annotated[str | None, Field(
    description="A key of your choice: calling again with it returns the first record instead "
    "of adding another (safe retries).", min_length=1)]


def task_create(
    tools: ContextTools,
    title: Annotated[str, Field(description="What to do, in a line.", min_length=1)],
    description: Annotated[str, Field(description="What to do, in detail.")] = "",
    priority: Annotated[int, Field(description="Higher is claimed first.")] = 0,
    depends_on: Annotated[list[int] | None, Field(
        description="Ids of tasks that must be done first.")] = None,
    parent_task_id: Annotated[int | None, Field(
        description="The task this one is a part of.", ge=1)] = None,
    project_id: ProjectId = None,
) -> str:
    """Add a task to the project's work queue for any agent to claim; it waits until
    the tasks it depends on are done."""
    task = tools.db.tasks.create(tools.project(project_id), title, description=description,
                                priority=priority, depends_on=depends_on or (),
                                parent_task_id=parent_task_id)
    return render.task_created_text(task)


def task_list(
    tools: ContextTools,
    status: Annotated[str | None, Field(
        description="Only tasks in this status.",
        json_schema_extra={"anyOf": [{"enum": TASK_STATUSES, "type": "string"},
                                     {"type": "null"}]})] = None,
    lease_owner: Annotated[str | None, Field(
        description="Only tasks this instance holds.")] = None,
    after: Annotated[int, Field(description="Only tasks with a larger id (the last of "
                                "the previous page).", ge=0)] = 0,
    limit: Annotated[int, Field(description="Most tasks to return.", ge=1, le=200)] = 50,
    project_id: ProjectId = None,
) -> str:
    """The project's tasks in id order: status, priority and who holds each."""
    project = tools.project(project_id)
    tasks = tools.db.tasks.list(project, status=status, lease_owner=lease_owner,
                               after=after, limit=limit)
    return render.tasks_text(project, tasks, status, limit)


def task_claim(
    tools: ContextTools,
    instance_id: InstanceId,
    lease_seconds: Annotated[float, Field(
        description="Seconds you hold the task; after that another agent may take it.",
        gt=0, le=7 * 24 * 3600)] = 1800.0,
    project_id: ProjectId = None,
) -> str:
    """Take the highest-priority ready task of the project for your instance. Returns
    its id and an epoch: pass both to task_complete or task_fail."""
    project = tools.project(project_id)
    task = tools.db.tasks.claim(project, instance_id, lease_seconds)
    return render.task_claimed_text(task, project)


def task_complete(
    tools: ContextTools,
    task_id: TaskId,
    epoch: Epoch,
    result: Annotated[Any, Field(description="What came of it: any JSON.")] = None,
    project_id: ProjectId = None,
) -> str:
    """Mark a task you claimed done (tasks waiting only for it become ready). Refused if
    your lease expired or the task passed to another agent."""
    return render.task_finished_text(tools.db.tasks.complete(
        task_id, epoch, result, project_id=tools.scope(project_id)))


def task_fail(
    tools: ContextTools,
    task_id: TaskId,
    epoch: Epoch,
    error: Annotated[str, Field(description="What went wrong.", min_length=1)],
    project_id: ProjectId = None,
) -> str:
    """Give up a task you claimed as failed (tasks waiting for it are blocked)."""
    return render.task_finished_text(tools.db.tasks.fail(
        task_id, epoch, error, project_id=tools.scope(project_id)))


def message_send(
    tools: ContextTools,
    body: AnyJson,
    to_instance: Annotated[str | None, Field(
        description="Send to this instance of the project.")] = None,
    to_role: Annotated[str | None, Field(
        description="Send to every instance whose metadata has this role.")] = None,
    broadcast: Annotated[bool, Field(
        description="Send to every other instance of the project.")] = False,
    subject: Annotated[str, Field(description="A short subject line.")] = "",
    sender: Annotated[str | None, Field(description="Your instance id.")] = None,
    project_id: ProjectId = None,
) -> str:
    """Leave a message for other agents of the project: give exactly one of
    to_instance, to_role or broadcast=true. It is delivered until acknowledged."""
    chosen: list[tuple[str, str | None]] = [
        (kind, value) for kind, value in (("instance", to_instance), ("role", to_role))
        if value is not None]
    if broadcast:
        chosen.append(("broadcast", None))
    if len(chosen) != 1:
        raise ValidationError("give exactly one of to_instance, to_role or broadcast=true")
    kind, recipient = chosen[0]
    message = tools.db.messages.send(tools.project(project_id), kind, recipient, body,
                                    subject=subject, sender=sender)
    return render.message_sent_text(message)


def message_inbox(
    tools: ContextTools,
    instance_id: InstanceId,
    visibility_seconds: Annotated[float, Field(
        description="Seconds the messages you receive stay hidden from you; if not "
        "acknowledged by then they come back.", gt=0, le=7 * 24 * 3600)] = 300.0,
    limit: Annotated[int, Field(description="Most messages to receive.", ge=1,
                                le=100)] = 10,
    project_id: ProjectId = None,
) -> str:
    """Receive your instance's unacknowledged messages, oldest first. Acknowledge each
    with message_ack once handled."""
    messages = tools.db.messages.inbox(instance_id, visibility_seconds, limit,
                                      project_id=tools.scope(project_id))
    return render.inbox_text(instance_id, messages, visibility_seconds)


def message_ack(
    tools: ContextTools,
    message_id: Annotated[int, Field(description="The message's id.", ge=1)],
    instance_id: InstanceId,
    project_id: ProjectId = None,
) -> str:
    """Acknowledge a message you received: it is never delivered to you again."""
    tools.db.messages.ack(message_id, instance_id, project_id=tools.scope(project_id))
    return render.ack_text(message_id, instance_id)


def approval_request(
    tools: ContextTools,
    gate_type: Annotated[str, Field(
        description="What is to be approved: plan, deploy, schema_change, …",
        min_length=1)],
    request: Annotated[Any, Field(
        description="What the person deciding needs to see (any JSON), e.g. the plan."
    )] = None,
    title: Annotated[str, Field(description="A one-line summary.")] = "",
    instance_id: Annotated[str | None, Field(description="Your instance id.")] = None,
    phase_id: Annotated[int | None, Field(description="The phase it belongs to.",
                                          ge=0)] = None,
    idempotency_key: IdempotencyKey = None,
    project_id: ProjectId = None,
) -> str:
    """Ask a person to approve something before you go on; returns the gate's id. Then
    call approval_status until it is approved or rejected (do not go on before)."""
    gate = tools.db.approvals.request(tools.project(project_id), gate_type, request,
                                     title=title, instance_id=instance_id,
                                     phase_id=phase_id, idempotency_key=idempotency_key)
    return render.gate_text(gate)


def approval_status(
    tools: ContextTools,
    gate_id: Annotated[int, Field(description="The gate's id.", ge=1)],
    wait_seconds: Annotated[float, Field(
        description="Wait up to this many seconds for a decision.", ge=0,
        le=MAX_STATUS_WAIT)] = 0.0,
    project_id: ProjectId = None,
) -> str:
    """Whether an approval gate is pending, approved, rejected or cancelled, with who
    decided and their response."""
    scope = tools.scope(project_id)
    if wait_seconds <= 0:
        return render.gate_text(tools.db.approvals.get(gate_id, project_id=scope))
    try:
        gate = tools.db.approvals.wait(gate_id, wait_seconds, poll_seconds=1.0,
                                      project_id=scope)
    except ApprovalTimeoutError:  # still pending: that is an answer, not a failure
        gate = tools.db.approvals.get(gate_id, project_id=scope)
    return render.gate_text(gate)


def command_record(
    tools: ContextTools,
    command: Annotated[str, Field(description="The program or command, e.g. pytest.",
                                  min_length=1)],
    arguments: Annotated[list[Any] | None, Field(
        description="Its arguments, e.g. [\"-q\", \"tests/\"].")] = None,
    exit_code: Annotated[int | None, Field(description="Its exit status.")] = None,
    status: Annotated[str | None, Field(
        description="success, failed or cancelled. Default: success for exit code 0, "
        "else failed.",
        json_schema_extra={"anyOf": [{"enum": RUN_FINAL_STATUSES, "type": "string"},
                                     {"type": "null"}]})] = None,
    output: Annotated[str, Field(description="Its output (or the part worth "
                                 "keeping).")] = "",
    error: Annotated[str | None, Field(description="An error message.")] = None,
    duration_ms: Annotated[int | None, Field(description="How long it ran, in ms.",
                                             ge=0)] = None,
    instance_id: Annotated[str | None, Field(description="Your instance id.")] = None,
    cwd: Annotated[str | None, Field(description="Where it ran.")] = None,
    idempotency_key: IdempotencyKey = None,
    project_id: ProjectId = None,
) -> str:
    """Record a command you ran (tests, a build, a migration) and how it ended, so that
    other agents and people can see it. Give exit_code or status."""
    run = tools.db.commands.record(tools.project(project_id), command, arguments or [],
                                  exit_code=exit_code, status=status, output=output,
                                  error=error, duration_ms=duration_ms,
                                  instance_id=instance_id, cwd=cwd,
                                  idempotency_key=idempotency_key)
    return render.run_recorded_text(run)


def checkpoint_save(
    tools: ContextTools,
    instance_id: InstanceId,
    state: Annotated[Any, Field(
        description="Your working state (any JSON): the step you are on, what is done, "
        "what is next.")],
    label: Annotated[str, Field(description="A name to find it by.")] = "",
    idempotency_key: IdempotencyKey = None,
    project_id: ProjectId = None,
) -> str:
    """Save a checkpoint of your state to resume from after a crash or /clear."""
    checkpoint = tools.db.checkpoints.save(instance_id, state, label=label,
                                          project_id=tools.scope(project_id),
                                          idempotency_key=idempotency_key)
    return render.checkpoint_saved_text(checkpoint)


def checkpoint_latest(
    tools: ContextTools,
    instance_id: Annotated[str | None, Field(
        description="The newest of this instance. Default: of any instance.")] = None,
    label: Annotated[str | None, Field(description="The newest with this label.")] = None,
    project_id: ProjectId = None,
) -> str:
    """Read the newest checkpoint (of an instance, or with a label) to resume from."""
    project = tools.project(project_id)
    checkpoint = tools.db.checkpoints.latest(project, instance_id=instance_id, label=label)
    return render.checkpoint_text(checkpoint, project)


TOOLS: list[Declared] = [
    Declared(task_create, WRITES),
    Declared(task_list, READ_ONLY),
    Declared(task_claim, WRITES),
    Declared(task_complete, WRITES),
    Declared(task_fail, WRITES),
    Declared(message_send, WRITES),
    Declared(message_inbox, WRITES),
    Declared(message_ack, WRITES),
    Declared(approval_request, WRITES),
    Declared(approval_status, READ_ONLY, waits=True),
    Declared(command_record, WRITES),
    Declared(checkpoint_save, WRITES),
    Declared(checkpoint_latest, READ_ONLY),
]
