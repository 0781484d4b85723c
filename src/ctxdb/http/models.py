"""The declared request and response bodies of ``/v1`` (they make the OpenAPI document).

Request models refuse unknown fields; the services still check every value (a model only
gives the shape). Response models name the fields a client relies on and let the rest of a
record through, so a new column does not break a client.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class ProjectIn(Body):
    name: str
    description: str = ""
    total_story_points: int = 0


class Project(Record):
    project_id: str
    name: str
    status: str


class PhaseIn(Body):
    phase_number: int
    name: str
    story_points: int = 0
    description: str = ""


class Phase(Record):
    phase_id: int
    project_id: str
    phase_number: int
    name: str
    status: str


class BlockIn(Body):
    reason: str = ""


class InstanceIn(Body):
    phase_id: int | None = None
    instance_id: str | None = None
    hostname: str | None = None
    process_id: int | None = None
    client: str = "api"
    session_id: str | None = None
    worktree: str | None = None
    branch: str | None = None
    model: str | None = None
    context_window: int | None = None
    metadata: dict[str, Any] | None = None


class Instance(Record):
    instance_id: str
    project_id: str
    status: str


class HeartbeatIn(Body):
    phase_id: int | None = None


class UsageIn(Body):
    tokens: int


class Usage(Record):
    instance_id: str
    current_token_usage: int
    context_window: int
    percentage: float


class ReloadIn(Body):
    summary: str = ""
    next_steps: list[Any] | None = None
    working_set: dict[str, Any] | None = None
    budget_tokens: int | None = None


class ContextIn(Body):
    content: Any
    priority: str = "HIGH"
    content_type: str = "code"
    phase_id: int | None = None
    metadata: dict[str, Any] | None = None
    token_count: int | None = None


class SupersedeIn(Body):
    content: Any
    priority: str | None = None
    content_type: str | None = None
    metadata: dict[str, Any] | None = None
    token_count: int | None = None


class ContextItem(Record):
    """An item; with its ``content`` where the service gives it (a store answers a summary)."""

    item_id: int
    project_id: str
    priority: str
    content_type: str


class ContextPage(Record):
    items: list[ContextItem]


class Pack(Record):
    project_id: str
    items: list[dict[str, Any]]
    manifest: dict[str, Any]


class HandoffIn(Body):
    instance_id: str
    summary: str = ""
    next_steps: list[Any] | None = None
    working_set: dict[str, Any] | None = None


class Handoff(Record):
    handoff_id: int
    project_id: str
    instance_id: str


class MemoryIn(Body):
    value: Any
    memory_type: str | None = None
    expected_version: int | None = Field(
        None, description="Compare-and-set: the version the memory must have now (0: absent).")
    ttl_seconds: int | None = None


class Memory(Record):
    project_id: str
    namespace: str
    key: str
    version: int
    value: Any = None


class TaskIn(Body):
    title: str
    description: str = ""
    priority: int = 0
    parent_task_id: int | None = None
    depends_on: list[int] = []


class Task(Record):
    task_id: int
    project_id: str
    title: str
    status: str
    epoch: int


class ClaimIn(Body):
    instance_id: str
    lease_seconds: float = 300.0


class Claim(Record):
    task: Task | None


class LeaseIn(Body):
    epoch: int
    lease_seconds: float = 300.0


class EpochIn(Body):
    epoch: int


class CompleteIn(Body):
    epoch: int
    result: Any = None


class FailIn(Body):
    epoch: int
    error: str


class MessageIn(Body):
    recipient_kind: str
    recipient: str | None = None
    body: Any
    subject: str = ""
    sender: str | None = None


class Message(Record):
    message_id: int
    project_id: str


class InboxIn(Body):
    instance_id: str
    visibility_seconds: float = 30.0
    limit: int = 10


class AckIn(Body):
    instance_id: str


class SearchHit(Record):
    kind: str


class Health(BaseModel):
    status: str
    detail: str = ""


class Problem(Record):
    """An error (RFC 9457, ``application/problem+json``): the error's stable ``code`` and,
    beyond these fields, its details (``item_id``, ``errors``, …)."""

    type: str
    title: str
    status: int
    code: str
    detail: str
