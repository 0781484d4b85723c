"""The service layer: one use case = one transaction, with its audit row inside.

Front ends (CLI, hooks, MCP, HTTP) and the seed-compatible classes call only this layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ctxdb.settings import Settings
from ctxdb.storage import Migrator, Storage, Tx, open_storage

# The services are imported when first used, not here: a hook process (one per agent event)
# needs one or two of them, and importing them all would cost more than its transaction.
if TYPE_CHECKING:
    from ctxdb.service.operations.audit_chain import AuditChainService
    from ctxdb.service.operations.bundles import BundleService
    from ctxdb.service.operations.doctor import DoctorService
    from ctxdb.service.operations.imports import ImportService
    from ctxdb.service.operations.maintenance import MaintenanceService
    from ctxdb.service.operations.retention import RetentionService
    from ctxdb.service.operations.row_security import RowSecurityService
    from ctxdb.service.usecases.access_tokens import ApiTokenService
    from ctxdb.service.usecases.agent_sessions import AgentSessionService
    from ctxdb.service.usecases.approvals import ApprovalService
    from ctxdb.service.usecases.changes import ChangeFeedService
    from ctxdb.service.usecases.checkpoints import CheckpointService
    from ctxdb.service.usecases.commands import CommandService
    from ctxdb.service.usecases.context import ContextService
    from ctxdb.service.usecases.continuity import ContinuityService
    from ctxdb.service.usecases.conversations import ConversationService
    from ctxdb.service.usecases.hook_events import HookEventService
    from ctxdb.service.usecases.instances import InstanceService
    from ctxdb.service.usecases.memories import MemoryService
    from ctxdb.service.usecases.messages import MessageService
    from ctxdb.service.usecases.observations import ObservationService
    from ctxdb.service.usecases.phases import PhaseService
    from ctxdb.service.usecases.projects import ProjectService
    from ctxdb.service.usecases.recall import RecallService
    from ctxdb.service.usecases.search import SearchService
    from ctxdb.service.usecases.tasks import TaskService
    from ctxdb.service.usecases.tokens import TokenService
    from ctxdb.service.usecases.transcripts import TranscriptService


MAX_AUDIT_PAGE = 1_000_000


class Ctxdb:
    """All services over one storage. Open with :meth:`open` or :func:`ctxdb.open`.

    Each service is created on first access and kept (``context`` and ``sessions`` share
    ``instances``). ``sessions`` and ``transcripts`` serve the agent-client hooks (see
    docs/hooks.md); ``conversations`` holds an app's sessions with its users and their events;
    ``tasks`` is a project's work queue, leased to instances; ``messages`` are sent between
    instances and delivered at least once; ``approvals``, ``commands`` and ``checkpoints`` are
    the workflow records: approval gates, command runs and snapshots of an instance's state.
    """

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.storage = storage
        self.settings = settings

    @cached_property
    def projects(self) -> ProjectService:
        from ctxdb.service.usecases.projects import ProjectService

        return ProjectService(self.storage, self.settings)

    @cached_property
    def phases(self) -> PhaseService:
        from ctxdb.service.usecases.phases import PhaseService

        return PhaseService(self.storage, self.settings)

    @cached_property
    def instances(self) -> InstanceService:
        from ctxdb.service.usecases.instances import InstanceService

        return InstanceService(self.storage, self.settings)

    @cached_property
    def context(self) -> ContextService:
        from ctxdb.service.usecases.context import ContextService

        return ContextService(self.storage, self.settings, self.instances)

    @cached_property
    def changes(self) -> ChangeFeedService:
        """The change feed: every change in commit order, for readers that follow it."""
        from ctxdb.service.usecases.changes import ChangeFeedService

        return ChangeFeedService(self.storage, self.settings)

    @cached_property
    def tokens(self) -> TokenService:
        from ctxdb.service.usecases.tokens import TokenService

        return TokenService(self.storage, self.settings)

    @cached_property
    def access_tokens(self) -> ApiTokenService:
        """The API tokens of ``ctxdb serve`` (not ``tokens``, an instance's token usage)."""
        from ctxdb.service.usecases.access_tokens import ApiTokenService

        return ApiTokenService(self.storage, self.settings)

    @cached_property
    def sessions(self) -> AgentSessionService:
        from ctxdb.service.usecases.agent_sessions import AgentSessionService

        return AgentSessionService(self.storage, self.settings, self.instances)

    @cached_property
    def continuity(self) -> ContinuityService:
        """Handoffs for sessions that stopped without one, and the live siblings."""
        from ctxdb.service.usecases.continuity import ContinuityService

        return ContinuityService(self.storage, self.settings)

    @cached_property
    def recall(self) -> RecallService:
        """Prompt-time recall: what UserPromptSubmit injects about the prompt."""
        from ctxdb.service.usecases.recall import RecallService

        return RecallService(self.storage, self.settings)

    @cached_property
    def transcripts(self) -> TranscriptService:
        from ctxdb.service.usecases.transcripts import TranscriptService

        return TranscriptService(self.storage, self.settings)

    @cached_property
    def observations(self) -> ObservationService:
        from ctxdb.service.usecases.observations import ObservationService

        return ObservationService(self.storage, self.settings)

    @cached_property
    def hook_events(self) -> HookEventService:
        """An agent client's hook event, as ``ctxdb hook`` and the server's hook route run it."""
        from ctxdb.service.usecases.hook_events import HookEventService

        return HookEventService(self)

    @cached_property
    def memories(self) -> MemoryService:
        from ctxdb.service.usecases.memories import MemoryService

        return MemoryService(self.storage, self.settings)

    @cached_property
    def conversations(self) -> ConversationService:
        from ctxdb.service.usecases.conversations import ConversationService

        return ConversationService(self.storage, self.settings)

    @cached_property
    def tasks(self) -> TaskService:
        from ctxdb.service.usecases.tasks import TaskService

        return TaskService(self.storage, self.settings)

    @cached_property
    def messages(self) -> MessageService:
        from ctxdb.service.usecases.messages import MessageService

        return MessageService(self.storage, self.settings, self.memories, self.context)

    @cached_property
    def approvals(self) -> ApprovalService:
        from ctxdb.service.usecases.approvals import ApprovalService

        return ApprovalService(self.storage, self.settings)

    @cached_property
    def commands(self) -> CommandService:
        from ctxdb.service.usecases.commands import CommandService

        return CommandService(self.storage, self.settings)

    @cached_property
    def checkpoints(self) -> CheckpointService:
        from ctxdb.service.usecases.checkpoints import CheckpointService

        return CheckpointService(self.storage, self.settings)

    @cached_property
    def search(self) -> SearchService:
        from ctxdb.service.usecases.search import SearchService

        return SearchService(self.storage, self.settings)

    @cached_property
    def doctor(self) -> DoctorService:
        from ctxdb.service.operations.doctor import DoctorService

        return DoctorService(self.storage, self.settings, self.instances, lambda: self.search)

    @cached_property
    def imports(self) -> ImportService:
        from ctxdb.service.operations.imports import ImportService

        return ImportService(self.storage, self.settings, self.memories)

    @cached_property
    def retention(self) -> RetentionService:
        """``ctxdb gc``: expired memories, ended instances, old events, archived items."""
        from ctxdb.service.operations.retention import RetentionService

        return RetentionService(self.storage, self.settings)

    @cached_property
    def maintenance(self) -> MaintenanceService:
        """``ctxdb db optimize``: planner statistics and reclaimable space."""
        from ctxdb.service.operations.maintenance import MaintenanceService

        return MaintenanceService(self.storage, self.settings)

    @cached_property
    def audit_chain(self) -> AuditChainService:
        """Hash chains over the audit log: ``seal`` and ``verify`` (docs/audit.md)."""
        from ctxdb.service.operations.audit_chain import AuditChainService

        return AuditChainService(self.storage, self.settings)

    @cached_property
    def bundles(self) -> BundleService:
        """Export to and import from verified JSON Lines bundles (docs/bundles.md)."""
        from ctxdb.service.operations.bundles import BundleService

        return BundleService(self.storage, self.settings)

    @classmethod
    def open(cls, settings: Settings) -> Ctxdb:
        return cls(open_storage(settings), settings)

    def scoped(self, project_ids: Sequence[str] | None, actor: str | None = None) -> Ctxdb:
        """A facade over the same connections whose every transaction may reach only
        ``project_ids`` (``None``: every project), by PostgreSQL's row-level security when
        it is set up (``ctxdb db secure``): a second wall under the services' own checks.
        On SQLite the services' checks are the only wall. ``actor`` names the audit rows."""
        from ctxdb.domain.validation import check_identifier

        ids = None if project_ids is None else tuple(
            check_identifier(pid, "project_id") for pid in project_ids)
        settings = self.settings if actor is None else self.settings.replace(actor=actor)
        return Ctxdb(self.storage.scoped(ids), settings)

    @cached_property
    def row_security(self) -> RowSecurityService:
        """``ctxdb db secure`` and the doctor's check of row-level security (PostgreSQL)."""
        from ctxdb.service.operations.row_security import RowSecurityService

        return RowSecurityService(self.storage, self.settings)

    def migrator(self) -> Migrator:
        return Migrator(self.storage)

    def audit_log(
        self, project_id: str | None = None, entity_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The newest audit entries first, optionally of one project or one entity."""
        from ctxdb.domain.validation import check_identifier, check_limit
        from ctxdb.service.common import decode_all

        check_limit(limit, MAX_AUDIT_PAGE)
        for value, what in ((project_id, "project_id"), (entity_id, "entity_id")):
            if value is not None:
                check_identifier(value, what)

        def unit(tx: Tx) -> list[dict[str, Any]]:
            return decode_all(tx.all("list_audit", project_id=project_id or "",
                                     entity_id=entity_id or "", limit=limit))

        return self.storage.read(unit)

    def close(self) -> None:
        self.storage.close()

    def __enter__(self) -> Ctxdb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
