"""A stored item's search document is written once, with its index terms (issue 14,
migration 0023): on PostgreSQL the store's statement writes it, its body made in Python as
``ctxdb_search_text`` makes it; the trigger writes one only for rows that have none. On SQLite
(migration 0025) the store writes it before the item, its body made by the same SQL as the
trigger's, and the item's trigger leaves a document that exists."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from ctxdb.errors import IdempotencyConflictError
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings
from ctxdb.storage import Tx
from ctxdb.storage.base import raw
from ctxdb.storage.dialect import DEFER_LIMIT
from ctxdb.storage.search_body import postgres_document_text
from ctxdb.storage.search_text import index_terms
from item_numbers import check_increasing
from pg_counts import search_document_writes

_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                max_size=10)
_SCALARS = (st.none() | st.booleans() | st.integers(-10**30, 10**30)
            | st.floats(allow_nan=False, allow_infinity=False) | _TEXT)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20)

# Hand-picked JSON texts whose numbers and keys jsonb rewrites.
JSON_TEXTS = ['1e2', '1.50', '-0.0', '-0', '1E-7', '[1.0e2, 0.1e1, 12345678901234567890.5]',
              '{"a": 1, "a": 2}', '{"bb": {"c": [1, [2, {"d": null}]]}, "a": "x", "é": true}',
              '"text"', 'null', '{}', '[]', '[[[1]], [2]]']


@pytest.mark.postgres
@examples(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_VALUES)
def test_the_python_body_is_what_postgres_makes_of_any_json(pg_url: str, value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert postgres_document_text(text) == _postgres_body(pg_url, text)


@pytest.mark.postgres
@pytest.mark.parametrize("text", JSON_TEXTS)
def test_the_python_body_is_what_postgres_makes_of_rewritten_json(pg_url: str,
                                                                   text: str) -> None:
    assert postgres_document_text(text) == _postgres_body(pg_url, text)


def _postgres_body(pg_url: str, text: str) -> str:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute("SELECT ctxdb_search_text(CAST(%s AS JSONB))", (text,)).fetchone()
    assert row is not None
    return str(row[0])


CONTENTS: list[Any] = [
    {"note": "parseHTTPResponse handles 1.50 retries", "tags": ["alpha", 3, 1e2, None, True]},
    {"zz": {"deep": {"deeper": ["x", {"k": -0.0}]}}, "a": "é café", "b": 12345678901234567890},
    "a plain string item",
    [1, [2, [3, "three"]], {"key": "value"}],
    {"big": "word " * 30_000},
]


def _documents(db: Ctxdb, pid: str) -> list[dict[str, Any]]:
    def read(tx: Tx) -> list[dict[str, Any]]:
        return [dict(row) for row in raw(tx).all_raw(db.storage.dialect.param_style(
            "SELECT d.item_id, d.project_id, d.content_type, d.priority, d.body, d.terms, "
            "d.occurred_at, s.body AS source_body, s.occurred_at AS source_occurred_at "
            "FROM search_documents d JOIN search_context_source s ON s.item_id = d.item_id "
            "WHERE d.project_id = :pid ORDER BY d.item_id"), {"pid": pid})]
    return db.storage.read(read)


def test_a_stored_items_document_is_the_one_its_trigger_would_write(db: Ctxdb, pid: str) -> None:
    stored = [db.context.store(pid, content, priority="HIGH", content_type="note")["item_id"]
              for content in CONTENTS]
    db.search.index_status()  # a read of the index: on SQLite it gives the waiting terms
    documents = _documents(db, pid)
    assert [d["item_id"] for d in documents] == stored
    for document in documents:
        assert document["body"] == document["source_body"]
        assert document["occurred_at"] == document["source_occurred_at"]
        assert document["terms"] == index_terms(document["source_body"])
        assert (document["content_type"], document["priority"]) == ("note", "HIGH")


def test_a_stored_item_is_found_by_its_words(db: Ctxdb, pid: str) -> None:
    item = db.context.store(pid, CONTENTS[0], priority="HIGH")
    hits = db.search.search(pid, "retry parse")
    assert [(hit["kind"], hit["id"]) for hit in hits] == [("context", item["item_id"])]


def test_an_item_written_by_another_connection_is_still_indexed(db: Ctxdb, pid: str) -> None:
    """The trigger writes the document of a row ctxdb's store did not write, and the look
    that travels with the next write gives it its terms."""
    row = ("INSERT INTO context_items (project_id, sequence_number, content_type, priority, "
           "token_count, content, metadata, idempotency_key, created_at) VALUES "
           "(:pid, 1000, 'note', 'HIGH', 5, "
           "'{\"note\": \"written elsewhere quokka\"}', '{}', 'elsewhere', "
           f"{db.storage.dialect.now})")
    db.storage.write(lambda tx: raw(tx).execute_raw(db.storage.dialect.param_style(row),
                                                    {"pid": pid}))
    db.context.store(pid, {"note": "a later store"}, priority="HIGH")
    assert [hit["kind"] for hit in db.search.search(pid, "quokka")] == ["context"]


@pytest.fixture
def one_connection(pg_url: str, tmp_path: Path) -> Settings:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    return load_settings(env=env, url=pg_url, actor="user:test", pool_min_size=1,
                         pool_max_size=1)


@pytest.mark.postgres
def test_a_store_writes_its_search_document_once(one_connection: Settings) -> None:
    with Ctxdb.open(one_connection) as db:
        pid = db.projects.create("written once")["project_id"]
        inserted, updated = search_document_writes(db)
        for number in range(10):
            db.context.store(pid, {"note": f"store number {number}"}, priority="HIGH")
        assert search_document_writes(db) == (inserted + 10, updated)


# --- SQLite (0025): the document written first, the item's trigger leaving it ---------------


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Ctxdb]:
    """A SQLite database whatever the test's backend: writing the document before the item is
    SQLite's way (0025); PostgreSQL's store is one statement."""
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    settings = load_settings(env=env, url=str(tmp_path / "lite.db"), actor="user:test")
    with Ctxdb.open(settings) as db:
        yield db


def _counting(db: Ctxdb) -> sqlite3.Connection:
    """Another connection, which counts the writes of search_documents' rows from now on."""
    conn = sqlite3.connect(db.settings.sqlite_path, isolation_level=None)
    conn.executescript(
        "CREATE TABLE document_writes (what TEXT);"
        "CREATE TRIGGER count_document_inserts AFTER INSERT ON search_documents BEGIN "
        "INSERT INTO document_writes VALUES ('insert'); END;"
        "CREATE TRIGGER count_document_updates AFTER UPDATE ON search_documents BEGIN "
        "INSERT INTO document_writes VALUES ('update'); END;")
    return conn


def _writes(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT what, count(*) FROM document_writes GROUP BY what"))


def _assert_consistent(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.execute("INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")


def test_a_sqlite_store_writes_its_document_once(sqlite_db: Ctxdb) -> None:
    db = sqlite_db
    pid = db.projects.create("written once")["project_id"]
    counting = _counting(db)
    stored = [db.context.store(pid, content, priority="HIGH", content_type="note")["item_id"]
              for content in CONTENTS]
    assert _writes(counting) == {"insert": len(CONTENTS)}  # no update: the terms wait
    assert {d["terms"] for d in _documents(db, pid)} == {None}
    db.search.index_status()  # a read of the index gives them, one update each
    assert _writes(counting) == {"insert": len(CONTENTS), "update": len(CONTENTS)}
    documents = _documents(db, pid)
    assert [d["item_id"] for d in documents] == stored
    for document in documents:
        assert document["body"] == document["source_body"]
        assert document["occurred_at"] == document["source_occurred_at"]
        assert document["terms"] == index_terms(document["source_body"])
    assert [hit["id"] for hit in db.search.search(pid, "retry parse")] == [stored[0]]
    _assert_consistent(counting)
    counting.close()


def test_a_sqlite_store_numbers_its_item_as_autoincrement_would(sqlite_db: Ctxdb) -> None:
    """The id drawn before the insert is past every id ever used, a deleted last one too."""
    db = sqlite_db
    pid = db.projects.create("ids")["project_id"]
    first = db.context.store(pid, {"note": "first"})["item_id"]
    conn = sqlite3.connect(db.settings.sqlite_path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("DELETE FROM context_items WHERE item_id = ?", (first,))
    # Another writer's row with an id of its choosing, far ahead of the counter.
    conn.execute("INSERT INTO context_items (item_id, project_id, sequence_number, "
                 "content_type, priority, token_count, content, metadata, idempotency_key, "
                 "created_at) VALUES (?, ?, 900, 'note', 'HIGH', 1, '\"elsewhere\"', '{}', "
                 "'elsewhere', '2026-01-01T00:00:00.000Z')", (first + 100, pid))
    conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'context_items'", (first,))
    second = db.context.store(pid, {"note": "second"})["item_id"]
    assert second == first + 101
    conn.execute("DELETE FROM context_items WHERE item_id = ?", (second,))
    assert db.context.store(pid, {"note": "third"})["item_id"] == second + 1
    _assert_consistent(conn)
    conn.close()


def test_a_sqlite_store_whose_key_is_taken_leaves_no_document(sqlite_db: Ctxdb) -> None:
    db = sqlite_db
    pid = db.projects.create("keys")["project_id"]
    first = db.context.store(pid, {"note": "wombat"}, idempotency_key="k")
    counting = _counting(db)
    assert db.context.store(pid, {"note": "wombat"}, idempotency_key="k") == first
    with pytest.raises(IdempotencyConflictError):
        db.context.store(pid, {"note": "numbat"}, idempotency_key="k")
    assert _writes(counting) == {}  # each attempt's document rolled back with it
    assert [hit["id"] for hit in db.search.search(pid, "wombat")] == [first["item_id"]]
    assert db.search.search(pid, "numbat") == []
    after = db.context.store(pid, {"note": "numbat"})
    check_increasing(db, [first["sequence_number"], after["sequence_number"]])  # SQLite: +1
    _assert_consistent(counting)
    counting.close()


def test_a_document_without_its_item_cannot_commit(sqlite_db: Ctxdb) -> None:
    """The deferred key still holds at COMMIT: a document whose item never came is refused."""
    conn = sqlite3.connect(sqlite_db.settings.sqlite_path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    pid = sqlite_db.projects.create("orphans")["project_id"]
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO search_documents (project_id, kind, item_id, content_type, body, "
                 "occurred_at, terms) VALUES (?, 'context', 424242, 'note', 'x', "
                 "'2026-01-01T00:00:00.000Z', 'x')", (pid,))
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        conn.execute("COMMIT")
    conn.execute("ROLLBACK")
    conn.close()


def test_a_sqlite_item_of_another_writer_gets_its_document_from_the_trigger(
    sqlite_db: Ctxdb
) -> None:
    db = sqlite_db
    pid = db.projects.create("elsewhere")["project_id"]
    db.context.store(pid, {"note": "first"})
    counting = _counting(db)
    counting.execute("INSERT INTO context_items (project_id, sequence_number, content_type, "
                     "priority, token_count, content, metadata, idempotency_key, created_at) "
                     "VALUES (?, 900, 'note', 'HIGH', 1, '{\"note\": \"quokka\"}', '{}', "
                     "'elsewhere', '2026-01-01T00:00:00.000Z')", (pid,))
    assert _writes(counting) == {"insert": 1}
    db.context.store(pid, {"note": "a later store"})  # fewer than the limit wait: no look
    assert _writes(counting) == {"insert": 2}
    # The search gives the waiting documents their terms first: the three stores'.
    assert [hit["kind"] for hit in db.search.search(pid, "quokka")] == ["context"]
    assert _writes(counting) == {"insert": 2, "update": 3}
    _assert_consistent(counting)
    counting.close()


def _traced_store(db: Ctxdb, pid: str, content: Any) -> list[str]:
    """The first words of each statement one store sends, its comment lines left out. SQLite
    also traces the statements run inside another (FTS5's, each as its text after "-- ") and
    a statement again for each trigger it runs: those are left out."""
    conn: sqlite3.Connection = db.storage._connection()  # type: ignore[attr-defined]
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        db.context.store(pid, content)
    finally:
        conn.set_trace_callback(None)
    nested = re.compile(r"-- (?:TRIGGER|INSERT|REPLACE|UPDATE|DELETE|SELECT|WITH|PRAGMA)\b")
    sent = ["\n".join(line for line in s.splitlines() if not line.lstrip().startswith("--"))
            for s in statements if not nested.match(s)]
    words = [" ".join(text.split()[:3]) for text in sent if text.strip()]
    # A statement whose triggers run is traced again for each: counted once.
    return [w for n, w in enumerate(words) if n == 0 or words[n - 1] != w]


def _waiting(db: Ctxdb) -> int:
    """How many documents wait for their index terms (read beside ctxdb, which would give
    them their terms before a search)."""
    conn = sqlite3.connect(db.settings.sqlite_path)
    try:
        return int(conn.execute(
            "SELECT count(*) FROM search_documents WHERE terms IS NULL").fetchone()[0])
    finally:
        conn.close()


def test_a_sqlite_store_leaves_its_terms_until_the_limit_waits(sqlite_db: Ctxdb) -> None:
    """A store writes its document without terms and no look, until its own would make
    DEFER_LIMIT documents wait: that store gives them all their terms, another connection's
    document counted with them; the FTS5 index is then current without a search."""
    db = sqlite_db
    pid = db.projects.create("looks")["project_id"]
    db.context.store(pid, {"note": "warmup"})
    db.search.index_status()  # none waits
    plain = ["BEGIN IMMEDIATE", "UPDATE projects SET", "INSERT INTO search_documents",
             "INSERT INTO context_items", "INSERT INTO audit_log", "COMMIT"]
    other = sqlite3.connect(db.settings.sqlite_path, isolation_level=None)
    other.execute("INSERT INTO context_items (project_id, sequence_number, content_type, "
                  "priority, token_count, content, metadata, idempotency_key, created_at) "
                  "VALUES (?, 900, 'note', 'HIGH', 1, '{\"note\": \"bandicoot\"}', '{}', "
                  "'elsewhere', '2026-01-01T00:00:00.000Z')", (pid,))
    other.close()
    for number in range(DEFER_LIMIT - 2):
        assert _traced_store(db, pid, {"note": f"store {number}"}) == plain
    assert _waiting(db) == DEFER_LIMIT - 1
    statements = _traced_store(db, pid, {"note": "the limit reached"})
    assert "SELECT doc_id, body" in statements  # the look, then the terms
    assert _waiting(db) == 0
    conn = sqlite3.connect(db.settings.sqlite_path)
    found = conn.execute("SELECT count(*) FROM search_fts WHERE search_fts MATCH 'bandicoot'")
    assert found.fetchone()[0] == 1  # in the index before any search
    conn.close()
    assert _traced_store(db, pid, {"note": "one waits again"}) == plain
    assert _waiting(db) == 1


def test_the_sqlite_draw_reads_no_table_whole(sqlite_db: Ctxdb) -> None:
    """The draw's look-ups stay the same work at any size: the waiting documents by the
    partial index that holds exactly them, the largest item id by the table's key."""
    from ctxdb.storage.dialect import SQLITE
    from ctxdb.storage.queries import compiled_queries

    conn = sqlite3.connect(sqlite_db.settings.sqlite_path)
    plan = [row[3] for row in conn.execute(
        "EXPLAIN QUERY PLAN " + compiled_queries(SQLITE)["draw_item"],
        {"project_id": "p", "content": "{}", "search_body": None, "waiting": 31})]
    conn.close()
    # The waiting documents counted up to :waiting: the first entries of the partial index
    # that holds exactly them (a scan of it, cut by the LIMIT)
    assert "SCAN search_documents USING INDEX idx_search_documents_pending" in plan
    assert "SEARCH context_items" in plan
    # The number past the highest the project's items hold, live and archived: the last
    # entry of each table's (project_id, sequence_number) index, not every archived item.
    assert any(step.startswith("SEARCH archived_context_items USING COVERING INDEX "
                               "idx_archived_items_number") for step in plan), plan
    # sqlite_sequence holds a row per AUTOINCREMENT table: SQLite reads it so for each insert.
    whole = [step for step in plan if step.startswith("SCAN") and "USING" not in step
             and "json_tree" not in step and "CONSTANT" not in step
             and step != "SCAN sqlite_sequence" and not step.startswith("SCAN (subquery")]
    assert whole == [], plan
