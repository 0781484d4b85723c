"""A memory put writes its search document once, with its index terms (issue 14, SQLite's
migration 0024, PostgreSQL's 0026): the put claims the document in the row it writes
(memories.document_version), the trigger leaves it, and the put writes body and terms
together (on PostgreSQL in the put's one statement). Every other update of a memory still gets
its document from the trigger, and its terms from the next write's look."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctxdb.errors import VersionConflictError
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings
from ctxdb.storage import Tx
from ctxdb.storage.base import raw
from ctxdb.storage.dialect import POSTGRES, SQLITE
from ctxdb.storage.queries import compiled_queries
from ctxdb.storage.search_text import index_terms
from pg_counts import search_document_writes

VALUES: list[Any] = [
    {"note": "parseHTTPResponse handles 1.50 retries", "tags": ["alpha", 3, 1e2, None, True]},
    {"zz": {"deep": {"deeper": ["x", {"k": -0.0}]}}, "a": "é café", "b": 12345678901234567890},
    "a plain string value",
    [1, [2, [3, "three"]], {"key": "value"}],
    {"big": "word " * 50_000},
    0.1,
]


def _documents(db: Ctxdb, pid: str) -> list[dict[str, Any]]:
    """Each memory's document beside what search_memory_source makes of the memory."""
    def read(tx: Tx) -> list[dict[str, Any]]:
        return [dict(row) for row in raw(tx).all_raw(db.storage.dialect.param_style(
            "SELECT d.memory_id, d.project_id, d.content_type, d.namespace, d.body, d.terms, "
            "d.expires_at, d.occurred_at, s.project_id AS source_project_id, "
            "s.content_type AS source_content_type, s.namespace AS source_namespace, "
            "s.body AS source_body, s.expires_at AS source_expires_at, "
            "s.occurred_at AS source_occurred_at "
            "FROM search_documents d JOIN search_memory_source s ON s.memory_id = d.memory_id "
            "WHERE d.project_id = :pid ORDER BY d.memory_id"), {"pid": pid})]
    return db.storage.read(read)


def _assert_current(db: Ctxdb, pid: str, count: int) -> None:
    """The documents agree with their memories once the index is current, as a search sees
    it: on SQLite documents wait for their terms until a search, or the write that finds
    Tx.pending_limit of them waiting (index_status reads the index, and so brings it current)."""
    db.search.index_status()
    documents = _documents(db, pid)
    assert len(documents) == count
    for document in documents:
        for column in ("project_id", "content_type", "namespace", "body", "expires_at",
                       "occurred_at"):
            assert document[column] == document[f"source_{column}"], column
        assert document["terms"] == index_terms(document["source_body"])


def test_a_puts_document_is_the_one_its_trigger_would_write(db: Ctxdb, pid: str) -> None:
    for number, value in enumerate(VALUES):
        first = db.memories.put(pid, "notes:put", f"k{number}", {"first": "wombat"})
        db.memories.put(pid, "notes:put", f"k{number}", value, expected_version=1,
                        memory_type="episodic")
        db.memories.put(pid, "notes:put", f"k{number}", value, expected_version=2)
        assert first["version"] == 1
    _assert_current(db, pid, len(VALUES))
    assert db.search.search(pid, "wombat") == []
    hits = db.search.search(pid, "retry parse")
    assert [(hit["kind"], hit["key"]) for hit in hits] == [("memory", "k0")]


def test_the_put_answers_without_the_documents_body(db: Ctxdb, pid: str) -> None:
    db.memories.put(pid, "notes", "k", {"a": 1})
    written = db.memories.put(pid, "notes", "k", {"a": 2}, expected_version=1)
    assert "search_body" not in written and written["value"] == {"a": 2}
    assert written == db.memories.get(pid, "notes", "k")


def test_deletes_and_puts_after_them_keep_the_documents_current(db: Ctxdb, pid: str) -> None:
    db.memories.put(pid, "notes", "k", {"note": "first numbat"})
    db.memories.put(pid, "notes", "k", {"note": "second numbat"}, expected_version=1)
    db.memories.delete(pid, "notes", "k", expected_version=2)
    _assert_current(db, pid, 0)
    assert db.search.search(pid, "numbat") == []
    db.memories.put(pid, "notes", "k", {"note": "third bilby"}, expected_version=0)
    db.memories.put(pid, "notes", "k", {"note": "fourth bilby"})
    _assert_current(db, pid, 1)
    assert [hit["kind"] for hit in db.search.search(pid, "fourth bilby")] == ["memory"]


def test_a_put_whose_words_are_the_same_keeps_its_document_indexed(db: Ctxdb, pid: str) -> None:
    """A new body with the terms of the old one: on SQLite search_terms_stale clears them
    (the body changed, the terms did not), FTS5 deletes them once, and the look gives them
    back before the commit."""
    db.memories.put(pid, "notes", "k", {"note": "wombat!"})
    for version, note in enumerate(["wombat?", "wombat.", "wombat numbat"], start=1):
        db.memories.put(pid, "notes", "k", {"note": note}, expected_version=version)
        _assert_current(db, pid, 1)
        assert [hit["key"] for hit in db.search.search(pid, "wombat")] == ["k"]
    assert db.search.index_status()["memory"] == (1, 1)


def test_each_put_claims_its_document_where_it_writes_it() -> None:
    """SQLite's put claims the document and gets its body back, to write it in a statement
    after; PostgreSQL's claims it in the statement that also writes it (0026), and its
    update alone, which would claim a document it does not write, is never sent."""
    sqlite, postgres = compiled_queries(SQLITE), compiled_queries(POSTGRES)
    assert "document_version = version + 1" in sqlite["update_live_memory"]
    assert "AS search_body" in sqlite["update_live_memory"]
    put = postgres["put_live_memory_recorded"]
    assert "document_version = version + 1" in put and "AS search_body" not in put
    assert "INSERT INTO search_documents" in put and "ON CONFLICT (memory_id)" in put
    source = (Path(__file__).parents[1] / "src" / "ctxdb" / "service" / "usecases"
              / "memory_document.py").read_text(encoding="utf-8")
    assert source.count('"update_live_memory"') == 1  # SQLite's branch only


# --- SQLite: how many times the row is written, and the writers that do not claim ----------


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Ctxdb]:
    """A SQLite database whatever the test's backend: the claim is SQLite's (0024), while
    PostgreSQL's put is one statement whose trigger fires after it."""
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    settings = load_settings(env=env, url=str(tmp_path / "lite.db"), actor="user:test")
    with Ctxdb.open(settings) as db:
        yield db


@pytest.fixture
def lite_pid(sqlite_db: Ctxdb) -> str:
    return str(sqlite_db.projects.create("claims")["project_id"])


def _connection(db: Ctxdb) -> sqlite3.Connection:
    """Another connection to the database: a writer that is not ctxdb's put."""
    return sqlite3.connect(db.settings.sqlite_path, isolation_level=None)


def test_a_put_writes_its_document_once(sqlite_db: Ctxdb, lite_pid: str) -> None:
    db, pid = sqlite_db, lite_pid
    db.memories.put(pid, "notes", "k", {"note": "version one"})
    counting = _connection(db)
    counting.executescript(
        "CREATE TABLE document_writes (doc_id INTEGER);"
        "CREATE TRIGGER count_document_writes AFTER UPDATE ON search_documents BEGIN "
        "INSERT INTO document_writes VALUES (new.doc_id); END;")
    for version in range(1, 6):
        db.memories.put(pid, "notes", "k", {"note": f"version {version + 1}"},
                        expected_version=version)
    assert counting.execute("SELECT count(*) FROM document_writes").fetchone() == (5,)
    # Another connection's update is not claimed: the trigger writes the document, its body
    # and no terms, once (before 0024: twice, then the terms a third time).
    counting.execute("UPDATE memories SET value = '{\"note\": \"elsewhere\"}', "
                     "version = version + 1 WHERE key = 'k'")
    assert counting.execute("SELECT count(*) FROM document_writes").fetchone() == (6,)
    counting.close()
    db.memories.put(pid, "notes", "other", {"note": "a later write"})  # its look indexes it
    _assert_current(db, pid, 2)
    assert [hit["key"] for hit in db.search.search(pid, "elsewhere")] == ["k"]
    checking = _connection(db)
    checking.execute("INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")
    checking.close()


@pytest.mark.parametrize("statement", [
    # as a hand-written put does it: a new version, document_version left as it was
    "UPDATE memories SET value = '{\"note\": \"quokka\"}', version = version + 1",
    # the same version (document_version still equal to it from ctxdb's last put)
    "UPDATE memories SET value = '{\"note\": \"quokka\"}'",
    # a writer that copies the whole row, document_version included
    "UPDATE memories SET value = '{\"note\": \"quokka\"}', version = version + 1, "
    "document_version = document_version",
])
def test_an_update_that_does_not_claim_gets_its_document_from_the_trigger(
    sqlite_db: Ctxdb, lite_pid: str, statement: str
) -> None:
    db, pid = sqlite_db, lite_pid
    db.memories.put(pid, "notes", "k", {"note": "wombat"})
    db.memories.put(pid, "notes", "k", {"note": "wombat again"}, expected_version=1)
    other = _connection(db)
    other.execute(f"{statement} WHERE key = 'k'")
    pending = other.execute("SELECT body, terms FROM search_documents").fetchall()
    assert pending == [("notes\nk\nnote\nquokka", None)]  # the new body, its terms to come
    other.close()
    db.memories.put(pid, "notes", "other", {"note": "a later write"})
    _assert_current(db, pid, 2)
    assert [hit["key"] for hit in db.search.search(pid, "quokka")] == ["k"]
    assert db.search.search(pid, "wombat") == []


def test_an_update_that_leaves_the_body_is_indexed_again(sqlite_db: Ctxdb, lite_pid: str) -> None:
    """The trigger clears the terms of any update it writes (comparing the bodies cost more
    than the look): another connection's update that leaves the body waits for the next
    write, and one of ctxdb's own is indexed again before it commits."""
    db, pid = sqlite_db, lite_pid
    db.memories.put(pid, "notes", "k", {"note": "wombat"})
    other = _connection(db)
    other.execute("UPDATE memories SET updated_by = 'someone', version = version + 1")
    assert other.execute("SELECT terms FROM search_documents").fetchone() == (None,)
    other.close()
    db.memories.put(pid, "notes", "other", {"note": "a later write"})
    _assert_current(db, pid, 2)
    assert [hit["key"] for hit in db.search.search(pid, "wombat")] == ["k"]


def test_a_put_whose_memory_lost_its_document_writes_it(sqlite_db: Ctxdb, lite_pid: str) -> None:
    db, pid = sqlite_db, lite_pid
    db.memories.put(pid, "notes", "k", {"note": "wombat"})
    other = _connection(db)
    other.execute("DELETE FROM search_documents")
    other.close()
    db.memories.put(pid, "notes", "k", {"note": "bilby"}, expected_version=1)
    _assert_current(db, pid, 1)
    assert [hit["key"] for hit in db.search.search(pid, "bilby")] == ["k"]


def _statements_of(db: Ctxdb, write: Any) -> list[str]:
    """The statements ctxdb's connection ran for ``write()``."""
    statements: list[str] = []
    connection = db.storage._connection()  # type: ignore[attr-defined]
    connection.set_trace_callback(statements.append)
    try:
        write()
    finally:
        connection.set_trace_callback(None)
    return statements


def _looks(statements: list[str]) -> int:
    return sum("WHERE terms IS NULL AND doc_id >" in statement for statement in statements)


def test_a_put_with_no_document_waiting_spares_the_look(sqlite_db: Ctxdb, lite_pid: str) -> None:
    db, pid = sqlite_db, lite_pid
    db.memories.put(pid, "notes", "k", {"note": "wombat"})
    for version in range(1, 4):
        statements = _statements_of(db, lambda v=version: db.memories.put(
            pid, "notes", "k", {"note": f"wombat {v}"}, expected_version=v))
        assert _looks(statements) == 0, statements
        _assert_current(db, pid, 1)
    assert [hit["key"] for hit in db.search.search(pid, "wombat")] == ["k"]


def test_a_put_after_another_connections_write_indexes_its_document(
    sqlite_db: Ctxdb, lite_pid: str
) -> None:
    """The put learns from its own statement whether documents wait for their terms
    (another connection's update, which the trigger wrote without them): fewer than
    DEFER_LIMIT wait, so it leaves them to a search (SQLite), which finds them."""
    db, pid = sqlite_db, lite_pid
    db.memories.put(pid, "notes", "k", {"note": "wombat"})
    db.memories.put(pid, "notes", "other", {"note": "numbat"})
    other = _connection(db)
    other.execute("UPDATE memories SET value = '{\"note\": \"quokka\"}', "
                  "version = version + 1 WHERE key = 'other'")
    other.close()
    statements = _statements_of(db, lambda: db.memories.put(
        pid, "notes", "k", {"note": "wombat again"}, expected_version=1))
    assert _looks(statements) == 0
    _assert_current(db, pid, 2)
    assert [hit["key"] for hit in db.search.search(pid, "quokka")] == ["other"]


def test_a_put_whose_words_are_the_same_waits_like_any(sqlite_db: Ctxdb, lite_pid: str) -> None:
    """A new body with the old terms: the put leaves its document waiting as any put does
    (migration 0028), counting the waiting documents in its own statement, not in one after
    it, and its document is indexed again, with the same terms, before a search reads the
    index."""
    db, pid = sqlite_db, lite_pid
    db.memories.put(pid, "notes", "k", {"note": "wombat!"})
    db.search.index_status()  # the new memory's document given its terms (it waited)
    statements = _statements_of(db, lambda: db.memories.put(
        pid, "notes", "k", {"note": "wombat?"}, expected_version=1))
    assert _looks(statements) == 0
    assert not any("count(*) AS n FROM (SELECT 1" in s for s in statements)  # no count after
    _assert_current(db, pid, 1)
    assert [hit["key"] for hit in db.search.search(pid, "wombat")] == ["k"]


# --- PostgreSQL (0026): the document written by the put's own statement ---------------------


@pytest.fixture
def one_connection(pg_url: str, tmp_path: Path) -> Settings:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    return load_settings(env=env, url=pg_url, actor="user:test", pool_min_size=1,
                         pool_max_size=1)


@pytest.fixture
def pg_db(pg_url: str, tmp_path: Path) -> Iterator[Ctxdb]:
    """ctxdb on the PostgreSQL test database whatever the test's backend."""
    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    with Ctxdb.open(load_settings(env=env, url=pg_url, actor="user:test")) as db:
        yield db


def _pg_execute(db: Ctxdb, sql: str) -> list[tuple[Any, ...]]:
    """A statement on a connection of its own: a writer that is not ctxdb's put."""
    import psycopg

    with psycopg.connect(db.settings.url, autocommit=True) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []


@pytest.mark.postgres
def test_a_postgres_put_writes_its_document_once(one_connection: Settings) -> None:
    with Ctxdb.open(one_connection) as db:
        pid = db.projects.create("written once")["project_id"]
        db.memories.put(pid, "notes", "k", {"note": "version one"})
        inserted, updated = search_document_writes(db)
        for version in range(1, 6):
            db.memories.put(pid, "notes", "k", {"note": f"version {version + 1}"},
                            expected_version=version)
        # One version of the document per put (before 0026: the trigger's, then the terms').
        assert search_document_writes(db) == (inserted, updated + 5)
        _assert_current(db, pid, 1)
        claimed = _pg_execute(db, "SELECT version, document_version FROM memories "
                                  f"WHERE project_id = '{pid}'")
        assert claimed == [(6, 6)]
        assert [hit["key"] for hit in db.search.search(pid, "version 6")] == ["k"]


@pytest.mark.postgres
@pytest.mark.parametrize("statement", [
    # as a hand-written put does it: a new version, document_version left as it was
    "UPDATE memories SET value = '{\"note\": \"quokka\"}', version = version + 1",
    # the same version (document_version still equal to it from ctxdb's last put)
    "UPDATE memories SET value = '{\"note\": \"quokka\"}'",
    # a writer that copies the whole row, document_version included
    "UPDATE memories SET value = '{\"note\": \"quokka\"}', version = version + 1, "
    "document_version = document_version",
    # a move of the memory to another namespace, as a rename would write it
    "UPDATE memories SET namespace = 'moved:here', value = '{\"note\": \"quokka\"}'",
])
def test_a_postgres_update_that_does_not_claim_gets_its_document_from_the_trigger(
    pg_db: Ctxdb, statement: str
) -> None:
    db = pg_db
    pid = db.projects.create("claims")["project_id"]
    db.memories.put(pid, "notes", "k", {"note": "wombat"})
    db.memories.put(pid, "notes", "k", {"note": "wombat again"}, expected_version=1)
    _pg_execute(db, f"{statement} WHERE project_id = '{pid}' AND key = 'k'")
    pending = _pg_execute(db, "SELECT body, terms FROM search_documents "
                              f"WHERE project_id = '{pid}'")
    assert len(pending) == 1 and pending[0][1] is None  # the new body, its terms to come
    assert pending[0][0].endswith("\nk\nnote\nquokka")
    db.memories.put(pid, "notes", "other", {"note": "a later write"})  # its look indexes it
    _assert_current(db, pid, 2)
    assert [hit["key"] for hit in db.search.search(pid, "quokka")] == ["k"]
    assert db.search.search(pid, "wombat") == []


@pytest.mark.postgres
def test_a_postgres_put_whose_memory_lost_its_document_writes_it(pg_db: Ctxdb) -> None:
    db = pg_db
    pid = db.projects.create("lost")["project_id"]
    db.memories.put(pid, "notes", "k", {"note": "wombat"})
    _pg_execute(db, f"DELETE FROM search_documents WHERE project_id = '{pid}'")
    db.memories.put(pid, "notes", "k", {"note": "bilby"}, expected_version=1)
    _assert_current(db, pid, 1)
    assert [hit["key"] for hit in db.search.search(pid, "bilby")] == ["k"]


@pytest.mark.postgres
def test_a_postgres_put_after_other_writers_keeps_every_document_current(pg_db: Ctxdb) -> None:
    """The general path (a new key, a memory deleted then put again, an archived project's
    refusal), a tombstone and a conflict around claimed puts: each document current."""
    db = pg_db
    pid = db.projects.create("mixed")["project_id"]
    db.memories.put(pid, "notes", "a", {"note": "first"})
    db.memories.put(pid, "notes", "a", {"note": "second"}, expected_version=1)
    with pytest.raises(VersionConflictError):
        db.memories.put(pid, "notes", "a", {"note": "stale"}, expected_version=1)
    db.memories.delete(pid, "notes", "a", expected_version=2)
    db.memories.put(pid, "notes", "a", {"note": "third"}, expected_version=0)
    db.memories.put(pid, "notes", "a", {"note": "fourth"})
    db.memories.put(pid, "notes:deep", "b", {"note": "fifth"}, memory_type="episodic")
    db.memories.put(pid, "notes:deep", "b", {"note": "sixth"}, ttl_seconds=600)
    _assert_current(db, pid, 2)
    assert [hit["key"] for hit in db.search.search(pid, "fourth")] == ["a"]
    assert [hit["key"] for hit in db.search.search(pid, "sixth")] == ["b"]
    assert db.search.search(pid, "stale") == [] and db.search.search(pid, "fifth") == []
    history = db.memories.history(pid, "notes", "a")
    assert [v["op"] for v in history] == ["put", "put", "delete", "put", "put"]
