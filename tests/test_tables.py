"""The table registry (storage/tables.py) against the schema the migrations build.

Bundles and ``db copy`` move only the tables the registry lists, so these tests fail when a
migration adds a table or a column the registry does not know (or gets a kind, key, identity
or parent-before-child order wrong): a new table cannot be silently left out of exports.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from ctxdb.service import Ctxdb
from ctxdb.storage.tables import (
    BOOKKEEPING_TABLES,
    DERIVED_TABLES,
    LOCAL_COLUMNS,
    TABLES,
    is_derived,
    table_named,
)

# Self-references whose target row always exists first (a parent task is created before its
# subtasks), so inserting in key order satisfies them without deferring the column.
SELF_REFERENCES_TO_EARLIER_ROWS = {("tasks", "parent_task_id")}
PG_KINDS = {"bigint": "int", "integer": "int", "smallint": "int", "text": "text",
            "jsonb": "json", "json": "json", "timestamp with time zone": "timestamp",
            "boolean": "bool"}


def sqlite_catalog(db: Ctxdb) -> dict[str, Any]:
    conn = sqlite3.connect(db.settings.sqlite_path)
    try:
        tables = {r[0]: r[1] for r in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table'")}
        columns, keys, foreign = {}, {}, []
        for name in tables:
            if is_derived(name) or name in BOOKKEEPING_TABLES:
                continue
            info = conn.execute(f"PRAGMA table_info({name})").fetchall()
            columns[name] = {c[1]: c[2].upper() for c in info
                             if (name, c[1]) not in LOCAL_COLUMNS}
            keys[name] = tuple(c[1] for c in sorted(info, key=lambda c: c[5]) if c[5])
            foreign += [(name, fk[3], fk[2]) for fk in
                        conn.execute(f"PRAGMA foreign_key_list({name})")]
        identity = {name for name, sql in tables.items() if sql and "AUTOINCREMENT" in sql}
        # A single INTEGER PRIMARY KEY is the rowid, which SQLite numbers when no id is given
        # (largest + 1) with or without AUTOINCREMENT.
        rowid = {name for name, key in keys.items()
                 if len(key) == 1 and columns[name][key[0]] == "INTEGER"}
        return {"tables": set(tables), "columns": columns, "keys": keys, "foreign": foreign,
                "identity": identity, "rowid": rowid}
    finally:
        conn.close()


def postgres_catalog(db: Ctxdb) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(db.settings.url) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")}
        columns: dict[str, dict[str, str]] = {}
        identity = set()
        for table, column, data_type, is_identity, generated in conn.execute(
                "SELECT table_name, column_name, data_type, is_identity, is_generated "
                "FROM information_schema.columns WHERE table_schema = current_schema()"):
            if generated == "ALWAYS" or is_derived(table) or table in BOOKKEEPING_TABLES \
                    or (table, column) in LOCAL_COLUMNS:
                continue
            columns.setdefault(table, {})[column] = data_type
            if is_identity == "YES":
                identity.add(table)
        keys = {t: tuple(k) for t, k in conn.execute(
            "SELECT c.conrelid::regclass::text, array_agg(a.attname ORDER BY k.ord) "
            "FROM pg_constraint c CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY "
            "AS k(attnum, ord) JOIN pg_attribute a ON a.attrelid = c.conrelid "
            "AND a.attnum = k.attnum WHERE c.contype = 'p' "
            "AND c.connamespace = current_schema()::regnamespace GROUP BY 1")}
        foreign = [tuple(r) for r in conn.execute(
            "SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text "
            "FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid "
            "AND a.attnum = c.conkey[1] WHERE c.contype = 'f' "
            "AND c.connamespace = current_schema()::regnamespace")]
        return {"tables": tables, "columns": columns, "keys": keys, "foreign": foreign,
                "identity": identity}


@pytest.fixture
def catalog(db: Ctxdb, backend: str) -> dict[str, Any]:
    return postgres_catalog(db) if backend == "postgres" else sqlite_catalog(db)


def test_every_table_of_the_schema_is_registered_or_derived(catalog: dict[str, Any]) -> None:
    unknown = {name for name in catalog["tables"]
               if table_named(name) is None and not is_derived(name)
               and name not in BOOKKEEPING_TABLES}
    assert not unknown, (
        f"tables {sorted(unknown)} are not in storage/tables.py: add them to TABLES (or to "
        "DERIVED_TABLES if the database rebuilds them), or bundles and db copy lose them")
    assert {t.name for t in TABLES} <= catalog["tables"]
    assert not DERIVED_TABLES & {t.name for t in TABLES}


def test_registered_columns_and_keys_match_the_schema(
    catalog: dict[str, Any], backend: str
) -> None:
    for table in TABLES:
        found = catalog["columns"][table.name]
        assert set(found) == set(table.column_names), table.name
        assert catalog["keys"][table.name] == table.key, table.name
        if backend == "sqlite":  # AUTOINCREMENT is an identity; an identity is a rowid
            assert table.name not in catalog["identity"] or table.identity, table.name
            assert table.identity is None or table.name in catalog["rowid"], table.name
        else:
            assert (table.name in catalog["identity"]) == (table.identity is not None), \
                table.name
        for column, declared in found.items():
            kind = table.kind(column)
            if backend == "postgres":
                assert PG_KINDS[declared] == kind, f"{table.name}.{column}"
            else:
                assert declared == ("INTEGER" if kind in ("int", "bool") else "TEXT"), (
                    f"{table.name}.{column}")


def test_parents_come_before_children(catalog: dict[str, Any]) -> None:
    position = {table.name: index for index, table in enumerate(TABLES)}
    for child, column, parent in catalog["foreign"]:
        if child not in position:
            continue  # a derived table pointing at its sources
        if child == parent:
            assert (column in table_named(child).deferred  # type: ignore[union-attr]
                    or (child, column) in SELF_REFERENCES_TO_EARLIER_ROWS), (child, column)
        else:
            assert position[parent] < position[child], (child, column, parent)


def test_every_table_belongs_to_projects_through_a_column(catalog: dict[str, Any]) -> None:
    for table in TABLES:
        scope = table.scope
        if scope.parent is None:
            assert "project_id" in table.column_names, table.name
        else:
            parent = table_named(scope.parent)
            assert parent is not None and "project_id" in parent.column_names, table.name
            assert scope.column in table.column_names, table.name
            assert (table.name, scope.column, scope.parent) in catalog["foreign"], table.name


def test_every_reference_to_a_numbered_row_is_registered(catalog: dict[str, Any]) -> None:
    """A bundle imported next to other projects may give its rows new numbers: the columns
    that hold them must be listed (Table.refs) to be rewritten too."""
    from ctxdb.service.operations.bundle_merge import AUDIT_DETAIL_SPACES, AUDIT_ENTITY_SPACES

    for child, column, parent in catalog["foreign"]:
        source, target = table_named(child), table_named(parent)
        if source is None or target is None or target.numbers is None:
            continue  # a derived table, or a reference to a text key
        assert (column, target.numbers) in source.refs, f"{child}.{column} -> {parent}"
    spaces = {table.numbers for table in TABLES if table.numbers is not None}
    for table in TABLES:
        for column, space in table.refs:
            assert space in spaces and table.kind(column) in ("int", "json"), table.name
    assert set(AUDIT_ENTITY_SPACES.values()) | set(AUDIT_DETAIL_SPACES.values()) <= spaces
    assert {t.name for t in TABLES if t.identity} == spaces
