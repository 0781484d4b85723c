"""The seed's ``TokenManager``: usage tracking and the clear-and-reload cycle."""

from __future__ import annotations

from typing import Any

from ctxdb.compat._base import DEFAULT_DB_PATH, CompatBase, with_snapshot_id


class TokenManager(CompatBase):
    """Token usage of instances; ``db_path`` may be a SQLite path or a PostgreSQL URL.

    ``percentage`` is in percent of the instance's own context window (0–100).
    """

    def __init__(self, db_path: str = DEFAULT_DB_PATH) -> None:
        super().__init__(db_path)

    def check_token_usage(self, instance_id: str) -> dict[str, Any]:
        return self.db.tokens.check_usage(instance_id)

    def clear_and_reload(self, instance_id: str) -> dict[str, Any]:
        """Clear the instance's usage and reload its context pack, in one transaction.

        Never fails for want of room: CRITICAL items over the reload budget are left out of
        ``items`` and named in ``critical_omitted`` (each with its ``snapshot_id``).
        """
        return _seed_shape(self.db.tokens.clear_and_reload(instance_id))

    def auto_manage_tokens(
        self, instance_id: str, threshold: float = 0.85
    ) -> dict[str, Any] | None:
        """:meth:`clear_and_reload`'s result if usage reached ``threshold``, else ``None``."""
        result = self.db.tokens.auto_manage(instance_id, threshold)
        return None if result is None else _seed_shape(result)

    def update_token_usage(self, instance_id: str, token_count: int) -> None:
        """Set the usage; it must lie within the instance's own context window."""
        self.db.tokens.update_usage(instance_id, token_count)

    def get_all_instance_usage(self) -> dict[str, Any]:
        """Usage of every live instance (``status`` is ``healthy`` or ``warning``) and totals."""
        return self.db.tokens.all_usage()


def _seed_shape(result: dict[str, Any]) -> dict[str, Any]:
    """A reload's result with the seed's ``snapshot_id`` on every item it names."""
    for name in ("items", "critical_omitted"):
        result[name] = [with_snapshot_id(item) for item in result[name]]
    return result
