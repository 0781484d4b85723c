"""The declared request and response bodies of ``/v1`` (they make the OpenAPI document).

Request models refuse unknown fields; the services still check every value (a model only
gives the shape). Response models name the fields a client relies on and let the rest of a
record through, so a new column does not break a client.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from ctxdb.domain.models import DEFAULT_CONTENT_TYPE


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Record(BaseModel):
    """A record as the service answers it, its fields in the service's order (not the
    declared fields first), so that a remote client prints it as the local one does."""

    model_config = ConfigDict(extra="allow")
    _order: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _keep_order(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        record = handler(data)
        if isinstance(data, dict) and isinstance(record, Record):
            record._order = tuple(data)
        return record

    # No return annotation on purpose: pydantic then documents the model's own fields in the
    # OpenAPI document (an annotation would replace them by that type's schema).
    @model_serializer(mode="wrap")
    def _in_order(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        fields = handler(self)
        if not self._order or not isinstance(fields, dict):
            return fields
        ordered = {name: fields[name] for name in self._order if name in fields}
        return ordered | {name: value for name, value in fields.items() if name not in ordered}


class ProjectIn(Body):
    name: str
    description: str = ""
    total_story_points: int = 0
    metadata: dict[str, Any] | None = None
    repo_key: str | None = None


class ProjectUpdateIn(Body):
    """The fields to change; those left out (or null) keep their value."""

    name: str | None = None
    description: str | None = None
    total_story_points: int | None = None
    completed_story_points: int | None = None
    metadata: dict[str, Any] | None = None


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


class AutoReloadIn(ReloadIn):
    threshold: float | None = None  # of the window; default: the server's clear_threshold


class ContextIn(Body):
    content: Any
    priority: str = "HIGH"
    content_type: str = DEFAULT_CONTENT_TYPE
    phase_id: int | None = None
    metadata: dict[str, Any] | None = None
    token_count: int | None = None
    created_by: str | None = None  # the instance (of the project) that wrote it


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


class NewSession(Record):
    """What a new agent session of the client would be given now (SessionStart ``startup``):
    the text it would be injected, the packed items in it, and the handoff offered (null:
    none). Nothing is registered."""

    project_id: str
    client: str
    text: str
    item_ids: list[int]
    handoff: Handoff | None = None


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


class Swept(BaseModel):
    removed: int


class PromoteIn(Body):
    """Keep a message as a memory (``to="memory"``: namespace and key) or a context item
    (``to="context"``: priority)."""

    to: str
    namespace: str | None = None
    key: str | None = None
    priority: str = "HIGH"


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
