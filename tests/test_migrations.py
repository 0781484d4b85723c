"""Schema migrations: status, upgrade/downgrade, dry runs, checksums, outdated databases, and
the equivalence of the SQLite and PostgreSQL schemas.

Each test gets its own empty database (a new SQLite file, or a new PostgreSQL database that
is dropped afterwards), so that downgrading never disturbs the shared test database.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

import ctxdb
from ctxdb.errors import MigrationError, SchemaOutdatedError
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings
from ctxdb.storage import Migrator, Storage, connect_storage
from ctxdb.storage.migrate import load_migrations

DATA_TABLES = {"projects", "phases", "instances", "context_items", "handoffs", "audit_log",
               "injections", "transcripts", "api_usage", "compactions", "memories",
               "memory_versions", "sessions", "session_events", "tasks",
               "task_dependencies", "messages", "message_deliveries",
               "approval_gates", "command_runs", "checkpoints", "archived_context_items",
               "search_documents", "observations"}
# The full-text index is the one part of the schema that differs by design (docs/search.md):
# SQLite's FTS5 table with its shadow tables, PostgreSQL's generated tsvector column and its
# GIN index. Everything else, search_documents and its source views included, is the same.
SQLITE_ONLY_TABLES = {"search_fts", "search_fts_data", "search_fts_idx", "search_fts_docsize",
                      "search_fts_config"}
# The change feed's order index: SQLite walks the same order by the table's own key (0016).
POSTGRES_ONLY = {"columns": {("search_documents", "search_vector")},
                 "indexes": {"idx_search_documents_vector", "idx_audit_change_order"}}
# The terms SQLite's FTS5 index holds for a document whose terms wait for the batch (0028):
# FTS5 must be given them to delete them; PostgreSQL's index is a column of the document.
SQLITE_ONLY_COLUMNS: set[tuple[str, str]] = {("search_documents", "indexed_terms")}


def with_dbname(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of an empty database of the test's backend."""
    if backend == "sqlite":
        yield str(tmp_path / "fresh" / "ctxdb.db")
        return
    import psycopg

    server = request.getfixturevalue("pg_url")
    name = f"ctxdb_migrations_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_dbname(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings_for(url: str, tmp_path: Path, **overrides: Any) -> Settings:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return load_settings(env=env, url=url, actor="user:test", **overrides)


@pytest.fixture
def storage(fresh_url: str, tmp_path: Path) -> Iterator[Storage]:
    """A connection to the empty database that does not migrate it."""
    with connect_storage(settings_for(fresh_url, tmp_path)) as connected:
        yield connected


def raw_execute(url: str, sql: str) -> None:
    """Run SQL with the database driver itself, behind ctxdb's back (to fake corruption)."""
    if url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.encode())
        return
    with sqlite3.connect(url) as conn:
        conn.execute(sql)
    conn.close()


def tables(storage: Storage) -> set[str]:
    present = set()
    for table in (*DATA_TABLES, "schema_migrations"):
        row = storage.read(lambda tx, t=table: tx.one_raw(storage.dialect.table_exists,
                                                          {"name": t}))
        if row and row["n"]:
            present.add(table)
    return present


# --- status, upgrade, downgrade --------------------------------------------------------------


def test_status_of_a_fresh_database(storage: Storage) -> None:
    migrator = Migrator(storage)
    assert migrator.latest_version >= 1
    assert migrator.current_version() == 0
    assert migrator.applied() == []
    status = migrator.status()
    assert [row["version"] for row in status] == list(range(1, migrator.latest_version + 1))
    for row, migration in zip(status, migrator.migrations, strict=True):
        assert row["state"] == "pending"
        assert row["applied_at"] is None
        assert row["name"] == migration.name
        assert row["checksum"] == hashlib.sha256(migration.up.encode()).hexdigest()
    assert tables(storage) == set()  # asking changed nothing


def test_upgrade_applies_and_records_every_migration(storage: Storage) -> None:
    migrator = Migrator(storage)
    applied = migrator.upgrade()
    assert [m.version for m in applied] == [m.version for m in migrator.migrations]
    assert migrator.current_version() == migrator.latest_version
    assert tables(storage) == DATA_TABLES | {"schema_migrations"}
    rows = migrator.applied()
    assert [(r["version"], r["name"], r["checksum"]) for r in rows] == [
        (m.version, m.name, m.checksum) for m in migrator.migrations]
    assert all(row["applied_at"].endswith("Z") for row in rows)
    assert {row["state"] for row in migrator.status()} == {"applied"}
    assert migrator.upgrade() == []  # nothing left to do


def test_dry_runs_change_nothing(storage: Storage) -> None:
    migrator = Migrator(storage)
    plan = migrator.upgrade(dry_run=True)
    assert [m.version for m in plan] == [m.version for m in migrator.migrations]
    assert migrator.current_version() == 0
    assert tables(storage) == set()
    migrator.upgrade()
    down_plan = migrator.downgrade(0, dry_run=True)
    assert [m.version for m in down_plan] == [m.version for m in reversed(migrator.migrations)]
    assert migrator.current_version() == migrator.latest_version
    assert tables(storage) == DATA_TABLES | {"schema_migrations"}


def test_downgrade_to_zero_and_upgrade_again(fresh_url: str, tmp_path: Path) -> None:
    settings = settings_for(fresh_url, tmp_path, auto_migrate=True)
    with Ctxdb.open(settings) as db:
        db.projects.create("before the round trip")
        migrator = db.migrator()
        rolled_back = migrator.downgrade(0)
        assert [m.version for m in rolled_back] == list(range(migrator.latest_version, 0, -1))
        assert migrator.current_version() == 0
        assert tables(db.storage) == {"schema_migrations"}
        assert {row["state"] for row in migrator.status()} == {"pending"}
        migrator.upgrade()
        assert migrator.current_version() == migrator.latest_version
        assert db.projects.list() == []  # the data went with the tables
        project = db.projects.create("after the round trip")
        assert db.projects.list() == [project]


def test_downgrade_one_step_by_default(storage: Storage) -> None:
    migrator = Migrator(storage)
    migrator.upgrade()
    assert [m.version for m in migrator.downgrade()] == [migrator.latest_version]
    assert migrator.current_version() == migrator.latest_version - 1


@pytest.mark.parametrize("target", [-1, 10_000])
def test_target_out_of_range(storage: Storage, target: int) -> None:
    migrator = Migrator(storage)
    with pytest.raises(MigrationError, match=f"target version {target} is not in 0.."):
        migrator.upgrade(target)
    with pytest.raises(MigrationError, match=f"target version {target}"):
        migrator.downgrade(target)
    assert migrator.current_version() == 0


def test_modified_checksum_is_reported(storage: Storage, fresh_url: str) -> None:
    migrator = Migrator(storage)
    migrator.upgrade()
    raw_execute(fresh_url, "UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1")
    first = migrator.status()[0]
    assert (first["version"], first["state"]) == (1, "modified")
    assert first["checksum"] == migrator.migrations[0].checksum  # the file's, not the row's


def test_unknown_applied_version_is_reported_and_refused(
    storage: Storage, fresh_url: str, tmp_path: Path
) -> None:
    migrator = Migrator(storage)
    migrator.upgrade()
    raw_execute(fresh_url, "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
                           " VALUES (9999, 'from_the_future', 'x', '2030-01-01T00:00:00.000Z')")
    assert migrator.status()[-1]["state"] == "unknown"
    assert migrator.status()[-1]["version"] == 9999
    with pytest.raises(SchemaOutdatedError, match="newer than this ctxdb"):
        ctxdb.open(settings_for(fresh_url, tmp_path, auto_migrate=True))


def test_outdated_database_refuses_to_open(
    backend: str, fresh_url: str, tmp_path: Path
) -> None:
    # PostgreSQL is never upgraded implicitly; SQLite only when auto_migrate is turned off.
    overrides = {"auto_migrate": False} if backend == "sqlite" else {}
    settings = settings_for(fresh_url, tmp_path, **overrides)
    assert not settings.migrates_automatically
    with connect_storage(settings) as older:
        Migrator(older).upgrade(target=1)  # a database made by an older ctxdb
    with pytest.raises(SchemaOutdatedError, match="run `ctxdb db upgrade`") as raised:
        ctxdb.open(settings)
    assert raised.value.code == "schema_outdated"
    with connect_storage(settings) as untouched:
        latest = len(load_migrations(untouched.dialect))
        assert raised.value.details == {"current": 1, "required": latest}
        assert Migrator(untouched).current_version() == 1
        Migrator(untouched).upgrade()
    with ctxdb.open(settings) as db:  # once upgraded on purpose, it opens
        assert db.projects.list() == []


def test_an_empty_database_gets_its_schema_on_first_open(
    backend: str, fresh_url: str, tmp_path: Path
) -> None:
    # Nothing to upgrade and nothing to lose: created even where upgrades are never implicit.
    overrides = {"auto_migrate": False} if backend == "sqlite" else {}
    settings = settings_for(fresh_url, tmp_path, **overrides)
    assert not settings.migrates_automatically
    with ctxdb.open(settings) as db:
        db.projects.create("first")
        migrator = db.migrator()
        assert {row["state"] for row in migrator.status()} == {"applied"}
    if backend == "postgres":  # the seed's "PostgreSQL, same API"
        from ctxdb.compat import MultiProjectManager

        other = f"{fresh_url}_compat"
        create_database(other)
        try:
            with MultiProjectManager(other) as manager:
                assert manager.get_all_projects() == []
        finally:
            drop_database(other)


def create_database(url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(with_dbname(url, "postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(with_dbname(url, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_concurrent_first_opens_create_the_schema_exactly_once(
    backend: str, fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several openers, each on its own connection, race for one new empty database: all of
    them open it, one of them creates the schema, and nobody sees it half made."""
    overrides = {"auto_migrate": False} if backend == "sqlite" else {}
    settings = settings_for(fresh_url, tmp_path, **overrides)
    if backend == "sqlite":
        Path(fresh_url).parent.mkdir(parents=True, exist_ok=True)
    creations: list[bool] = []
    create_all = Migrator._create_all

    def counted(self: Migrator, tx: Any) -> bool:
        created = create_all(self, tx)
        creations.append(created)
        return created

    monkeypatch.setattr(Migrator, "_create_all", counted)
    openers = 8
    start = threading.Barrier(openers)
    opened: list[int] = []
    failures: list[BaseException] = []

    def open_it() -> None:
        try:
            start.wait()
            with ctxdb.open(settings) as db:
                opened.append(db.migrator().current_version())
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    with connect_storage(settings) as storage:
        migrator = Migrator(storage)
        assert opened == [migrator.latest_version] * openers
        assert creations.count(True) == 1  # the others found it made once they held the lock
        rows = migrator.applied()
        assert [r["version"] for r in rows] == [m.version for m in migrator.migrations]


def test_sqlite_creates_its_database_on_first_open(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.db"
    with ctxdb.open(settings_for(str(path), tmp_path)) as db:
        assert path.is_file()
        migrator = db.migrator()
        assert migrator.current_version() == migrator.latest_version
        db.projects.create("first")
    with ctxdb.open(settings_for(f"sqlite:///{path}", tmp_path)) as db:  # and reopens it
        assert [p["name"] for p in db.projects.list()] == ["first"]


# --- the two dialects describe the same schema ---------------------------------------------


def sqlite_schema(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%'") if r[0] not in SQLITE_ONLY_TABLES]
        columns = {}
        for name in names:
            info = conn.execute(f"PRAGMA table_info({name})").fetchall()
            # cid, name, type, notnull, default, pk; SQLite leaves PK columns nullable.
            columns[name] = [(c[1], bool(c[3]) or c[5] > 0) for c in info
                             if (name, c[1]) not in SQLITE_ONLY_COLUMNS]
        indexes = {}
        for index, table in conn.execute(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' "
                "AND name NOT LIKE 'sqlite_autoindex_%'"):
            cols = [r[2] for r in conn.execute(f"PRAGMA index_info({index})")]
            indexes[index] = (table, cols)
        return {"columns": columns, "indexes": indexes}
    finally:
        conn.close()


def postgres_schema(url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url) as conn:
        columns: dict[str, list[tuple[str, bool]]] = {}
        for table, column, nullable in conn.execute(
                "SELECT table_name, column_name, is_nullable FROM information_schema.columns "
                "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"):
            if (table, column) not in POSTGRES_ONLY["columns"]:
                columns.setdefault(table, []).append((column, nullable == "NO"))
        indexes = {}
        for index, table, cols in conn.execute(
                "SELECT i.relname, t.relname, array_agg(a.attname ORDER BY k.ord) "
                "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "JOIN pg_class t ON t.oid = x.indrelid "
                "JOIN pg_namespace n ON n.oid = t.relnamespace "
                "CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord) "
                "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
                "WHERE n.nspname = current_schema() "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) "
                "GROUP BY i.relname, t.relname"):
            if index not in POSTGRES_ONLY["indexes"]:
                indexes[index] = (table, list(cols))
        return {"columns": columns, "indexes": indexes}


@pytest.mark.postgres
def test_both_dialects_end_at_equivalent_schemas(pg_url: str, tmp_path: Path) -> None:
    path = tmp_path / "schema.db"
    with ctxdb.open(settings_for(str(path), tmp_path)):
        pass
    lite, pg = sqlite_schema(path), postgres_schema(pg_url)
    assert set(lite["columns"]) == set(pg["columns"])
    assert DATA_TABLES | {"schema_migrations"} <= set(lite["columns"])
    for table in sorted(lite["columns"]):
        assert lite["columns"][table] == pg["columns"][table], table
    assert lite["indexes"] == pg["indexes"]
    assert len(lite["indexes"]) >= 10


def test_the_lean_audit_log_keeps_every_row_and_id(fresh_url: str, tmp_path: Path) -> None:
    """Migration 0010 rebuilds SQLite's audit_log (and drops indexes on both): the rows and
    their ids stay, new rows are numbered after them, and going back down keeps them too."""
    settings = settings_for(fresh_url, tmp_path, auto_migrate=True)
    with Ctxdb.open(settings) as db:
        migrator = db.migrator()
        migrator.downgrade(9)
        for name in ("one", "two", "three"):
            db.projects.create(name)
        before = db.audit_log(limit=100)
        assert len(before) == 3
        migrator.upgrade(10)
        assert db.audit_log(limit=100) == before
        db.projects.create("four")
        after = db.audit_log(limit=100)
        assert after[1:] == before and after[0]["audit_id"] > before[0]["audit_id"]
        migrator.downgrade(9)
        assert db.audit_log(limit=100) == after
        migrator.upgrade()
        assert db.audit_log(limit=100) == after


def test_documents_written_before_0023_search_the_same_after_it(
    backend: str, fresh_url: str, tmp_path: Path
) -> None:
    """0023 changes how a store writes its search document, not the documents: those of a
    database at 0022 are kept as they are, and found by the same words."""
    from ctxdb.storage.base import raw

    settings = settings_for(fresh_url, tmp_path, auto_migrate=False)
    with connect_storage(settings) as older:
        Migrator(older).upgrade(target=22)
        style = older.dialect.param_style
        older.write(lambda tx: raw(tx).execute_raw(style(
            "INSERT INTO projects (project_id, name, description, status, next_sequence, "
            f"created_at, updated_at) VALUES ('p1', 'p', '', 'active', 3, {older.dialect.now}, "
            f"{older.dialect.now})"), {}))
        for number, word in enumerate(["wombat parsing", "quokkaHandler retries"], start=1):
            older.write(lambda tx, n=number, w=word: raw(tx).execute_raw(style(
                "INSERT INTO context_items (project_id, sequence_number, content_type, "
                "priority, token_count, content, metadata, idempotency_key, created_at) "
                f"VALUES ('p1', :n, 'note', 'HIGH', 3, :content, '{{}}', :key, "
                f"{older.dialect.now})"),
                {"n": n, "content": json.dumps({"note": w}), "key": f"k{n}"}))
        documents = "SELECT doc_id, item_id, body, terms FROM search_documents ORDER BY doc_id"
        before = older.read(lambda tx: [dict(row) for row in raw(tx).all_raw(documents, {})])
        assert len(before) == 2 and all(row["terms"] for row in before)
        Migrator(older).upgrade()
        after = older.read(lambda tx: [dict(row) for row in raw(tx).all_raw(documents, {})])
    assert after == before
    with ctxdb.open(settings) as db:
        for word, item in [("wombat", before[0]["item_id"]), ("retry", before[1]["item_id"])]:
            assert [(hit["kind"], hit["id"]) for hit in db.search.search("p1", word)] == [
                ("context", item)]


def test_memories_search_the_same_across_0024_up_down_and_up(
    fresh_url: str, tmp_path: Path
) -> None:
    """0024 changes how a put writes its memory's search document (SQLite), not the
    documents: those written at 0023 are kept and found, and a database taken down to 0023
    and up again keeps every memory's document current at each version."""
    from ctxdb.storage.base import raw
    from ctxdb.storage.search_text import index_terms

    def documents(db: Ctxdb) -> list[dict[str, Any]]:
        sql = db.storage.dialect.param_style(
            "SELECT d.memory_id, d.body, d.terms, d.occurred_at, s.body AS source_body, "
            "s.occurred_at AS source_occurred_at FROM search_documents d "
            "JOIN search_memory_source s ON s.memory_id = d.memory_id ORDER BY d.memory_id")
        return db.storage.read(lambda tx: [dict(row) for row in raw(tx).all_raw(sql, {})])

    def found(db: Ctxdb, pid: str, word: str) -> list[str]:
        return [hit["key"] for hit in db.search.search(pid, word)]

    settings = settings_for(fresh_url, tmp_path, auto_migrate=True)
    with Ctxdb.open(settings) as db:
        migrator = db.migrator()
        migrator.downgrade(23)
        pid = db.projects.create("memories")["project_id"]
        db.memories.put(pid, "notes", "k", {"note": "wombat"})
        db.memories.put(pid, "notes", "k", {"note": "numbat"}, expected_version=1)
        db.memories.put(pid, "notes", "other", {"note": "unchanged potoroo"})
        before = documents(db)
        assert len(before) == 2 and all(row["terms"] for row in before)
        migrator.upgrade()
        assert documents(db) == before
        assert found(db, pid, "numbat") == ["k"] and found(db, pid, "potoroo") == ["other"]
        steps = [(24, "bilby"), (23, "quokka"), (24, "dingo")]
        for version, (schema, word) in enumerate(steps, start=2):
            if schema < migrator.current_version():
                migrator.downgrade(schema)
            elif schema > migrator.current_version():
                migrator.upgrade()
            db.memories.put(pid, "notes", "k", {"note": word}, expected_version=version)
            assert found(db, pid, word) == ["k"], schema
        assert found(db, pid, "bilby") == [] and found(db, pid, "quokka") == []
        assert found(db, pid, "potoroo") == ["other"]
        for row in documents(db):
            assert row["body"] == row["source_body"]
            assert row["occurred_at"] == row["source_occurred_at"]
            assert row["terms"] == index_terms(row["source_body"])


def test_memories_search_the_same_across_0026_up_down_and_up(
    backend: str, fresh_url: str, tmp_path: Path
) -> None:
    """0026 makes PostgreSQL's put write its memory's search document itself (SQLite's is a
    no-op): a database at 0025 with memories keeps its documents as they are, its first puts
    after the upgrade claim their documents, and a database taken down to 0025 (the column
    and the trigger's condition gone) and up again keeps every document current."""
    from ctxdb.storage.base import raw
    from ctxdb.storage.search_text import index_terms

    documents_sql = (
        "SELECT d.doc_id, d.memory_id, d.content_type, d.namespace, d.body, d.terms, "
        "d.expires_at, d.occurred_at, s.body AS source_body, s.occurred_at AS source_occurred_at, "
        "s.content_type AS source_content_type, s.expires_at AS source_expires_at "
        "FROM search_documents d JOIN search_memory_source s ON s.memory_id = d.memory_id "
        "ORDER BY d.memory_id")

    def documents(db: Ctxdb) -> list[dict[str, Any]]:
        return db.storage.read(lambda tx: [dict(row) for row in
                                           raw(tx).all_raw(documents_sql, {})])

    def assert_current(db: Ctxdb) -> None:
        for row in documents(db):
            for column in ("body", "occurred_at", "content_type", "expires_at"):
                assert row[column] == row[f"source_{column}"], column
            assert row["terms"] == index_terms(row["source_body"])

    def found(db: Ctxdb, pid: str, word: str) -> list[str]:
        return [hit["key"] for hit in db.search.search(pid, word)]

    def claims(db: Ctxdb) -> list[Any]:
        sql = "SELECT key, version, document_version FROM memories ORDER BY key"
        return db.storage.read(lambda tx: [tuple(row.values()) for row in
                                           raw(tx).all_raw(sql, {})])

    settings = settings_for(fresh_url, tmp_path, auto_migrate=True)
    with Ctxdb.open(settings) as db:
        migrator = db.migrator()
        migrator.downgrade(25)
        pid = db.projects.create("memories")["project_id"]
        db.memories.put(pid, "notes", "k", {"note": "wombat"})
        db.memories.put(pid, "notes", "k", {"note": "numbat"}, expected_version=1)
        db.memories.put(pid, "notes:deep", "other", {"note": "unchanged potoroo"})
        before = documents(db)
        assert len(before) == 2 and all(row["terms"] for row in before)
        migrator.upgrade()
        assert migrator.current_version() >= 26
        assert documents(db) == before
        assert found(db, pid, "numbat") == ["k"] and found(db, pid, "potoroo") == ["other"]
        if backend == "postgres":  # rows present at the upgrade: no claim until a put
            assert claims(db) == [("k", 2, None), ("other", 1, None)]
        db.memories.put(pid, "notes", "k", {"note": "bilby"}, expected_version=2)
        if backend == "postgres":
            assert claims(db) == [("k", 3, 3), ("other", 1, None)]
        steps = [(25, "quokka"), (26, "dingo"), (25, "echidna"), (26, "kowari")]
        for version, (schema, word) in enumerate(steps, start=3):
            if schema < migrator.current_version():
                migrator.downgrade(schema)
            elif schema > migrator.current_version():
                migrator.upgrade(schema)
            db.memories.put(pid, "notes", "k", {"note": word}, expected_version=version)
            assert found(db, pid, word) == ["k"], schema
            assert_current(db)
        migrator.upgrade()
        for word in ("wombat", "numbat", "bilby", "quokka", "dingo", "echidna"):
            assert found(db, pid, word) == [], word
        assert found(db, pid, "kowari") == ["k"] and found(db, pid, "potoroo") == ["other"]
        db.memories.delete(pid, "notes", "k", expected_version=7)
        assert found(db, pid, "kowari") == [] and len(documents(db)) == 1
        assert_current(db)


def test_items_search_the_same_across_0025_up_down_and_up(
    backend: str, fresh_url: str, tmp_path: Path
) -> None:
    """0025 rebuilds SQLite's search_documents (its item key deferred) and changes how a store
    writes its item's document: the documents of a database at 0024 are kept, ids, bodies and
    terms, and found by the same words; taken down to 0024 and up again, it keeps every
    document, and stores at each version are found."""
    from ctxdb.storage.base import raw

    documents_sql = ("SELECT doc_id, kind, item_id, memory_id, project_id, content_type, "
                     "priority, body, terms, occurred_at FROM search_documents ORDER BY doc_id")

    def documents(db: Ctxdb) -> list[dict[str, Any]]:
        return db.storage.read(lambda tx: [dict(row) for row in
                                           raw(tx).all_raw(documents_sql, {})])

    def found(db: Ctxdb, pid: str, word: str) -> list[int]:
        return [hit["id"] for hit in db.search.search(pid, word)]

    settings = settings_for(fresh_url, tmp_path, auto_migrate=True)
    with Ctxdb.open(settings) as db:
        migrator = db.migrator()
        migrator.downgrade(24)
        pid = db.projects.create("items")["project_id"]
        wombat = db.context.store(pid, {"note": "wombat parsing"})["item_id"]
        retry = db.context.store(pid, {"note": "quokkaHandler retries"})["item_id"]
        db.memories.put(pid, "notes", "k", {"note": "potoroo"})
        before = documents(db)
        assert len(before) == 3 and all(row["terms"] for row in before)
        migrator.upgrade()
        assert migrator.current_version() >= 25
        assert documents(db) == before
        assert found(db, pid, "wombat") == [wombat] and found(db, pid, "retry") == [retry]
        stored = {}
        for schema, word in [(25, "bilby"), (24, "dingo"), (25, "numbat")]:
            if schema < migrator.current_version():
                migrator.downgrade(schema)
            elif schema > migrator.current_version():
                migrator.upgrade(schema)
            stored[word] = db.context.store(pid, {"note": word})["item_id"]
        migrator.upgrade()
        after = documents(db)
        assert after[:3] == before and len(after) == 6
        for word, item in stored.items():
            assert found(db, pid, word) == [item], word
        assert found(db, pid, "wombat") == [wombat]
        assert len(db.context.full(pid)["HIGH"]) == 5
    if backend == "sqlite":
        with sqlite3.connect(fresh_url) as conn:
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            conn.execute("INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")
        conn.close()
