"""What every seed-compatible class shares: opening the store from a path or URL, closing.

The seed's classes took ``db_path``, a SQLite file. Here it may also be a ``postgresql://``
URL; every other setting still comes from the environment and the config file, exactly as for
``ctxdb.open``. The compat classes are front ends: they call the service layer only.
"""

from __future__ import annotations

from typing import Any, Self

from ctxdb.errors import ConfigError, StorageError
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings

DEFAULT_DB_PATH = "ultrathink_context.db"


def compat_settings(db_path: str) -> Settings:
    """Settings for ``db_path``; a relative SQLite path is made absolute now, at construction,
    so that a later ``os.chdir`` cannot point the object at another file."""
    if not isinstance(db_path, str):
        raise ConfigError(f"db_path must be a string (a SQLite path or a postgresql:// URL), "
                          f"got {type(db_path).__name__}")
    settings = load_settings(url=db_path)
    if settings.is_postgres:
        return settings
    return settings.replace(url=str(settings.sqlite_path))


def store_item(
    db: Ctxdb, project_id: str, content: dict[str, Any], priority: str, content_type: str,
    phase_id: int | None,
) -> int:
    """The seed's ``store_context``: store one item, return its id (the ``snapshot_id``)."""
    item = db.context.store(project_id, content, priority, content_type, phase_id)
    return int(item["item_id"])


def with_snapshot_id(item: dict[str, Any]) -> dict[str, Any]:
    """A context item as the seed returned it: its id is also called ``snapshot_id``."""
    return {"snapshot_id": item["item_id"], **item}


class CompatBase:
    """Owns one :class:`Ctxdb`; usable as a context manager; ``close`` may be called twice."""

    def __init__(self, db_path: str = DEFAULT_DB_PATH) -> None:
        settings = compat_settings(db_path)
        self.db_path = settings.url
        self._db: Ctxdb | None = Ctxdb.open(settings)

    @property
    def db(self) -> Ctxdb:
        if self._db is None:
            raise StorageError(f"this {type(self).__name__} has been closed")
        return self._db

    def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
