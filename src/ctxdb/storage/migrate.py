"""Versioned schema migrations: numbered SQL files per dialect, applied by a small runner.

Each file ``NNNN_name.sql`` has a ``-- migrate:up`` and a ``-- migrate:down`` section. Every
migration runs in its own transaction together with its bookkeeping row in
``schema_migrations`` (version, name, sha-256 of the up section, time applied), so a failed
migration leaves nothing behind. Concurrent upgrades are serialized (SQLite: BEGIN IMMEDIATE;
PostgreSQL: an advisory lock) and re-check what is applied once they hold the lock, so twenty
processes opening a fresh database at once all succeed and apply each migration exactly once.
The schema of an empty database is created on open, in one transaction (both backends run
DDL transactionally), so that no process ever sees it half made.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from ctxdb.errors import MigrationError, SchemaOutdatedError
from ctxdb.logs import get_logger
from ctxdb.storage.base import Storage, Tx, raw
from ctxdb.storage.dialect import LOCK_MIGRATIONS, Dialect

T = TypeVar("T")

_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
_UP, _DOWN = "-- migrate:up", "-- migrate:down"

log = get_logger(__name__)


class Migration(NamedTuple):
    version: int
    name: str
    up: str
    down: str

    @property
    def checksum(self) -> str:
        import hashlib  # only status and upgrades need checksums, not opening a store

        return hashlib.sha256(self.up.encode()).hexdigest()


def _parse(version: int, name: str, text: str) -> Migration:
    if _UP not in text or _DOWN not in text:
        raise MigrationError(f"migration {version:04d}_{name} lacks '{_UP}' or '{_DOWN}'")
    up = text.split(_UP, 1)[1].split(_DOWN, 1)[0].strip()
    down = text.split(_DOWN, 1)[1].strip()
    return Migration(version, name, up, down)


def migration_files(dialect: Dialect) -> list[tuple[int, str, Path]]:
    """(version, name, file) of each migration of ``dialect``, in order; read directly from
    the package folder, as the queries are (see queries.raw_queries)."""
    folder = Path(__file__).with_name("migrations") / dialect.name
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append((int(match[1]), match[2], entry))
    found.sort()
    expected = list(range(1, len(found) + 1))
    if [version for version, _name, _path in found] != expected:
        raise MigrationError(f"{dialect.name} migrations are not numbered 1..{len(found)}")
    return found


def load_migrations(dialect: Dialect) -> list[Migration]:
    return _read(migration_files(dialect))


def _read(files: list[tuple[int, str, Path]]) -> list[Migration]:
    return [_parse(version, name, path.read_text("utf-8")) for version, name, path in files]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Migrator:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        # The files are read only when a migration runs or is listed: opening a store whose
        # schema is current (every hook process) needs their numbers only.
        self._files = migration_files(storage.dialect)

    @functools.cached_property
    def migrations(self) -> list[Migration]:
        return _read(self._files)

    @property
    def latest_version(self) -> int:
        return self._files[-1][0] if self._files else 0

    def _has_table(self, tx: Tx) -> bool:
        dialect = self.storage.dialect
        row = raw(tx).one_raw(dialect.table_exists, {"name": "schema_migrations"})
        return bool(row and row["n"])

    def current_version(self) -> int:
        def unit(tx: Tx) -> int:
            if not self._has_table(tx):
                return 0
            return int(tx.value("latest_applied_version"))

        return self.storage.read(unit)

    def applied(self) -> list[dict[str, Any]]:
        def unit(tx: Tx) -> list[dict[str, Any]]:
            return tx.all("applied_migrations") if self._has_table(tx) else []

        return self.storage.read(unit)

    def status(self) -> list[dict[str, Any]]:
        """One row per known or applied migration: applied, pending or modified."""
        applied = {row["version"]: row for row in self.applied()}
        rows = []
        for migration in self.migrations:
            row = applied.pop(migration.version, None)
            state = "pending"
            if row is not None:
                state = "applied" if row["checksum"] == migration.checksum else "modified"
            rows.append({
                "version": migration.version,
                "name": migration.name,
                "state": state,
                "applied_at": row["applied_at"] if row else None,
                "checksum": migration.checksum,
            })
        for _version, row in sorted(applied.items()):
            rows.append({**row, "state": "unknown"})
        return rows

    def _target(self, target: int | None, default: int) -> int:
        target = default if target is None else target
        if not 0 <= target <= self.latest_version:
            raise MigrationError(f"target version {target} is not in 0..{self.latest_version}")
        return target

    def upgrade(self, target: int | None = None, dry_run: bool = False) -> list[Migration]:
        """Apply pending migrations up to ``target`` (default: all); returns those applied."""
        target = self._target(target, self.latest_version)
        current = self.current_version()
        plan = [m for m in self.migrations if current < m.version <= target]
        if dry_run:
            return plan
        done = []
        for migration in plan:
            if self._schema_write(functools.partial(self._apply_up, migration=migration)):
                log.info("applied migration %04d_%s", migration.version, migration.name)
                done.append(migration)
        if done and current > 0:
            # A migration may have moved or indexed existing rows: give the planner their
            # statistics now (an empty database, version 0, has none worth gathering).
            self.storage.health().analyze_after_load()
        return done

    def _schema_write(self, unit: Callable[[Tx], T]) -> T:
        """Run a unit that changes the schema. Whether it has search_documents.terms is asked
        again within it (each unit forgets the answer first) and after it, committed or not:
        a write gives documents their terms only where the column exists (base.py)."""
        try:
            return self.storage.write(unit)
        finally:
            self.storage.search_terms = None
            self.storage.documents_written_once = None
            self.storage.memory_documents_once = None
            self.storage.item_documents_once = None
            self.storage.item_numbers_drawn = None
            self.storage.pending_limit = None

    def _apply_up(self, tx: Tx, migration: Migration) -> bool:
        self.storage.search_terms = None  # the schema changes: ask again (base.py)
        self.storage.documents_written_once = None
        self.storage.memory_documents_once = None
        self.storage.item_documents_once = None
        self.storage.item_numbers_drawn = None
        self.storage.pending_limit = None
        tx.lock(LOCK_MIGRATIONS)
        tx.execute("create_migrations_table")
        if int(tx.value("latest_applied_version")) >= migration.version:
            return False  # another process applied it while we waited for the lock
        self._run_up(tx, migration)
        return True

    @staticmethod
    def _run_up(tx: Tx, migration: Migration) -> None:
        try:
            raw(tx).script(migration.up)
        except Exception as exc:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} failed: {exc}"
            ) from exc
        tx.execute("record_migration", version=migration.version, name=migration.name,
                   checksum=migration.checksum, applied_at=_now())

    def create_schema(self) -> bool:
        """Create the whole schema of an empty database (version 0): every migration in one
        transaction under the migration lock, so that a process opening the database
        meanwhile never sees it half made: it waits for the lock, then finds it complete.
        Returns whether this call created it (``False``: another process had begun first)."""
        created = bool(self._schema_write(self._create_all))
        if created:
            log.info("created the schema: migrations 1 to %d applied", self.latest_version)
        return created

    def _create_all(self, tx: Tx) -> bool:
        self.storage.search_terms = None
        tx.lock(LOCK_MIGRATIONS)
        tx.execute("create_migrations_table")
        if int(tx.value("latest_applied_version")) != 0:
            return False
        for migration in self.migrations:
            self._run_up(tx, migration)
        return True

    def downgrade(self, target: int | None = None, dry_run: bool = False) -> list[Migration]:
        """Roll back applied migrations down to ``target`` (default: one step back)."""
        current = self.current_version()
        target = self._target(target, max(current - 1, 0))
        plan = [m for m in reversed(self.migrations) if target < m.version <= current]
        if dry_run:
            return plan
        for migration in plan:
            self._schema_write(functools.partial(self._apply_down, migration=migration))
            log.info("rolled back migration %04d_%s", migration.version, migration.name)
        return plan

    def _apply_down(self, tx: Tx, migration: Migration) -> None:
        self.storage.search_terms = None
        tx.lock(LOCK_MIGRATIONS)
        if int(tx.value("latest_applied_version")) != migration.version:
            raise MigrationError(
                f"cannot roll back {migration.version:04d}: it is not the latest applied"
            )
        raw(tx).script(migration.down)
        tx.execute("forget_migration", version=migration.version)
        self._index_waiting_documents(tx)

    def _index_waiting_documents(self, tx: Tx) -> None:
        """Give every document still without index terms its terms (SQLite's documents wait
        for theirs until a search or a batch, Dialect.pending_limit): an older ctxdb, which
        the schema just taken back lets in, searches without bringing the index current."""
        dialect = self.storage.dialect
        self.storage.pending_limit = None
        if dialect.pending_limit and raw(tx).one_raw(dialect.search_terms_probe, {}):
            from ctxdb.storage.search_engine import index_pending

            index_pending(tx)

    def ensure_current(self, automatic: bool) -> None:
        """Create the schema of an empty database; upgrade an older one (embedded use) or
        refuse to run against it.

        An empty database holds nothing to upgrade or to lose, so its schema is created
        whatever ``automatic`` says: ``ctxdb.open("postgresql://…")`` works on a new database.
        A database at an older version is upgraded only when ``automatic``; a shared
        PostgreSQL database is upgraded on purpose, with ``ctxdb db upgrade``.
        """
        current = self.current_version()
        if current == 0 and self._files:
            self.create_schema()
            current = self.current_version()
        if current == self.latest_version:
            return
        if current > self.latest_version:
            raise SchemaOutdatedError(
                f"the database schema is at version {current}, newer than this ctxdb "
                f"({self.latest_version}); upgrade ctxdb"
            )
        if automatic:
            self.upgrade()
            return
        raise SchemaOutdatedError(
            f"the database schema is at version {current}, ctxdb needs {self.latest_version}: "
            "run `ctxdb db upgrade` to upgrade it",
            current=current,
            required=self.latest_version,
        )
