"""Whole-table SQL, built from the table registry (``tables.py``) for one dialect.

Bundles and ``db copy`` read and write every table the same way, so their statements are
generated here rather than written out per table in ``queries/*.sql``. Every identifier in
them comes from the registry, whose names are checked to be plain SQL identifiers; values
always travel as parameters. Nothing here decides what to copy or how to verify it: that is
the service layer's job.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ctxdb.storage.base import Tx, raw
from ctxdb.storage.dialect import Dialect
from ctxdb.storage.tables import DERIVED_REBUILD_QUERIES, DERIVED_TRIGGER_PREFIX, Table

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The page cache of a bulk load's connection (SQLite), in KiB. A load inserts into indexes on
# random keys (idempotency keys): with the default 2 MiB their pages are evicted, spilled to
# the WAL and read back over and over. Measured importing a million items: 18% faster.
# Only as much as the load touches is allocated, and the size is set back afterwards.
BULK_CACHE_KIB = 256 * 1024


@dataclass(frozen=True)
class TableSql:
    """The statements of one table, for one dialect and one list of columns."""

    table: Table
    columns: tuple[str, ...]
    dialect: Dialect

    @property
    def _column_list(self) -> str:
        return ", ".join(self.columns)

    def _scope(self) -> str:
        scope = self.table.scope
        if scope.parent is None:
            return f" WHERE {scope.column} = :project_id"
        return (f" WHERE {scope.column} IN (SELECT {scope.parent_column} FROM {scope.parent}"
                " WHERE project_id = :project_id)")

    def _order(self) -> str:
        keys = [self.dialect.bytewise(k) if self.table.kind(k) == "text" else k
                for k in self.table.key]
        return " ORDER BY " + ", ".join(keys)

    def _key_match(self, named: bool) -> str:
        def mark(key: str) -> str:
            return f":{key}" if named else self.dialect.placeholder

        return " AND ".join(f"{k} = {mark(k)}" for k in self.table.key)

    def select(self, scoped: bool) -> str:
        """Every row (of one project when ``scoped``) in key order."""
        where = self._scope() if scoped else ""
        return self.dialect.compile(
            f"SELECT {self._column_list} FROM {self.table.name}{where}{self._order()}")

    def select_unowned(self) -> str:
        """The rows of no project (a nullable project column), in key order."""
        return self.dialect.compile(
            f"SELECT {self._column_list} FROM {self.table.name} "
            f"WHERE {self.table.scope.column} IS NULL{self._order()}")

    def count(self, scoped: bool) -> str:
        where = self._scope() if scoped else ""
        return self.dialect.compile(f"SELECT count(*) AS n FROM {self.table.name}{where}")

    def any_row(self) -> str:
        return f"SELECT 1 AS n FROM {self.table.name} LIMIT 1"

    def select_by_key(self) -> str:
        return self.dialect.compile(f"SELECT {self._column_list} FROM {self.table.name} "
                                    f"WHERE {self._key_match(named=True)}")

    def select_by(self, columns: Sequence[str]) -> str:
        """The rows whose ``columns`` have the named values, in key order."""
        match = " AND ".join(f"{c} = :{c}" for c in columns)
        return self.dialect.compile(
            f"SELECT {self._column_list} FROM {self.table.name} WHERE {match}{self._order()}")

    def insert(self) -> str:
        marks = ", ".join(self.dialect.placeholder for _ in self.columns)
        return f"INSERT INTO {self.table.name} ({self._column_list}) VALUES ({marks})"

    def copy(self) -> str | None:
        copy_in = self.dialect.copy_in
        return None if copy_in is None else copy_in(self.table.name, self._column_list)

    def update(self, columns: Sequence[str]) -> str:
        """Set ``columns`` of the row with a key; parameters: the columns, then the key."""
        sets = ", ".join(f"{c} = {self.dialect.placeholder}" for c in columns)
        return f"UPDATE {self.table.name} SET {sets} WHERE {self._key_match(named=False)}"

    def max_key(self) -> str:
        """The largest id of a table keyed by one number (0 when it is empty)."""
        key = self.table.key[0]
        return f"SELECT coalesce(max({key}), 0) AS n FROM {self.table.name}"

    def delete_all(self) -> str:
        return f"DELETE FROM {self.table.name}"

    def advance_identity(self) -> str | None:
        advance = self.dialect.advance_identity
        if advance is None or self.table.identity is None:
            return None
        return advance(self.table.name, self.table.identity)

    def advance_identity_past(self) -> tuple[str, ...]:
        """For a table whose key holds another table's numbers: move that counter past them."""
        space = self.table.numbers
        if space is None or space == self.table.name:
            return ()
        return self.dialect.advance_identity_past(space, self.table.key[0], self.table.name)


def stream_rows(
    tx: Tx, sql: TableSql, project_id: str | None, batch: int
) -> Iterator[tuple[Any, ...]]:
    """The table's rows (of one project, or all) in key order, as tuples of ``sql.columns``."""
    params = {} if project_id is None else {"project_id": project_id}
    return raw(tx).rows_raw(sql.select(project_id is not None), params, batch)


def stream_unowned_rows(tx: Tx, sql: TableSql, batch: int) -> Iterator[tuple[Any, ...]]:
    """The table's rows of no project, for a table with a project column of its own."""
    return raw(tx).rows_raw(sql.select_unowned(), {}, batch)


def count_rows(tx: Tx, sql: TableSql, project_id: str | None = None) -> int:
    params = {} if project_id is None else {"project_id": project_id}
    row = raw(tx).one_raw(sql.count(project_id is not None), params)
    return int(row["n"]) if row else 0


def find_row(tx: Tx, sql: TableSql, key: dict[str, Any]) -> tuple[Any, ...] | None:
    row = raw(tx).one_raw(sql.select_by_key(), key)
    return None if row is None else tuple(row[c] for c in sql.columns)


def find_rows_by(tx: Tx, sql: TableSql, values: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows with these values of some columns, in key order."""
    return [tuple(row[c] for c in sql.columns)
            for row in raw(tx).all_raw(sql.select_by(list(values)), values)]


def insert_rows(tx: Tx, sql: TableSql, rows: Iterable[Sequence[Any]], bulk: bool) -> None:
    """Insert rows in ``sql.columns`` order; ``bulk`` uses COPY where the dialect has it (for
    a table that cannot hold any of the keys: one duplicate fails the whole COPY)."""
    copy = sql.copy() if bulk else None
    if copy is None:
        raw(tx).execute_many_raw(sql.insert(), rows)
    else:
        raw(tx).copy_raw(copy, rows)


def update_rows(
    tx: Tx, sql: TableSql, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Rows of the values of ``columns`` followed by the key's values."""
    raw(tx).execute_many_raw(sql.update(columns), rows)


def finish_table(tx: Tx, sql: TableSql) -> None:
    """After explicit ids went in: new rows must be numbered after them, and new items after
    the items' numbers (raise_item_counters)."""
    statement = sql.advance_identity()
    if statement is not None:
        raw(tx).one_raw(statement, {})
    for statement in sql.advance_identity_past():
        raw(tx).execute_raw(statement, {})
    if sql.table.name in ITEM_NUMBER_TABLES:
        raise_item_counters(tx, sql.dialect)


# The tables whose rows hold a project's item numbers (context_items.sequence_number).
ITEM_NUMBER_TABLES = ("context_items", "archived_context_items")


def raise_item_counters(tx: Tx, dialect: Dialect) -> None:
    """After rows went into an item table with numbers of their own (a copy, a restore, a
    bundle): where the schema draws numbers from the sequence (Tx.item_numbers_drawn), the
    sequence set above each of them. A project's counter (projects.next_sequence) is left as
    it came, so that the rows stay those of the source: SQLite's draw (and an older
    PostgreSQL schema's) goes past the project's highest number as well as its counter."""
    probe = dialect.item_numbers_probe
    if probe is not None and raw(tx).one_raw(probe, {}) is not None:
        hold_item_numbers(tx, dialect)
        raise_item_numbers(tx)


def hold_item_numbers(tx: Tx, dialect: Dialect) -> None:
    """Hold the sequence of item numbers to the end of the transaction
    (``Dialect.item_numbers_hold``): waits for the transactions that drew from it, and no
    store draws until this one ends. A project's item-number lock, where the transaction
    takes it, must be taken before, as a store takes it before its draw."""
    raw(tx).execute_raw(dialect.item_numbers_hold, {})


def raise_item_numbers(tx: Tx) -> None:
    """The sequence set above every item number stored (held before: hold_item_numbers)."""
    tx.one("raise_item_numbers")


def max_key(tx: Tx, sql: TableSql) -> int:
    row = raw(tx).one_raw(sql.max_key(), {})
    return int(row["n"]) if row else 0


def draw_identities(tx: Tx, sql: TableSql, floor: int, count: int) -> list[int] | None:
    """``count`` new numbers from the table's identity counter, all at least ``floor``, where
    the dialect has such a counter (other writers draw from it too, so these are never theirs);
    ``None`` where it has not (SQLite: the writer holds the one write lock and counts itself)."""
    dialect, identity = sql.dialect, sql.table.identity
    if dialect.raise_identity is None or dialect.next_identities is None or identity is None:
        return None
    raw(tx).one_raw(dialect.raise_identity(sql.table.name, identity), {"floor": floor})
    rows = raw(tx).all_raw(dialect.next_identities(sql.table.name, identity), {"count": count})
    return [int(row["id"]) for row in rows]


def delete_all(tx: Tx, sql: TableSql) -> int:
    return raw(tx).execute_raw(sql.delete_all(), {})


def is_empty(tx: Tx, sql: TableSql) -> bool:
    return raw(tx).one_raw(sql.any_row(), {}) is None


@dataclass(frozen=True)
class Trigger:
    name: str
    table: str
    sql: str


def suspend_derived_triggers(tx: Tx, dialect: Dialect) -> list[Trigger] | None:
    """Switch off the triggers that keep derived tables (the search index) current, for a bulk
    load into an empty database; ``None`` (nothing switched off) where this session may not.

    :func:`rebuild_derived` must follow in the same transaction: it fills the derived tables
    from the loaded rows and switches the triggers on again.
    """
    rows = raw(tx).all_raw(dialect.triggers_named, {"prefix": DERIVED_TRIGGER_PREFIX})
    if not rows or not all(row["owned"] for row in rows):
        return None
    triggers = [Trigger(str(r["name"]), str(r["table_name"]), str(r["sql"] or "")) for r in rows]
    for trigger in triggers:
        if not (_IDENTIFIER.match(trigger.name) and _IDENTIFIER.match(trigger.table)):
            return None  # names read from the catalog go into SQL text: plain ones only
    for trigger in triggers:
        raw(tx).execute_raw(dialect.suspend_trigger(trigger.name, trigger.table), {})
    return triggers


def rebuild_derived(tx: Tx, dialect: Dialect, triggers: list[Trigger]) -> None:
    """Fill the derived tables from the rows loaded while ``triggers`` were off, then switch
    them on again."""
    from ctxdb.storage.search_engine import index_pending, rebuild_engine_index

    for query in DERIVED_REBUILD_QUERIES:
        tx.execute(query)
    index_pending(tx)  # while the triggers are off: one pass over the documents
    rebuild_engine_index(tx, dialect)
    for trigger in triggers:
        raw(tx).execute_raw(dialect.resume_trigger(trigger.name, trigger.table, trigger.sql), {})


@contextlib.contextmanager
def bulk_page_cache(tx: Tx, dialect: Dialect) -> Iterator[None]:
    """A large page cache on the connection for the duration of a bulk load, where the
    dialect has one of its own (SQLite); the previous size is restored afterwards."""
    if dialect.cache_kib is None or dialect.set_cache_kib is None:
        yield
        return
    row = raw(tx).one_raw(dialect.cache_kib, {})
    before = int(row["kib"]) if row else 0
    if before >= BULK_CACHE_KIB:
        yield
        return
    raw(tx).execute_raw(dialect.set_cache_kib(BULK_CACHE_KIB), {})
    try:
        yield
    finally:
        # A connection setting: it survives the transaction, so it goes back even when the
        # load failed; a failure to set it back must not hide the load's own error.
        with contextlib.suppress(Exception):
            raw(tx).execute_raw(dialect.set_cache_kib(before), {})
