"""The declared bodies of the ``/v1`` routes of conversation sessions, the timeline, the workflow
records (approval gates, command runs, checkpoints) and of the audit chain's verification.

As in :mod:`ctxdb.http.models`: requests refuse unknown fields, responses name what a client
relies on and let the rest of a record through.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ctxdb.http.models import Body, Record

# --- conversation sessions ----------------------------------------------------------------


class SessionIn(Body):
    app_name: str
    user_id: str
    instance_id: str | None = None
    state: dict[str, Any] | None = None


class Session(Record):
    session_id: str
    project_id: str
    app_name: str
    user_id: str
    status: str
    state: dict[str, Any]


class SessionStateIn(Body):
    state: dict[str, Any]


class EventIn(Body):
    role: str = Field(description="user, assistant, system or tool")
    content: Any
    metadata: dict[str, Any] | None = None


class Event(Record):
    event_id: int
    session_id: str
    sequence: int
    role: str
    content: Any = None


class Observation(Record):
    """One thing an agent session did (docs/timeline.md)."""

    observation_id: int
    session_id: str
    kind: str
    text: str
    occurred_at: str


# --- approval gates -----------------------------------------------------------------------


class ApprovalIn(Body):
    gate_type: str
    request: Any = None
    title: str = ""
    phase_id: int | None = None
    instance_id: str | None = None


class Approval(Record):
    gate_id: int
    project_id: str
    gate_type: str
    status: str
    request: Any = None
    response: Any = None


class DecisionIn(Body):
    response: Any = Field(None, description="Feedback, conditions or a reason (any JSON).")


# --- command runs -------------------------------------------------------------------------


class CommandIn(Body):
    command: str
    arguments: list[Any] = Field(default_factory=list)
    cwd: str | None = None
    instance_id: str | None = None


class CommandRecordIn(CommandIn):
    exit_code: int | None = None
    status: str | None = None
    output: str = ""
    error: str | None = None
    duration_ms: int | None = None


class FinishIn(Body):
    exit_code: int | None = None
    status: str | None = None
    output: str = ""
    error: str | None = None
    duration_ms: int | None = None


class CancelRunIn(Body):
    error: str | None = None


class CommandRun(Record):
    run_id: int
    project_id: str
    command: str
    status: str
    arguments: list[Any]


# --- checkpoints --------------------------------------------------------------------------


class CheckpointIn(Body):
    instance_id: str
    state: Any
    label: str = ""


class Checkpoint(Record):
    checkpoint_id: int
    project_id: str
    instance_id: str
    label: str
    state: Any = None


# --- the audit chain ------------------------------------------


class AuditVerification(Record):
    ok: bool
    sealed: int
    unsealed: int
    problems: list[str]
    problem_count: int
