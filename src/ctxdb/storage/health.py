"""Health probes of one database, for ``ctxdb doctor``: one implementation per backend.

The probes only observe (and, for the few safe repairs, act); what counts as healthy is
decided by the service layer (``service/operations/doctor.py``). A probe that cannot run because the
database is damaged raises a :mod:`ctxdb.errors` type like every other storage call.

:func:`declared_indexes` reads the migrations' own text to know which named indexes the schema
should have, so that a dropped index is noticed and can be recreated exactly as declared.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctxdb.storage.base import Tx, raw

if TYPE_CHECKING:
    from ctxdb.storage.base import Storage
    from ctxdb.storage.migrate import Migration


@dataclass(frozen=True)
class SettingProbe:
    """One connection setting as the database reports it, and what ctxdb requires."""

    name: str
    actual: str
    expected: str = ""  # empty: reported for information, anything is fine
    risk: str = ""  # what an accepted value may still cost (empty: nothing)

    @property
    def ok(self) -> bool:
        return not self.expected or self.actual.lower() == self.expected.lower()


@dataclass(frozen=True)
class IntegrityReport:
    """What the backend's own consistency check found.

    ``method`` is empty when the backend has no check available (PostgreSQL without the
    amcheck extension). ``damaged_indexes`` names the indexes the problems are in; when every
    problem is in an index, rebuilding those indexes repairs the database.
    """

    method: str
    problems: tuple[str, ...] = ()
    damaged_indexes: tuple[str, ...] = ()
    only_indexes_damaged: bool = False
    unavailable: str = ""  # why nothing was verified, when ``method`` is empty


@dataclass(frozen=True)
class StorageSize:
    database_bytes: int
    wal_bytes: int | None = None  # None: no write-ahead log of this database's own


@dataclass(frozen=True)
class Statistics:
    """How current the planner's statistics are, and how much space waits to be reclaimed.

    ``unanalyzed`` names the tables holding rows that have no statistics at all;
    ``changed_rows`` counts rows written since the last analysis (``None`` where the backend
    does not count them); ``reclaimable_bytes`` is the space of deleted rows or free pages,
    estimated where the backend only counts rows (``None`` where it cannot tell).
    """

    unanalyzed: tuple[str, ...]
    changed_rows: int | None
    reclaimable_bytes: int | None
    last_analyzed: str | None = None  # the oldest analysis of a table, where it is recorded
    note: str = ""  # how this backend plans, where that says more than the figures


@dataclass(frozen=True)
class IndexRef:
    """An index a query must use, as every backend's schema knows it: by its name (named
    indexes are called the same on every backend), as the index behind a UNIQUE constraint
    (which each database names itself), or as the full-text engine's index."""

    name: str = ""
    unique: tuple[str, ...] = ()  # (table, column, …) of the UNIQUE constraint
    full_text: bool = False

    def __post_init__(self) -> None:
        if (bool(self.name), bool(self.unique), self.full_text).count(True) != 1:
            raise ValueError("an index is named, a UNIQUE constraint's, or the full-text one")


@dataclass(frozen=True)
class IndexDefinition:
    """A named index as a migration declares it, with the statement that creates it."""

    name: str
    table: str
    sql: str


class Health(abc.ABC):
    """Probes of one storage; every probe runs its own short transaction(s). The repairs
    (:meth:`rebuild_index`, :meth:`create_index`) run in the caller's transaction instead, so
    that the service's audit row of a repair commits with it."""

    # What an empty :meth:`foreign_key_problems` guarantees, said to the user.
    foreign_key_guarantee: str
    full_text_index: str  # the name plans give the full-text engine's index

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def has_table(self, name: str) -> bool:
        """Whether ctxdb's schema holds the table ``name`` (it may predate its migration)."""
        query = self.storage.dialect.table_exists
        row = self.storage.read(lambda tx: raw(tx).one_raw(query, {"name": name}))
        return bool(row and row["n"])

    def change_feed_wakeup_problems(self) -> list[str] | None:
        """What keeps the change feed's listeners from being woken on writes (PostgreSQL: the
        NOTIFY trigger of migration 0016); None where nothing wakes them (SQLite: the
        servers poll the file)."""
        return None

    def rebuild_index(self, tx: Tx, index: str) -> None:
        """Rebuild ``index`` from its table, in the transaction ``tx``."""
        raw(tx).script(self.reindex_statement(index))

    def create_index(self, tx: Tx, index: IndexDefinition) -> None:
        """Create a missing index exactly as its migration declares it, in ``tx``."""
        raw(tx).script(index.sql)

    @abc.abstractmethod
    def connection_settings(self) -> list[SettingProbe]:
        """The settings of a connection as ctxdb opens it, and the server's version."""

    @abc.abstractmethod
    def integrity(self, thorough: bool) -> IntegrityReport:
        """Run the backend's consistency check (``thorough``: the slower, complete one)."""

    @abc.abstractmethod
    def foreign_key_problems(self) -> list[str]:
        """Rows (or constraints) that break referential integrity, one line each."""

    @abc.abstractmethod
    def query_plan(self, query: str, params: dict[str, Any]) -> list[str]:
        """The plan of a named query, one line per step (nothing is executed)."""

    def index_name(self, index: IndexRef) -> str:
        """The name this database gives ``index`` (in plans and catalogs); for a UNIQUE
        constraint that is missing, a description no plan contains."""
        if index.name:
            return index.name
        if index.full_text:
            return self.full_text_index
        table, *columns = index.unique
        found = self.unique_index(table, tuple(columns))
        return found or f"(no UNIQUE constraint on {table} ({', '.join(columns)}))"

    @abc.abstractmethod
    def unique_index(self, table: str, columns: tuple[str, ...]) -> str | None:
        """The name of the index behind the UNIQUE constraint on exactly ``columns``."""

    @abc.abstractmethod
    def index_names(self) -> set[str]:
        """Every index of ctxdb's schema, named ones and those behind constraints."""

    @abc.abstractmethod
    def reindex_statement(self, index: str) -> str:
        """The statement that rebuilds ``index`` from its table."""

    @abc.abstractmethod
    def size(self) -> StorageSize:
        """How much space the database (and its write-ahead log, if its own) takes."""

    @abc.abstractmethod
    def statistics(self) -> Statistics:
        """The state of the planner's statistics and of reclaimable space (read only)."""

    @abc.abstractmethod
    def optimize(self, vacuum: bool) -> list[str]:
        """Refresh the planner's statistics and reclaim what can be reclaimed while agents
        work, one step per table or pragma, each committed on its own; ``vacuum``: also
        the steps that hold the database for their whole run (SQLite's VACUUM). Returns
        the statements run, in order."""

    @abc.abstractmethod
    def estimated_rows(self, index: str) -> int | None:
        """The rows the planner believes the table of ``index`` holds (``None``: it has no
        statistics of it and plans for a table of any size)."""

    @abc.abstractmethod
    def analyze_after_load(self) -> None:
        """Refresh statistics after many rows arrived at once (a migration, an import, a
        copy), where the backend needs it for good plans."""

    @abc.abstractmethod
    def checkpoint(self) -> StorageSize | None:
        """Copy the write-ahead log into the database and truncate it; ``None`` where the
        backend has no such log of its own (PostgreSQL's WAL belongs to the server)."""


# CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON [ONLY] table … ;
_CREATE_INDEX = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<name>\w+)\s+ON\s+(?:ONLY\s+)?(?P<table>\w+)[^;]*(?:;|\Z)",
    re.IGNORECASE,
)
_DROP_INDEX = re.compile(r"DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?(?P<name>\w+)", re.IGNORECASE)
_DROP_TABLE = re.compile(r"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<table>\w+)", re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*")


def declared_indexes(migrations: Iterable[Migration]) -> dict[str, IndexDefinition]:
    """The named indexes the given migrations leave behind, in the order they are applied."""
    declared: dict[str, IndexDefinition] = {}
    for migration in migrations:
        text = _COMMENT.sub("", migration.up)
        events = [(m.start(), "create", m) for m in _CREATE_INDEX.finditer(text)]
        events += [(m.start(), "drop_index", m) for m in _DROP_INDEX.finditer(text)]
        events += [(m.start(), "drop_table", m) for m in _DROP_TABLE.finditer(text)]
        for _position, kind, match in sorted(events, key=lambda event: event[0]):
            if kind == "create":
                name = match["name"]
                declared[name] = IndexDefinition(name, match["table"], match[0].strip())
            elif kind == "drop_index":
                declared.pop(match["name"], None)
            else:
                for name in [n for n, d in declared.items() if d.table == match["table"]]:
                    del declared[name]
    return declared
