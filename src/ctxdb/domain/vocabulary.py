"""The words of the use cases the hooks never reach: tasks, command runs, approval gates,
conversation sessions, memories, messages, full-text search, observations and handoffs.

Each closed set of words a caller may pass is one ``StrEnum``: the services check input
against it (:func:`ctxdb.domain.validation.check_choice`) and every front end builds its
choices from it (:func:`ctxdb.domain.models.choices`). The words every hook needs
(priorities, phase and instance statuses) are in :mod:`ctxdb.domain.models`.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    CLAIMED = "claimed"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"


LEASED_TASK_STATUSES = (TaskStatus.CLAIMED, TaskStatus.RUNNING)
FINISHED_TASK_STATUSES = (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED)


class RunStatus(StrEnum):
    """The status of a command run."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


UNFINISHED_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
FINISHED_RUN_STATUSES = (RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED)


class GateStatus(StrEnum):
    """The status of an approval gate."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class ConversationStatus(StrEnum):
    """The status of a conversation session (``ctxdb session``)."""

    OPEN = "open"
    CLOSED = "closed"


class Role(StrEnum):
    """Who wrote an event of a conversation session."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


class MemoryType(StrEnum):
    SEMANTIC = "semantic"
    EPISODIC = "episodic"
    PROCEDURAL = "procedural"


class RecipientKind(StrEnum):
    """How a message is addressed."""

    INSTANCE = "instance"
    ROLE = "role"
    BROADCAST = "broadcast"


class PromotionTarget(StrEnum):
    """What a message is kept as when it is promoted."""

    MEMORY = "memory"
    CONTEXT = "context"


class SearchKind(StrEnum):
    """The kinds of records full-text search finds."""

    CONTEXT = "context"
    MEMORY = "memory"
    EVENT = "event"
    OBSERVATION = "observation"


class ObservationKind(StrEnum):
    """What an agent session did, as its timeline records it (docs/timeline.md)."""

    PROMPT = "prompt"
    READ = "read"
    EDIT = "edit"
    COMMAND = "command"
    ERROR = "error"
    TODO = "todo"
    DECISION = "decision"
    COMPACTION = "compaction"
    SUMMARY = "summary"
    HANDOFF = "handoff"


class HandoffKind(StrEnum):
    """What a handoff was written for."""

    CLEAR = "clear"
    COMPACT = "compact"
    MANUAL = "manual"
    END = "end"


class TokenScope(StrEnum):
    """What an API token of the server may do; each scope includes the ones before it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
