"""What the tables of one bundle merge share (see :mod:`bundle_merge`): the import's options
and counts, the map of the bundle's ids to this database's, and the counters new ids are
drawn from."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ctxdb.errors import BundleError
from ctxdb.progress import Progress
from ctxdb.storage.base import Tx
from ctxdb.storage.bulk import TableSql, draw_identities, max_key
from ctxdb.storage.dialect import Dialect
from ctxdb.storage.tables import numbered_space

NEW_IDS_AT_ONCE = 500  # numbers drawn from a PostgreSQL counter per round trip


@dataclass
class TableCounts:
    rows: int = 0
    inserted: int = 0
    skipped: int = 0
    replaced: int = 0
    conflicts: int = 0
    renumbered: int = 0  # inserted with a new id, their number being taken here

    def to_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "inserted": self.inserted, "skipped": self.skipped,
                "replaced": self.replaced, "conflicts": self.conflicts,
                "renumbered": self.renumbered}


@dataclass
class ImportOptions:
    write: bool  # False: a dry run, which only counts
    replace: bool
    progress: Progress
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    foreign: int = 0  # conflicts with rows of other projects, which nothing may overwrite
    resealed: dict[str, dict[str, Any]] = field(default_factory=dict)

    def clear(self) -> None:
        """Before a (retried) transaction."""
        self.conflicts.clear()
        self.foreign = 0
        self.resealed.clear()


def is_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class IdMap:
    """Per numbered space: each bundle id's id in this database, and the ids this import has
    placed rows at (kept, matched or new), which no other record may take."""

    def __init__(self) -> None:
        self.local: dict[str, dict[int, int]] = defaultdict(dict)
        self.taken: dict[str, set[int]] = defaultdict(set)

    def place(self, space: str, bundle_id: int, local_id: int) -> None:
        if bundle_id in self.local[space]:
            raise BundleError(f"damaged bundle: the id {bundle_id} of {space} is repeated; "
                              "nothing was imported")
        self.local[space][bundle_id] = local_id
        self.taken[space].add(local_id)

    def require(self, space: str, bundle_id: int, where: str) -> int:
        local = self.local[space].get(bundle_id)
        if local is None:
            raise BundleError(f"{where} refers to {space} {bundle_id}, which the bundle does "
                              "not hold; nothing was imported")
        return local

    def follow(self, space: str, value: Any) -> Any:
        """A number (or a list of them) as it is here; numbers the bundle does not hold (rows
        removed since) stay as they were."""
        if isinstance(value, list):
            return [self.follow(space, v) for v in value]
        if is_number(value):
            return self.local[space].get(value, value)
        return value


class Counter:
    """New ids of a numbered space: past every id its tables hold, and drawn from the
    database's counter where it has one (so never one a concurrent writer draws)."""

    def __init__(self, tx: Tx, dialect: Dialect, space: str, write: bool) -> None:
        tables = numbered_space(space)
        self.tx, self.write = tx, write
        self.sql = TableSql(tables[0], tables[0].key, dialect)
        self.floor = max(max_key(tx, TableSql(t, t.key, dialect)) for t in tables) + 1
        self.pending: list[int] = []

    def take(self, taken: set[int]) -> int:
        while True:
            if not self.pending:
                drawn = (draw_identities(self.tx, self.sql, self.floor, NEW_IDS_AT_ONCE)
                         if self.write else None)
                if drawn is None:
                    drawn = list(range(self.floor, self.floor + NEW_IDS_AT_ONCE))
                self.pending = sorted(drawn, reverse=True)
                self.floor = max(drawn) + 1
            candidate = self.pending.pop()
            if candidate not in taken:
                return candidate


class Merge:
    """What the tables of one import into a database holding rows share."""

    def __init__(self, tx: Tx, dialect: Dialect, project_id: str | None,
                 options: ImportOptions) -> None:
        self.tx, self.dialect, self.options = tx, dialect, options
        self.bundle_project = project_id
        # The projects the bundle's rows may belong to (a whole database: also no project).
        self.projects: set[str | None] = {project_id} if project_id else {None}
        self.present: set[str] = set()  # the bundle's projects this database held already
        self.ids = IdMap()
        self.owners: dict[str, dict[Any, str | None]] = defaultdict(dict)
        self.audit_hashes: dict[int, tuple[str, str]] = {}  # local id -> (bundle's, now)
        self._counters: dict[str, Counter] = {}

    def new_id(self, space: str) -> int:
        if space not in self._counters:
            self._counters[space] = Counter(self.tx, self.dialect, space, self.options.write)
        return self._counters[space].take(self.ids.taken[space])


def project_name(owner: Any) -> str:
    return "no project" if owner is None else f"project {owner}"
