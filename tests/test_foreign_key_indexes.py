"""Every foreign key of the live schema has an index that leads with its column(s), on both
backends.

Without one, each delete of a parent row (and each ``ON DELETE SET NULL`` or ``CASCADE`` it
triggers) scans the whole child table: ``ctxdb gc`` removing 300 ended instances over
200,000 context items held the SQLite write lock for 15 s (docs/retention.md). The schema is
read from the database itself, so a migration that adds a foreign key without its index
fails here.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

import pytest

from ctxdb.service import Ctxdb


@dataclass(frozen=True)
class ForeignKey:
    table: str
    columns: tuple[str, ...]
    parent: str


@dataclass(frozen=True)
class Index:
    table: str
    name: str
    columns: tuple[str, ...]
    predicate: str | None  # the WHERE of a partial index, as the database prints it


def sqlite_schema(db: Ctxdb) -> tuple[list[ForeignKey], list[Index]]:
    conn = sqlite3.connect(db.settings.sqlite_path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        keys, indexes = [], []
        for table in tables:
            by_id: dict[int, list[tuple[int, str, str]]] = {}
            for fk in conn.execute(f"PRAGMA foreign_key_list({table})"):
                by_id.setdefault(fk[0], []).append((fk[1], fk[3], fk[2]))  # seq, from, table
            keys += [ForeignKey(table, tuple(c for _, c, _ in sorted(cols)), cols[0][2])
                     for cols in by_id.values()]
            info = conn.execute(f"PRAGMA table_info({table})").fetchall()
            primary = tuple(c[1] for c in sorted(info, key=lambda c: c[5]) if c[5])
            if primary:  # the rowid key is no entry of index_list; a composite one is
                indexes.append(Index(table, "primary key", primary, None))
            for _, name, _, _, partial in conn.execute(f"PRAGMA index_list({table})"):
                columns = tuple(r[2] for r in conn.execute(f"PRAGMA index_info({name})"))
                predicate = None
                if partial:
                    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?",
                                       (name,)).fetchone()[0]
                    predicate = sql.rsplit("WHERE", 1)[1]
                indexes.append(Index(table, name, columns, predicate))
        return keys, indexes
    finally:
        conn.close()


def postgres_schema(db: Ctxdb) -> tuple[list[ForeignKey], list[Index]]:
    import psycopg

    with psycopg.connect(db.settings.url) as conn:
        keys = [ForeignKey(table, tuple(columns), parent) for table, columns, parent in
                conn.execute(
                    "SELECT c.conrelid::regclass::text, "
                    "array_agg(a.attname ORDER BY k.ord), c.confrelid::regclass::text "
                    "FROM pg_constraint c "
                    "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) "
                    "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
                    "WHERE c.contype = 'f' "
                    "AND c.connamespace = current_schema()::regnamespace "
                    "GROUP BY c.oid, c.conrelid, c.confrelid")]
        indexes = []
        # indkey holds 0 for an expression column: no attribute joins it, and the column
        # list stops there (an expression never serves a foreign key lookup).
        for table, name, columns, predicate in conn.execute(
                "SELECT t.relname, i.relname, "
                "array_agg(a.attname ORDER BY k.ord) FILTER (WHERE a.attname IS NOT NULL), "
                "pg_get_expr(x.indpred, x.indrelid) "
                "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "JOIN pg_class t ON t.oid = x.indrelid "
                "CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
                "LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
                "WHERE t.relnamespace = current_schema()::regnamespace AND x.indisvalid "
                "AND NOT EXISTS (SELECT 1 FROM unnest(x.indkey::int2[]) AS e(attnum) "
                "                WHERE e.attnum = 0) "
                "GROUP BY t.relname, i.relname, x.indpred, x.indrelid"):
            indexes.append(Index(table, name, tuple(columns), predicate))
        return keys, indexes


def serves(index: Index, key: ForeignKey) -> bool:
    """An index serves the lookups of a foreign key (the parent's delete looking for
    children) when the key's columns lead it, and it is whole, or partial only on
    ``<leading column> IS NOT NULL``, which every equality lookup implies."""
    width = len(key.columns)
    if index.table != key.table or set(index.columns[:width]) != set(key.columns):
        return False
    if index.predicate is None:
        return True
    condition = re.sub(r"\s+", " ", index.predicate).strip().strip("()").strip()
    return condition.lower() == f"{index.columns[0]} is not null"


@pytest.fixture
def schema(db: Ctxdb, backend: str) -> tuple[list[ForeignKey], list[Index]]:
    return postgres_schema(db) if backend == "postgres" else sqlite_schema(db)


def test_every_foreign_key_has_a_leading_index(
        schema: tuple[list[ForeignKey], list[Index]]) -> None:
    keys, indexes = schema
    assert len(keys) >= 40  # the schema was read (it has 44 foreign keys at version 12)
    unindexed = sorted(f"{k.table}({', '.join(k.columns)}) -> {k.parent}" for k in keys
                       if not any(serves(index, k) for index in indexes))
    assert not unindexed, (
        f"foreign keys without an index leading with their columns: {unindexed}; a delete "
        "of a parent row scans the whole child table for each (add the index in a migration)")


def test_the_check_tells_a_serving_index_from_others() -> None:
    key = ForeignKey("tasks", ("parent_task_id",), "tasks")
    assert serves(Index("tasks", "a", ("parent_task_id", "task_id"), None), key)
    assert serves(Index("tasks", "b", ("parent_task_id",),
                        "\n    parent_task_id IS NOT NULL"), key)  # SQLite's text
    assert serves(Index("tasks", "c", ("parent_task_id",), "(parent_task_id IS NOT NULL)"), key)
    assert not serves(Index("tasks", "d", ("project_id", "parent_task_id"), None), key)
    assert not serves(Index("tasks", "e", ("parent_task_id",), "status = 'open'"), key)
    assert not serves(Index("phases", "f", ("parent_task_id",), None), key)
