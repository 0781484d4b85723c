"""The seed's ``SQLiteContextLoader``: register an instance and load its context."""

from __future__ import annotations

from typing import Any

from ctxdb.compat._base import DEFAULT_DB_PATH, CompatBase, store_item, with_snapshot_id
from ctxdb.domain.models import DEFAULT_CONTENT_TYPE


class SQLiteContextLoader(CompatBase):
    """Loads context for instances; ``db_path`` may be a SQLite path or a PostgreSQL URL."""

    def __init__(self, db_path: str = DEFAULT_DB_PATH) -> None:
        super().__init__(db_path)

    def load_context_for_instance(
        self, instance_id: str, project_id: str, phase_id: int | None = None
    ) -> dict[str, Any]:
        """Register (or revive) the instance and return the project's CRITICAL context."""
        loaded = self.db.context.load_for_instance(instance_id, project_id, phase_id)
        loaded["critical_context"] = [with_snapshot_id(i) for i in loaded["critical_context"]]
        return loaded

    def get_full_context(
        self, project_id: str, phase_id: int | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Every live item by priority: ``{'CRITICAL': [...], 'HIGH': [...], ...}``."""
        grouped = self.db.context.full(project_id, phase_id)
        return {level: [with_snapshot_id(i) for i in items] for level, items in grouped.items()}

    def store_context(
        self,
        project_id: str,
        content: dict[str, Any],
        priority: str = "HIGH",
        content_type: str = DEFAULT_CONTENT_TYPE,
        phase_id: int | None = None,
    ) -> int:
        """Store one context item; returns its id (the seed's ``snapshot_id``)."""
        return store_item(self.db, project_id, content, priority, content_type, phase_id)

    def clear_instance_tokens(self, instance_id: str) -> None:
        """Reset the instance's usage to 0; its context items stay.

        This is a real clear: a new generation starts and a ``clear`` handoff records the
        usage before it, but unlike ``TokenManager.clear_and_reload`` nothing is reloaded.
        """
        self.db.tokens.clear(instance_id)

    def update_heartbeat(self, instance_id: str) -> None:
        self.db.instances.heartbeat(instance_id)
