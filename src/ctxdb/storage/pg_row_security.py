"""Row-level security on PostgreSQL (see storage/row_security.py and docs/server.md).

Every table that holds project data gets row-level security ENABLEd and FORCEd (so that it
applies to the tables' owner too) and two policies:

- ``ctxdb_app_scope``, for the application role ``ctxdb serve`` connects as: a row is visible
  and writable only when its project is in the transaction's ``ctxdb.project_ids`` setting
  (``*``: every project, for a fleet-wide token). Without the setting it sees nothing;
- ``ctxdb_owner_scope``, for the owner: the same within a scope, and every row when no scope
  is set and the connected user is the owner itself, so that migrations, ``db copy``,
  backups, doctor and the CLI work as before. "The connected user" matters for views: a
  view reads its tables with its owner's policies, but ``current_user`` stays the caller's,
  so the application role reading a view without a scope still sees nothing.

A table without ``project_id`` is reached through its parent: the policy admits a row when the
parent row it names is visible, which the parent's own policy decides.

The scope is set by the server per transaction, with ``set_config(…, true)``
(:func:`scope_statement`), in the same message as BEGIN: a pooled connection never carries
one request's projects into the next, and no round trip is added.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ctxdb.errors import ConfigError
from ctxdb.storage.base import RawTx, Tx, raw
from ctxdb.storage.row_security import (
    APP_POLICY,
    OWNER_POLICY,
    ProtectedTable,
    RoleInfo,
    RowSecurity,
    RowSecurityState,
)

SETTING = "ctxdb.project_ids"
FLEET_WIDE = "*"

_TABLES = """
SELECT c.relname AS name, pg_get_userbyid(c.relowner) AS owner,
       c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND NOT a.attisdropped
               AND a.attnum > 0 AND a.attname = 'project_id') AS has_project
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
ORDER BY c.relname"""
# Single-column foreign keys, NOT NULL columns first: the one a child's policy goes through.
_FOREIGN_KEYS = """
SELECT t.relname AS child, ca.attname AS column_name, p.relname AS parent,
       pa.attname AS parent_column
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_class p ON p.oid = k.confrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = k.conkey[1]
JOIN pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = k.confkey[1]
WHERE k.contype = 'f' AND n.nspname = current_schema() AND cardinality(k.conkey) = 1
ORDER BY t.relname, NOT ca.attnotnull, ca.attname"""
_POLICIES = """
SELECT tablename AS table_name, policyname AS name, roles::text[] AS roles
FROM pg_policies WHERE schemaname = current_schema()"""
_ROLE = """
SELECT r.rolname AS name, r.rolsuper AS superuser, r.rolbypassrls AS bypass_rls,
       r.rolcanlogin AS can_login,
       EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
                 AND c.relname = ANY(%(tables)s)
                 AND pg_has_role(r.oid, c.relowner, 'MEMBER')) AS owns_tables
FROM pg_roles r WHERE r.rolname = %(role)s"""
_OTHER_RELATIONS = """
SELECT c.relname AS name, c.relkind AS kind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('v', 'S')
ORDER BY c.relname"""

_UNSCOPED = f"coalesce(current_setting('{SETTING}', true), '') = ''"


def scope_value(project_ids: Sequence[str] | None) -> str:
    """The setting's text: ``*`` for every project, else a PostgreSQL array literal."""
    if project_ids is None:
        return FLEET_WIDE
    quoted = ('"' + pid.replace("\\", "\\\\").replace('"', '\\"') + '"' for pid in project_ids)
    return "{" + ",".join(quoted) + "}"


def scope_statement(project_ids: Sequence[str] | None) -> bytes:
    """The statement that sets the scope for the current transaction only."""
    return f"SELECT set_config('{SETTING}', {_literal(scope_value(project_ids))}, true)".encode()


def _literal(text: str) -> str:
    # An escape string, whatever standard_conforming_strings says; ids hold no NUL byte.
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _in_scope(column: str) -> str:
    return (f"(CASE coalesce(current_setting('{SETTING}', true), '') WHEN '' THEN false "
            f"WHEN '{FLEET_WIDE}' THEN true "
            f"ELSE {column} = ANY (current_setting('{SETTING}', true)::text[]) END)")


def _rules(table: ProtectedTable) -> tuple[str, str]:
    """The application's and the owner's condition on one table's rows."""
    if table.via == "project_id":
        app = _in_scope("project_id")
        owner = f"(({_UNSCOPED} AND current_user = {_literal(table.owner)}) OR {app})"
        return app, owner
    column, _, target = table.via.partition(" -> ")
    parent, _, parent_column = target.partition(".")
    through = (f"EXISTS (SELECT 1 FROM {_ident(parent)} p "
               f"WHERE p.{_ident(parent_column)} = {_ident(table.name)}.{_ident(column)})")
    return through, through


class PostgresRowSecurity(RowSecurity):
    def __init__(self, storage: Any) -> None:
        self.storage = storage

    def applies_to(self, table: str) -> bool:
        def unit(tx: Tx) -> bool:
            row = raw(tx).one_raw("SELECT row_security_active(%(t)s::regclass) AS on",
                                  {"t": table})
            return bool(row and row["on"])

        return self.storage.read(unit)  # type: ignore[no-any-return]

    def state(self) -> RowSecurityState:
        def unit(tx: Tx) -> RowSecurityState:
            rtx = raw(tx)
            tables = _protected_tables(rtx)
            names = [t.name for t in tables]
            app = sorted({r for t in tables for r in t.policies.get(APP_POLICY, ())})
            roles = tuple(r for r in (_role(rtx, name, names) for name in app) if r)
            connected = _role(rtx, str(rtx.all_raw("SELECT current_user AS u", {})[0]["u"]),
                              names)
            assert connected is not None
            return RowSecurityState(tables, roles, connected)

        return self.storage.read(unit)  # type: ignore[no-any-return]

    def secure(self, role: str, password: str | None) -> dict[str, Any]:
        def unit(tx: Tx) -> dict[str, Any]:
            rtx = raw(tx)
            tables = _protected_tables(rtx)
            if not tables:
                raise ConfigError("no ctxdb tables in this database's schema: run "
                                  "`ctxdb db upgrade` first")
            outcome = _ensure_role(rtx, role, password, [t.name for t in tables])
            _grant(rtx, role, [t.name for t in tables])
            for table in tables:
                _protect(rtx, table, role)
            return {**outcome, "tables": [{"table": t.name, "via": t.via} for t in tables]}

        return self.storage.write(unit)  # type: ignore[no-any-return]


def _protected_tables(tx: RawTx) -> tuple[ProtectedTable, ...]:
    rows = tx.all_raw(_TABLES, {})
    policies: dict[str, dict[str, tuple[str, ...]]] = {}
    for row in tx.all_raw(_POLICIES, {}):
        policies.setdefault(row["table_name"], {})[row["name"]] = tuple(row["roles"])
    via = {row["name"]: "project_id" for row in rows if row["has_project"]}
    keys = tx.all_raw(_FOREIGN_KEYS, {})
    grown = True
    while grown:  # children of children (an audit entry's seal) until nothing is added
        grown = False
        for key in keys:
            if key["child"] not in via and key["parent"] in via:
                via[key["child"]] = (f"{key['column_name']} -> {key['parent']}."
                                     f"{key['parent_column']}")
                grown = True
    return tuple(ProtectedTable(row["name"], row["owner"], via[row["name"]], row["enabled"],
                                row["forced"], policies.get(row["name"], {}))
                 for row in rows if row["name"] in via)


def _role(tx: RawTx, name: str, tables: list[str]) -> RoleInfo | None:
    row = tx.one_raw(_ROLE, {"role": name, "tables": tables})
    if row is None:
        return None
    return RoleInfo(row["name"], row["superuser"], row["bypass_rls"], row["owns_tables"])


def _ensure_role(tx: RawTx, role: str, password: str | None,
                 tables: list[str]) -> dict[str, Any]:
    """Create the role or bring it to what it must be; refuse one RLS cannot confine."""
    found = _role(tx, role, tables)
    if found is not None and found.escapes:
        raise ConfigError(f"role {role} cannot be the application role: {found.escapes}, so "
                          "row-level security would not apply to it; choose another name",
                          role=role)
    existing = tx.one_raw("SELECT rolcanlogin, rolbypassrls FROM pg_roles WHERE rolname = "
                          "%(role)s", {"role": role})
    secret = f" PASSWORD {_literal(_hashed(tx, password, role))}" if password else ""
    if existing is None:
        tx.execute_raw(f"CREATE ROLE {_ident(role)} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB "
                       f"NOCREATEROLE{secret}", {})
    elif secret or not existing["rolcanlogin"]:
        tx.execute_raw(f"ALTER ROLE {_ident(role)} LOGIN{secret}", {})
    return {"role": role, "created": existing is None, "password_set": bool(password)}


def _hashed(tx: RawTx, password: str, role: str) -> str:
    """The password as the server stores it (SCRAM): the clear text never leaves here."""
    from ctxdb.storage.pg_tx import PostgresTx

    if not isinstance(tx, PostgresTx):
        raise TypeError("a PostgreSQL transaction is needed to hash a password")
    return tx.connection.pgconn.encrypt_password(password.encode(), role.encode()).decode()


def _grant(tx: RawTx, role: str, tables: list[str]) -> None:
    """What ``ctxdb serve`` needs: rows of the protected tables (the policies decide which),
    the schema version, the change feed's key, the views, the sequences that number rows."""
    who = _ident(role)
    tx.execute_raw(f"GRANT USAGE ON SCHEMA {_ident(_schema(tx))} TO {who}", {})
    for table in tables:
        tx.execute_raw(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {_ident(table)} TO {who}", {})
    tx.execute_raw(f"GRANT SELECT ON schema_migrations TO {who}", {})
    # The change feed's key (no project's data): the server seals and opens event ids with it.
    if tx.all_raw("SELECT to_regclass('change_feed_keys') IS NOT NULL AS x", {})[0]["x"]:
        tx.execute_raw(f"GRANT SELECT ON change_feed_keys TO {who}", {})
    invoker = int(tx.all_raw("SHOW server_version_num", {})[0]["server_version_num"]) >= 150000
    for row in tx.all_raw(_OTHER_RELATIONS, {}):
        what = "SELECT" if row["kind"] == "v" else "USAGE, SELECT"
        tx.execute_raw(f"GRANT {what} ON {_ident(row['name'])} TO {who}", {})
        if row["kind"] == "v" and invoker:
            # A view reads its tables with its owner's rights (and policies) unless it is a
            # security_invoker view (PostgreSQL 15 on): then as the caller, scope and all.
            tx.execute_raw(f"ALTER VIEW {_ident(row['name'])} SET (security_invoker = true)",
                           {})


def _schema(tx: RawTx) -> str:
    return str(tx.all_raw("SELECT current_schema() AS s", {})[0]["s"])


def _protect(tx: RawTx, table: ProtectedTable, role: str) -> None:
    """Enable and force RLS with ctxdb's two policies (replaced, so a second run updates)."""
    name = _ident(table.name)
    app, owner = _rules(table)
    tx.execute_raw(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY", {})
    tx.execute_raw(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY", {})
    for policy, to, rule in ((APP_POLICY, role, app), (OWNER_POLICY, table.owner, owner)):
        tx.execute_raw(f"DROP POLICY IF EXISTS {policy} ON {name}", {})
        tx.execute_raw(f"CREATE POLICY {policy} ON {name} TO {_ident(to)} "
                       f"USING ({rule}) WITH CHECK ({rule})", {})
