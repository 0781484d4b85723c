"""Schema management for front ends: where the database is, its migration status, up and down.

Front ends never touch storage, and :meth:`ctxdb.service.Ctxdb.open` refuses a PostgreSQL
schema that is behind (``SchemaOutdatedError``). The commands that fix exactly that situation
(``ctxdb init``, ``ctxdb db …``) therefore come through here: these functions connect without
the schema check and run the :class:`~ctxdb.storage.Migrator`, one connection per call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ctxdb.errors import ValidationError
from ctxdb.settings import Settings
from ctxdb.storage import Migrator, connect_storage
from ctxdb.storage.migrate import Migration


def location(settings: Settings) -> str:
    """Where the database is, safe to print: a file path, or the URL without its password
    (a ctxdb server's URL as it is: a token is never part of it)."""
    if settings.is_server:
        return settings.url
    if not settings.is_postgres:
        return str(settings.sqlite_path)
    parts = urlsplit(settings.url)
    if parts.password is None:
        return settings.url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def _migrator(settings: Settings) -> Iterator[Migrator]:
    storage = connect_storage(settings)
    try:
        yield Migrator(storage)
    finally:
        storage.close()


def _header(settings: Settings, migrator: Migrator) -> dict[str, Any]:
    return {
        "location": location(settings),
        "backend": migrator.storage.dialect.name,
        "latest_version": migrator.latest_version,
    }


def status(settings: Settings) -> dict[str, Any]:
    """The current version and one row per migration (applied, pending, modified, unknown)."""
    with _migrator(settings) as migrator:
        return {
            **_header(settings, migrator),
            "current_version": migrator.current_version(),
            "migrations": migrator.status(),
        }


def _steps(migrations: list[Migration], direction: str) -> list[dict[str, Any]]:
    return [
        {"version": m.version, "name": m.name,
         "sql": m.up if direction == "up" else m.down}
        for m in migrations
    ]


def _check_target(target: int | None, migrator: Migrator) -> None:
    # The migrator reports an out-of-range target as a MigrationError (a storage failure);
    # to a person typing a version number it is bad input, and nothing has been tried yet.
    if target is not None and not 0 <= target <= migrator.latest_version:
        raise ValidationError(
            f"target version {target} is not in 0..{migrator.latest_version}", target=target
        )


def upgrade(
    settings: Settings, target: int | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Apply pending migrations up to ``target`` (default: the latest).

    With ``dry_run`` nothing runs; the result lists the migrations and SQL that would.
    """
    with _migrator(settings) as migrator:
        _check_target(target, migrator)
        before = migrator.current_version()
        if target is not None and target < before:
            raise ValidationError(
                f"target version {target} is below the current version {before}; "
                "use downgrade to go back", target=target, current=before,
            )
        steps = migrator.upgrade(target, dry_run=dry_run)
        return {
            **_header(settings, migrator),
            "direction": "up",
            "dry_run": dry_run,
            "from_version": before,
            "to_version": before if dry_run else migrator.current_version(),
            "migrations": _steps(steps, "up"),
        }


def downgrade(
    settings: Settings, target: int | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Roll back applied migrations down to ``target`` (default: one step back)."""
    with _migrator(settings) as migrator:
        _check_target(target, migrator)
        before = migrator.current_version()
        if target is not None and target > before:
            raise ValidationError(
                f"target version {target} is above the current version {before}; "
                "use upgrade to go forward", target=target, current=before,
            )
        steps = migrator.downgrade(target, dry_run=dry_run)
        return {
            **_header(settings, migrator),
            "direction": "down",
            "dry_run": dry_run,
            "from_version": before,
            "to_version": before if dry_run else migrator.current_version(),
            "migrations": _steps(steps, "down"),
        }


def init(settings: Settings) -> dict[str, Any]:
    """Create the database (SQLite: the file too) or bring its schema up to date."""
    result = upgrade(settings)
    result["created"] = result["from_version"] == 0
    return result
