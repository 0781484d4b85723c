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


class InvalidSearchQueryError(ValidationError):
    """A query with nothing to search for, or (raw mode) one the engine cannot parse."""

    code = "invalid_search_query"


class ConfigError(ValidationError):
    code = "invalid_config"


class UnsupportedFeatureError(ConfigError):
    """What was asked exists on another backend only (row-level security: PostgreSQL)."""

    code = "unsupported_feature"


class LocalOnlyError(UnsupportedFeatureError):
    """Asked of a ctxdb server what only the database itself can do (backup, migrations, …)."""
    code = "local_only"


class BackupInvalidError(ValidationError):
    """A backup that cannot be restored: missing, damaged, not ctxdb's, or from a newer one."""

    code = "backup_invalid"


class ClientSettingsError(ConfigError):
    """An agent client's settings file (JSON or TOML) cannot be read or merged safely."""

    code = "invalid_client_settings"


class InputFileError(ValidationError):
    """A file (or stdin) given as input cannot be read as what it should be: missing,
    unreadable, a folder, not UTF-8 text, not a transcript; ``path`` and ``reason`` are in
    details. Nothing was written."""

    code = "invalid_input_file"


class ImportSourceError(ValidationError):
    """What ``ctxdb import`` was asked to read cannot be imported; nothing was written."""

    code = "invalid_import_source"


class UnsafePathError(ImportSourceError):
    """An import would read outside its folder (a symlink out, an ``@../…`` reference)."""

    code = "unsafe_path"


class MalformedImportFileError(ImportSourceError):
    """A file given to ``ctxdb import files`` is not in the shape it claims (bad JSON, …)."""

    code = "malformed_import_file"


class NotALegacyDatabaseError(ImportSourceError):
    """The file is not a SQLite database with the original specification's schema."""

    code = "not_a_legacy_database"


class InvalidLegacyDataError(ImportSourceError):
    """A row of a legacy database holds a value ctxdb cannot keep (an unknown priority, …)."""

    code = "invalid_legacy_data"


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


class ApprovalGateNotFoundError(NotFoundError):
    """No approval gate with that id, or not in the given project."""

    code = "approval_gate_not_found"


class CommandRunNotFoundError(NotFoundError):
    """No command run with that id, or not in the given project."""

    code = "command_run_not_found"


class CheckpointNotFoundError(NotFoundError):
    """No checkpoint with that id, or not in the given project."""

    code = "checkpoint_not_found"


# --- rules and limits ----------------------------------------------------------------------


class ConflictError(CtxdbError):
    """The request is well formed but contradicts the current state."""

    code = "conflict"
    category = "conflict"


class InvalidTransitionError(ConflictError):
    code = "invalid_transition"


class VersionConflictError(ConflictError):
    """A compare-and-set write expected another version (``current_version`` in details)."""

    code = "version_conflict"


class StaleEpochError(ConflictError):
    """A task write carried an old epoch: its lease has passed on (or was released)."""

    code = "stale_epoch"


class LeaseExpiredError(ConflictError):
    """A task write came from the current lease holder after its lease had expired."""

    code = "lease_expired"


class IdempotencyConflictError(ConflictError):
    """An idempotency key came back with a different request. A key names one request: a
    retry gets the first answer, but another request under the same key is refused instead
    of being answered with a record that does not hold what it asked to store. The key, the
    stored record's id and the ``fields`` that differ are in details."""

    code = "idempotency_conflict"


class AlreadyDecidedError(InvalidTransitionError):
    """An approval gate was decided (or cancelled) before: a decision is never changed."""

    code = "already_decided"


class ApprovalRejectedError(ConflictError):
    """A gate someone waited for was rejected or cancelled instead of approved."""

    code = "approval_rejected"


class DatabaseNotEmptyError(ConflictError):
    """A restore would overwrite a database that holds data, and ``--force`` was not given."""

    code = "database_not_empty"


class BackupTargetExistsError(ConflictError):
    """The backup file already exists and overwriting it was not asked for."""

    code = "backup_target_exists"


class LimitExceededError(CtxdbError):
    code = "limit_exceeded"
    category = "limit"


class TooManyProjectsError(LimitExceededError):
    code = "too_many_projects"


class TooManyInstancesError(LimitExceededError):
    code = "too_many_instances"


class ApprovalTimeoutError(LimitExceededError):
    """An approval gate was still pending when the wait for its decision ran out."""

    code = "approval_timeout"


class BudgetExceededError(CtxdbError):
    """CRITICAL context alone does not fit the budget; it is never silently truncated."""

    code = "critical_over_budget"
    category = "limit"


# --- access (the server's tokens) ---------------------------------------------------------


class AuthenticationError(CtxdbError):
    """A request to the server carried no token, a malformed one, or one that is unknown,
    revoked or expired."""

    code = "unauthenticated"
    category = "unauthenticated"


class PermissionDeniedError(CtxdbError):
    """A valid token whose scope does not allow the request (a read token asked to write)."""

    code = "forbidden"
    category = "forbidden"


class ApiTokenNotFoundError(NotFoundError):
    """No API token with that id (``ctxdb token revoke``)."""

    code = "api_token_not_found"


# --- storage -------------------------------------------------------------------------------


class StorageError(CtxdbError):
    code = "storage_error"
    category = "storage"


class SearchIndexPendingError(StorageError):
    """A search of a SQLite database opened read-only met documents still waiting for their
    full-text index terms (a write gives them their terms in batches; a search brings the
    index current first, which a read-only connection cannot): the search would miss them,
    so it is refused. ``path`` is in details."""

    code = "search_index_pending"


class OutputWriteError(StorageError):
    """A file ctxdb writes (an export, a backup) could not be written: the disk is full,
    the folder is not writable; ``path`` and ``reason`` are in details. Nothing was left at
    the path."""

    code = "output_write_failed"


class DatabaseUnavailableError(StorageError):
    code = "database_unavailable"


class SchemaOutdatedError(StorageError):
    code = "schema_outdated"


class MigrationError(StorageError):
    code = "migration_error"


class ExternalToolError(StorageError):
    """A database tool ctxdb runs (pg_dump, pg_restore, psql) failed; its message is kept."""

    code = "external_tool_failed"


class TransientStorageError(StorageError):
    """A failure that may succeed when the unit of work is retried."""

    code = "transient_storage_error"


class DatabaseTimeoutError(StorageError):
    """No answer within ``pg_socket_timeout`` (a frozen server, a lost network), or a statement
    past ``pg_statement_timeout``; not retried (as long a wait). ``timeout`` in details."""

    code = "database_timeout"


class StatementRefusedError(StorageError):
    """A statement refused for a reason a retry cannot change (a value too large for an index,
    a bad value, a missing privilege, …): never retried. ``sqlstate`` is in details."""

    code = "statement_refused"


# --- bundles and database copies -------------------------------------------------------------


class BundleError(ValidationError):
    """A damaged bundle or not one (bad checksum, missing or extra line, truncated, unreadable),
    refused before any write; ``line`` in details when known."""

    code = "invalid_bundle"


class BundleVersionError(BundleError):
    """A bundle of a format or schema version this ctxdb cannot read (from a newer one)."""

    code = "unsupported_bundle_version"


class ImportConflictError(ConflictError):
    """A bundle record clashes with a different row's primary key or unique value; no write."""

    code = "import_conflict"


class TargetNotEmptyError(ConflictError):
    """``db copy`` into a database that holds rows, without ``--force``."""

    code = "target_not_empty"


class CopyVerificationError(StorageError):
    """After ``db copy`` the target's counts or hashes differ; ``tables`` in details: both."""

    code = "copy_verification_failed"
