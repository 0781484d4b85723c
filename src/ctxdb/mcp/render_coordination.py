"""Plain text for the model about coordination records: tasks, messages, approval gates,
command runs and checkpoints. Short, deterministic, and saying what to call next."""

from __future__ import annotations

from typing import Any

from ctxdb.mcp.render import PREVIEW_CHARS, content_text, preview


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# --- tasks -----------------------------------------------------------------------------------


def task_line(task: dict[str, Any]) -> str:
    details = [task["status"], f"priority {task['priority']}"]
    if task["lease_owner"] and task["status"] in ("claimed", "running"):
        details.append(f"held by {task['lease_owner']} (epoch {task['epoch']}) until "
                       f"{task['lease_expires_at']}")
    return f"- task {task['task_id']}: {task['title']} ({', '.join(details)})"


def task_created_text(task: dict[str, Any]) -> str:
    waits = (f"; waits for tasks {', '.join(map(str, task['depends_on']))}"
             if task["depends_on"] else "")
    return (f"Created task {task['task_id']} ({task['status']}, priority {task['priority']}) "
            f"in project {task['project_id']}: {task['title']}{waits}.")


def tasks_text(project_id: str, tasks: list[dict[str, Any]], status: str | None,
               limit: int) -> str:
    which = f"{status} " if status else ""
    lines = [f"{len(tasks)} {which}tasks in project {project_id}" + (":" if tasks else ".")]
    lines += [task_line(task) for task in tasks]
    if tasks and len(tasks) == limit:
        lines.append(f"More may follow: call again with after={tasks[-1]['task_id']}.")
    return "\n".join(lines)


def task_claimed_text(task: dict[str, Any] | None, project_id: str) -> str:
    if task is None:
        return f"No task to claim in project {project_id}: none is ready."
    lines = [f"Claimed task {task['task_id']}: {task['title']} (priority {task['priority']}, "
             f"epoch {task['epoch']}, lease until {task['lease_expires_at']})."]
    if task["description"]:
        lines.append(f"Description: {task['description']}")
    lines.append(f"When finished call task_complete (or task_fail) with task_id="
                 f"{task['task_id']} and epoch={task['epoch']} before the lease runs out.")
    return "\n".join(lines)


def task_finished_text(task: dict[str, Any]) -> str:
    text = f"Task {task['task_id']} is {task['status']}."
    if task["status"] == "failed" and task["error"]:
        text = f"Task {task['task_id']} is failed: {task['error']}."
    return text


# --- messages --------------------------------------------------------------------------------


def message_sent_text(message: dict[str, Any]) -> str:
    kind, recipient = message["recipient_kind"], message["recipient"]
    to = {"instance": f"instance {recipient}", "role": f"every instance with role "
          f"{recipient!r}", "broadcast": "every instance of the project"}[kind]
    return f"Sent message {message['message_id']} to {to}."


def inbox_text(instance_id: str, messages: list[dict[str, Any]],
               visibility_seconds: float) -> str:
    if not messages:
        return f"No new messages for {instance_id}."
    lines = [f"{_plural(len(messages), 'message')} for {instance_id} (call message_ack with "
             f"each message_id once handled; unacknowledged ones come back after "
             f"{visibility_seconds:g} s):"]
    for message in messages:
        subject = f" [{message['subject']}]" if message["subject"] else ""
        again = (f" (delivery {message['delivered_count']})"
                 if message["delivered_count"] > 1 else "")
        lines.append(f"- message {message['message_id']} from {message['sender']}{subject}"
                     f"{again}: {preview(content_text(message['body']), PREVIEW_CHARS)}")
    return "\n".join(lines)


def ack_text(message_id: int, instance_id: str) -> str:
    return f"Acknowledged message {message_id} for {instance_id}; it will not come back."


# --- approval gates --------------------------------------------------------------------------


def gate_text(gate: dict[str, Any]) -> str:
    title = f" ({gate['title']})" if gate["title"] else ""
    head = f"Approval gate {gate['gate_id']} [{gate['gate_type']}]{title} is {gate['status']}"
    if gate["status"] == "pending":
        return (f"{head}: requested by {gate['requested_by']} at {gate['created_at']}. Call "
                f"approval_status with gate_id={gate['gate_id']} to check for the decision.")
    response = ("" if gate["response"] is None
                else f"\nResponse: {preview(content_text(gate['response']), PREVIEW_CHARS)}")
    return f"{head} by {gate['decided_by']} at {gate['decided_at']}.{response}"


# --- command runs ----------------------------------------------------------------------------


def run_recorded_text(run: dict[str, Any]) -> str:
    code = "" if run["exit_code"] is None else f", exit code {run['exit_code']}"
    took = "" if run["duration_ms"] is None else f", {run['duration_ms']} ms"
    return (f"Recorded command run {run['run_id']}: {run['command']} "
            f"{content_text(run['arguments'])} {run['status']}{code}{took}.")


# --- checkpoints -----------------------------------------------------------------------------


def checkpoint_saved_text(checkpoint: dict[str, Any]) -> str:
    label = f" '{checkpoint['label']}'" if checkpoint["label"] else ""
    return (f"Saved checkpoint {checkpoint['checkpoint_id']}{label} of instance "
            f"{checkpoint['instance_id']} (generation {checkpoint['generation']}) at "
            f"{checkpoint['created_at']}.")


def checkpoint_text(checkpoint: dict[str, Any] | None, project_id: str) -> str:
    if checkpoint is None:
        return f"No checkpoint found in project {project_id}."
    label = f" '{checkpoint['label']}'" if checkpoint["label"] else ""
    return (f"Checkpoint {checkpoint['checkpoint_id']}{label} of instance "
            f"{checkpoint['instance_id']} (generation {checkpoint['generation']}), saved at "
            f"{checkpoint['created_at']}:\n{content_text(checkpoint['state'])}")
