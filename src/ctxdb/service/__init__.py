"""The service layer: one use case = one transaction, with its audit row inside.

Front ends (CLI, hooks, MCP, HTTP) and the seed-compatible classes call only this layer.
"""

from __future__ import annotations

from typing import Any

from ctxdb.service.context import ContextService
from ctxdb.service.instances import InstanceService
from ctxdb.service.phases import PhaseService
from ctxdb.service.projects import ProjectService
from ctxdb.service.sessions import SessionService
from ctxdb.service.tokens import TokenService
from ctxdb.service.transcripts import TranscriptService
from ctxdb.settings import Settings
from ctxdb.storage import Migrator, Storage, Tx, open_storage


class Ctxdb:
    """All services over one storage. Open with :meth:`open` or :func:`ctxdb.open`.

    ``sessions`` and ``transcripts`` serve the agent-client hooks (see docs/hooks.md).
    """

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.storage = storage
        self.settings = settings
        self.projects = ProjectService(storage, settings)
        self.phases = PhaseService(storage, settings)
        self.instances = InstanceService(storage, settings)
        self.context = ContextService(storage, settings, self.instances)
        self.tokens = TokenService(storage, settings)
        self.sessions = SessionService(storage, settings, self.instances)
        self.transcripts = TranscriptService(storage, settings)

    @classmethod
    def open(cls, settings: Settings) -> Ctxdb:
        return cls(open_storage(settings), settings)

    def migrator(self) -> Migrator:
        return Migrator(self.storage)

    def audit_log(
        self, project_id: str | None = None, entity_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        from ctxdb.service.common import decode_all

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
