"""The one exception tree of ctxdb.

Every error the library raises on purpose derives from :class:`CtxdbError` and carries a
stable machine-readable ``code``. Front ends map errors to exit codes, HTTP statuses or MCP
errors through the ``category`` attribute, in one table each, instead of catching dozens of
classes. Driver errors are translated into this tree in the storage layer only.
"""

from __future__ import annotations

from typing import Any


class CtxdbError(Exception):
    """Root of every error ctxdb raises deliberately."""

    code = "ctxdb_error"
    category = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


# --- bad input -----------------------------------------------------------------------------


class ValidationError(CtxdbError):
    """The caller passed a value that can never be accepted; nothing was changed."""

    code = "invalid_input"
    category = "invalid"


class InvalidPriorityError(ValidationError):
    code = "invalid_priority"


class InvalidStatusError(ValidationError):
    code = "invalid_status"


class InvalidIdentifierError(ValidationError):
    code = "invalid_identifier"


class InvalidContentError(ValidationError):
    """Content is not JSON-serializable, or holds something the databases cannot store."""

    code = "invalid_content"


class ContentTooLargeError(ValidationError):
    code = "content_too_large"


class TokenUsageOutOfRangeError(ValidationError):
    code = "token_usage_out_of_range"


class ConfigError(ValidationError):
    code = "invalid_config"


class ClientSettingsError(ConfigError):
    """An agent client's settings file (JSON or TOML) cannot be read or merged safely."""

    code = "invalid_client_settings"


# --- missing things ------------------------------------------------------------------------


class NotFoundError(CtxdbError):
    code = "not_found"
    category = "not_found"


class ProjectNotFoundError(NotFoundError):
    code = "project_not_found"


class PhaseNotFoundError(NotFoundError):
    code = "phase_not_found"


class InstanceNotFoundError(NotFoundError):
    code = "instance_not_found"


class ContextItemNotFoundError(NotFoundError):
    code = "context_item_not_found"


class MemoryNotFoundError(NotFoundError):
    code = "memory_not_found"


class SessionNotFoundError(NotFoundError):
    """No conversation session (``sess_…``) with that id, or not in the given project."""

    code = "session_not_found"


class TaskNotFoundError(NotFoundError):
    """No task with that id, or not in the given project."""

    code = "task_not_found"


class MessageNotFoundError(NotFoundError):
    """No message with that id, or not in the given project."""

    code = "message_not_found"


# --- rules and limits ----------------------------------------------------------------------


class ConflictError(CtxdbError):
    """The request is well formed but contradicts the current state."""

    code = "conflict"
    category = "conflict"


class InvalidTransitionError(ConflictError):
    code = "invalid_transition"


class VersionConflictError(ConflictError):
    """A compare-and-set write expected another version; ``current_version`` is in details
    (``None`` when the memory does not exist, or is deleted or expired)."""

    code = "version_conflict"


class StaleEpochError(ConflictError):
    """A task write carried an epoch that is not the task's current one: its lease has since
    passed to another holder (or was released); ``current_epoch`` is in details."""

    code = "stale_epoch"


class LeaseExpiredError(ConflictError):
    """A task write came from the current lease holder after its lease had expired."""

    code = "lease_expired"


class LimitExceededError(CtxdbError):
    code = "limit_exceeded"
    category = "limit"


class TooManyProjectsError(LimitExceededError):
    code = "too_many_projects"


class TooManyInstancesError(LimitExceededError):
    code = "too_many_instances"


class BudgetExceededError(CtxdbError):
    """CRITICAL context alone does not fit the budget; it is never silently truncated."""

    code = "critical_over_budget"
    category = "limit"


# --- storage -------------------------------------------------------------------------------


class StorageError(CtxdbError):
    code = "storage_error"
    category = "storage"


class DatabaseUnavailableError(StorageError):
    code = "database_unavailable"


class SchemaOutdatedError(StorageError):
    code = "schema_outdated"


class MigrationError(StorageError):
    code = "migration_error"


class TransientStorageError(StorageError):
    """A failure that may succeed when the unit of work is retried."""

    code = "transient_storage_error"
