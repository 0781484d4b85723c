"""Importing a bundle into a database that already holds rows (see docs/bundles.md).

Numbered ids (items, tasks, audit entries …) are only unique within one database: a project
bundle from a laptop and the team database both have a context item 1, of different projects.
So each record of a numbered table is placed like this:

1. its references to numbered rows are rewritten first (tables come parents first, so every
   referenced row is placed already), and so are the ids an audit entry names;
2. it is **already present** when this database has a row with the same content: the row with
   its id, or else a row of the same project equal to it in everything but its own id (a
   project moved here before, whose rows got new ids then). It is skipped, and references to
   it follow the row found;
3. it is **a changed version** of a row of its own project — the row with the same natural key
   (an item's project and sequence number, an idempotency key, a task's project, creation
   time and title: ``Table.natural``), or else the row with its id: a conflict, which
   ``--replace`` settles by overwriting that row (never a row of another project; audit
   entries, which are events and have no versions, and rows of no project are new rows). A
   natural key held by another project's row is a conflict ``--replace`` cannot settle;
4. otherwise it is **new**: inserted with its id when no row holds that number, else with a new
   number from the database's counter.

Records of tables keyed by text (projects, instances, memories, sessions) or by their parents'
keys keep their keys: one held here by another project's row is a conflict that ``--replace``
cannot settle. Every record must belong to one of the bundle's projects (a project bundle: its
project), so nothing of the bundle lands in another project.

Audit seals follow their entries: an entry sealed here already keeps its seal; the others are
sealed at the end of their chain here. Where the chain is new here and its entries unchanged
that reproduces the bundle's seals exactly. Otherwise (entries with new ids, or naming entities
by new ids; a chain this database has already, such as the one of entries of no project) the
bundle's chain is first verified as the bundle holds it (one that does not verify is refused:
sealing it again would hide the damage), then its entries are sealed over their content as
stored here; the import's result gives each such chain's head in the bundle and here.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ctxdb.errors import BundleError, ImportConflictError
from ctxdb.service.operations.bundle_ids import (
    Merge,
    TableCounts,
    project_name,
)
from ctxdb.service.operations.bundle_seals import place_seals
from ctxdb.service.operations.records import RowCodec, encode_json
from ctxdb.storage.bulk import (
    TableSql,
    find_row,
    find_rows_by,
    finish_table,
    insert_rows,
    is_empty,
    stream_rows,
    stream_unowned_rows,
    update_rows,
)
from ctxdb.storage.tables import TABLES, Table, numbered_space

BATCH_ROWS = 2_000
MAX_LISTED_CONFLICTS = 20

# The numbered entity an audit entry's entity_id names, by its entity_type; and the keys of
# its details that hold numbered ids (a number, or a list of them).
AUDIT_ENTITY_SPACES = {
    "context_item": "context_items", "phase": "phases", "task": "tasks",
    "message": "messages", "approval_gate": "approval_gates", "command_run": "command_runs",
    "checkpoint": "checkpoints",
}
AUDIT_DETAIL_SPACES = {
    "superseded_by": "context_items", "archived": "context_items",
    "restored": "context_items", "phase_id": "phases", "handoff_id": "handoffs",
    "injection_id": "injections", "event_id": "session_events", "parent_task_id": "tasks",
    "depends_on": "tasks", "blocked": "tasks",
}
# Tables whose rows own rows of other tables (Scope.parent): the owner of each is remembered.
_PARENTS = frozenset(t.scope.parent for t in TABLES if t.scope.parent is not None)
_SEALS = "audit_seals"


class TableMerge:
    """The records of one table, placed (or, in a dry run, counted) one by one."""

    def __init__(self, merge: Merge, table: Table, columns: tuple[str, ...]) -> None:
        self.merge, self.tx, self.table, self.options = merge, merge.tx, table, merge.options
        self.sql = TableSql(table, columns, merge.dialect)
        self.codec = RowCodec(table, columns)
        self.counts = TableCounts()
        self.bulk = is_empty(self.tx, self.sql)  # COPY where nothing can clash
        self._deferred = [c for c in table.deferred if c in columns]
        self._others = [c for c in columns if c not in table.key]
        self._pending: list[list[Any]] = []
        self._later: list[list[Any]] = []  # deferred values (bundle ids), then the local key
        self._seals: list[dict[str, Any]] = []
        self._index = self._fingerprints() if table.numbers else {}

    # --- one record ---------------------------------------------------------------------

    def add(self, row: dict[str, Any], checksum: str) -> None:
        self.counts.rows += 1
        if self.counts.rows % BATCH_ROWS == 0:
            self.options.progress.advance(BATCH_ROWS)
        row = self._translated(row)
        if self.table.name == _SEALS:
            self._seals.append(row)  # placed at the end, chain by chain
            return
        owner = self.owner(row)
        if self.table.numbers is not None:
            row = self._place_numbered(row, owner)
        else:
            self._place_keyed(row, owner)
        if self.table.name in _PARENTS:  # its children name it by its (placed) key
            self.merge.owners[self.table.name][row[self.table.key[0]]] = owner
        if self.table.name == "audit_log":
            self.merge.audit_hashes[row["audit_id"]] = (checksum, self.codec.checksum(row))

    def _translated(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with its references to numbered rows as they are in this database (its own
        id and its deferred columns still the bundle's)."""
        ids, name = self.merge.ids, self.table.name
        out = dict(row)
        for column, space in self.table.refs:
            value = out.get(column)
            if value is None or column in self.table.deferred:
                continue
            if self.table.kind(column) == "json":
                out[column] = ids.follow(space, value)
            else:
                out[column] = ids.require(space, value, f"a {name} record ({column})")
        if name == "audit_log":
            self._translate_audit(out)
        return out

    def _translate_audit(self, row: dict[str, Any]) -> None:
        ids = self.merge.ids
        space = AUDIT_ENTITY_SPACES.get(row.get("entity_type") or "")
        entity = row.get("entity_id")
        if space is not None and isinstance(entity, str) and entity.isascii() \
                and entity.isdigit():
            row["entity_id"] = str(ids.follow(space, int(entity)))
        details = row.get("details")
        if isinstance(details, dict):
            row["details"] = {key: ids.follow(AUDIT_DETAIL_SPACES[key], value)
                              if key in AUDIT_DETAIL_SPACES else value
                              for key, value in details.items()}

    def owner(self, row: dict[str, Any]) -> str | None:
        """The project the record belongs to: one of the bundle's, or the bundle is refused."""
        scope, name = self.table.scope, self.table.name
        if scope.parent is None:
            owner = row.get(scope.column)
            if name == "projects" and self.merge.bundle_project is None:
                self.merge.projects.add(owner)
        else:
            parents = self.merge.owners[scope.parent]
            if row.get(scope.column) not in parents:
                raise BundleError(f"a {name} record belongs to a {scope.parent} row the bundle "
                                  "does not hold; nothing was imported")
            owner = parents[row[scope.column]]
        if owner not in self.merge.projects:
            raise BundleError(f"a {name} record belongs to {project_name(owner)}, not to the "
                              "bundle's; nothing was imported")
        return owner

    def _place_numbered(self, row: dict[str, Any], owner: str | None) -> dict[str, Any]:
        """Skip, settle or insert a record of a numbered table; the row as placed."""
        space, id_column = self.table.numbers, self.table.key[0]
        assert space is not None
        ids, number = self.merge.ids, row[id_column]
        found = None if number in ids.taken[space] else find_row(
            self.tx, self.sql, {id_column: number})
        if found is not None and self._same(found, row):
            return self._skip(space, number, number, row)
        match = self._match(row)
        if match is not None:
            return self._skip(space, number, match, row)
        counterpart = self._counterpart(row, owner)
        if counterpart is not None:  # the same record, numbered otherwise here
            local = counterpart[self.sql.columns.index(id_column)]
            ids.place(space, number, local)
            placed = {**row, id_column: local}
            if self._versioned(counterpart, row, owner):
                self._changed(placed, owner)
            else:
                self._foreign(row, owner, self._owner_of(counterpart, row))
            return placed
        if found is not None and self._versioned(found, row, owner):
            ids.place(space, number, number)
            self._changed(row, owner)
            return row
        local = number if found is None and number not in ids.taken[space] \
            and self._free_elsewhere(number) else self.merge.new_id(space)
        ids.place(space, number, local)
        if local != number:
            self.counts.renumbered += 1
        placed = {**row, id_column: local}
        self.insert(placed, row)
        return placed

    def _skip(self, space: str, number: int, local: int,
              row: dict[str, Any]) -> dict[str, Any]:
        self.merge.ids.place(space, number, local)
        self.counts.skipped += 1
        return {**row, self.table.key[0]: local}

    def _place_keyed(self, row: dict[str, Any], owner: str | None) -> None:
        found = find_row(self.tx, self.sql, {k: row[k] for k in self.table.key})
        if self.table.name == "projects" and found is not None and owner is not None:
            self.merge.present.add(owner)
        if found is None:
            self.insert(row, row)
        elif self._same(found, row):
            self.counts.skipped += 1
        elif self._owner_of(found, row) == owner:
            self._changed(row, owner)
        else:
            self._foreign(row, owner, self._owner_of(found, row))

    # --- what is here -------------------------------------------------------------------

    def _same(self, found: tuple[Any, ...], row: dict[str, Any]) -> bool:
        return self.codec.checksum(self.codec.canonical(found)) == self.codec.checksum(row)

    def _owner_of(self, found: tuple[Any, ...], row: dict[str, Any]) -> Any:
        """The owner of a row found here, as far as it matters: the project of a table with a
        project column; for a child table the record's own owner when both have the same
        parent, else a marker that equals no project."""
        column = self.table.scope.column
        value = found[self.sql.columns.index(column)]
        if self.table.scope.parent is None:
            return value
        if value == row.get(column):
            return self.merge.owners[self.table.scope.parent].get(value)
        return _ELSEWHERE

    def _counterpart(self, row: dict[str, Any], owner: Any) -> tuple[Any, ...] | None:
        """The first row here (in key order) with the record's natural key, the columns that
        name the same record in any database, that no other record of the import took."""
        natural = {column: row.get(column) for column in self.table.natural}
        if not natural or any(value is None for value in natural.values()) \
                or not set(natural) <= set(self.sql.columns):
            return None
        if self.table.scope.column in natural and owner not in self.merge.present:
            return None  # a key within its project (or parent), which has no rows here
        taken = self.merge.ids.taken[self.table.numbers or ""]
        at = self.sql.columns.index(self.table.key[0])
        return next((found for found in find_rows_by(self.tx, self.sql, natural)
                     if found[at] not in taken), None)

    def _versioned(self, found: tuple[Any, ...], row: dict[str, Any], owner: Any) -> bool:
        """Whether the row here with the record's number is an earlier or later version of it:
        a row of the same project. An audit entry is an event, never a version of another,
        and rows of no project are nobody's to overwrite: such a record is a new row."""
        return (owner is not None and self.table.name != "audit_log"
                and self._owner_of(found, row) == owner)

    def _free_elsewhere(self, number: int) -> bool:
        """No other table of the number's space (live and archived items) holds it."""
        for other in numbered_space(self.table.numbers or ""):
            if other.name != self.table.name and find_row(
                    self.tx, TableSql(other, other.key, self.merge.dialect),
                    {other.key[0]: number}) is not None:
                return False
        return True

    def _fingerprint(self, row: dict[str, Any]) -> str:
        """The row without its own id and deferred columns, canonical."""
        id_column = self.table.key[0]
        return encode_json({k: v for k, v in row.items()
                            if k != id_column and k not in self.table.deferred})

    def _fingerprints(self) -> dict[str, list[int]]:
        """Fingerprint -> ids (in key order) of the rows here of the bundle's projects that
        were here before (and of no project, for a bundle of a whole database): the rows a
        bundle imported before may match, read once before this table gets any row of the
        import."""
        index: dict[str, list[int]] = defaultdict(list)
        at = self.sql.columns.index(self.table.key[0])
        sources = [stream_rows(self.tx, self.sql, project, BATCH_ROWS)
                   for project in sorted(self.merge.present)]
        if None in self.merge.projects and self.table.scope.parent is None:
            sources.append(stream_unowned_rows(self.tx, self.sql, BATCH_ROWS))
        for rows in sources:
            for values in rows:
                index[self._fingerprint(self.codec.canonical(values))].append(int(values[at]))
        for ids in index.values():
            ids.reverse()  # popped from the end: in key order
        return index

    def _match(self, row: dict[str, Any]) -> int | None:
        ids = self._index.get(self._fingerprint(row))
        taken = self.merge.ids.taken[self.table.numbers or ""]
        while ids:
            candidate = ids.pop()
            if candidate not in taken:
                return candidate
        return None

    # --- conflicts ----------------------------------------------------------------------

    def _changed(self, row: dict[str, Any], owner: str | None) -> None:
        """A record whose row here (of the same project) holds different content."""
        if self.options.replace:
            self.counts.replaced += 1
            if self.options.write:
                values = self._values(row, row)
                by_column = dict(zip(self.sql.columns, values, strict=True))
                keys = [by_column[k] for k in self.table.key]
                update_rows(self.tx, self.sql, self._others,
                            [[by_column[c] for c in self._others] + keys])
            return
        self.counts.conflicts += 1
        key = {k: row[k] for k in self.table.key}
        if self.options.write:
            raise ImportConflictError(
                f"{self.table.name} {key} of {project_name(owner)} is here with different "
                "content (changed here since the bundle was made, or changed in the bundle); "
                "nothing was imported. --dry-run lists every such row; --replace would "
                "overwrite them with the bundle's version and lose their changes made here "
                "(it never writes rows of other projects)", table=self.table.name, key=key,
                project_id=owner)
        self._list({"table": self.table.name, "key": key})

    def _foreign(self, row: dict[str, Any], owner: str | None, holder: Any) -> None:
        """A record whose key (not a number that can be given anew) is another project's."""
        self.counts.conflicts += 1
        self.options.foreign += 1
        key = {k: row[k] for k in self.table.key}
        where = project_name(holder) if holder is not _ELSEWHERE else "another row"
        if self.options.write:
            raise ImportConflictError(
                f"{self.table.name} {key} of {project_name(owner)} is already used here by "
                f"{where}; nothing was imported, and --replace never overwrites another "
                "project's rows: rename one of them in its own database first",
                table=self.table.name, key=key, project_id=owner)
        self._list({"table": self.table.name, "key": key, "other_project": True})

    def _list(self, conflict: dict[str, Any]) -> None:
        if len(self.options.conflicts) < MAX_LISTED_CONFLICTS:
            self.options.conflicts.append(conflict)

    # --- writing ------------------------------------------------------------------------

    def insert(self, placed: dict[str, Any], row: dict[str, Any]) -> None:
        self.counts.inserted += 1
        if self.options.write:
            self._pending.append(self._values(placed, row))
            if len(self._pending) >= BATCH_ROWS:
                self._flush()

    def _values(self, placed: dict[str, Any], row: dict[str, Any]) -> list[Any]:
        """Values to write; deferred columns NULL, their bundle values kept for the end."""
        values = self.codec.values(placed)
        if self._deferred:
            later = [row.get(c) for c in self._deferred]
            if any(value is not None for value in later):
                self._later.append(later + [placed[k] for k in self.table.key])
            for column in self._deferred:
                values[self.sql.columns.index(column)] = None
        return values

    def _flush(self) -> None:
        if self._pending:
            insert_rows(self.tx, self.sql, self._pending, bulk=self.bulk)
            self._pending = []

    def finish(self) -> TableCounts:
        if self._seals:
            place_seals(self, self._seals)
        self.options.progress.advance(self.counts.rows % BATCH_ROWS)
        if self.options.write:
            self._flush()
            if self._later:
                update_rows(self.tx, self.sql, self._deferred, self._deferred_values())
            finish_table(self.tx, self.sql)
        return self.counts

    def _deferred_values(self) -> list[list[Any]]:
        """The deferred columns' bundle ids as the rows they name are placed here."""
        spaces = dict(self.table.refs)
        where = f"a {self.table.name} record"
        width = len(self._deferred)
        return [[None if value is None or column not in spaces
                 else self.merge.ids.require(spaces[column], value, where)
                 for column, value in zip(self._deferred, entry[:width], strict=True)]
                + entry[width:] for entry in self._later]


class _Elsewhere:
    """A row's owner when it hangs from another parent than the record: equals no project."""

    def __repr__(self) -> str:
        return "another project"


_ELSEWHERE = _Elsewhere()
