"""The seed's ``AsyncContextLoader``: the loader's API as coroutines.

There is one implementation of the logic, :class:`SQLiteContextLoader`; each coroutine runs
the matching method in a worker thread (``asyncio.to_thread``), so the event loop is never
blocked by the database. Both backends are safe to call from several threads at once.
"""

from __future__ import annotations

import asyncio
from typing import Any, Self

from ctxdb.compat._base import DEFAULT_DB_PATH
from ctxdb.compat.loader import SQLiteContextLoader
from ctxdb.domain.models import DEFAULT_CONTENT_TYPE


class AsyncContextLoader:
    """``db_path`` may be a SQLite path or a ``postgresql://`` URL."""

    def __init__(self, db_path: str = DEFAULT_DB_PATH) -> None:
        self._loader = SQLiteContextLoader(db_path)
        self.db_path = self._loader.db_path

    async def load_context_for_instance(
        self, instance_id: str, project_id: str, phase_id: int | None = None
    ) -> dict[str, Any]:
        return await asyncio.to_thread(
            self._loader.load_context_for_instance, instance_id, project_id, phase_id)

    async def get_full_context(
        self, project_id: str, phase_id: int | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        return await asyncio.to_thread(self._loader.get_full_context, project_id, phase_id)

    async def store_context(
        self,
        project_id: str,
        content: dict[str, Any],
        priority: str = "HIGH",
        content_type: str = DEFAULT_CONTENT_TYPE,
        phase_id: int | None = None,
    ) -> int:
        return await asyncio.to_thread(
            self._loader.store_context, project_id, content, priority, content_type, phase_id)

    async def clear_instance_tokens(self, instance_id: str) -> None:
        await asyncio.to_thread(self._loader.clear_instance_tokens, instance_id)

    async def update_heartbeat(self, instance_id: str) -> None:
        await asyncio.to_thread(self._loader.update_heartbeat, instance_id)

    async def close(self) -> None:
        await asyncio.to_thread(self._loader.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
