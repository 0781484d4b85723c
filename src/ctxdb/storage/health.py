"""Health probes of one database, for ``ctxdb doctor``: one implementation per backend.

The probes only observe (and, for the few safe repairs, act); what counts as healthy is
decided by the service layer (``service/doctor.py``). A probe that cannot run because the
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

if TYPE_CHECKING:
    from ctxdb.storage.base import Storage
    from ctxdb.storage.migrate import Migration


@dataclass(frozen=True)
class SettingProbe:
    """One connection setting as the database reports it, and what ctxdb requires."""

    name: str
    actual: str
    expected: str = ""  # empty: reported for information, anything is fine

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
class IndexDefinition:
    """A named index as a migration declares it, with the statement that creates it."""

    name: str
    table: str
    sql: str


class Health(abc.ABC):
    """Probes of one storage; every method runs its own short transaction(s)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

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
