"""Full-text search (db.search) on both backends: the index follows every write in its own
transaction, filters, project isolation, hostile input, ranking, the index's health, and the
migration's backfill of records written before it."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from ctxdb.errors import (
    InvalidPriorityError,
    InvalidSearchQueryError,
    ProjectNotFoundError,
    ValidationError,
)
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings
from ctxdb.storage import Migrator, Tx, connect_storage


def found(db: Ctxdb, pid: str, query: str, **filters: Any) -> list[tuple[str, Any]]:
    return [(hit["kind"], hit["id"]) for hit in db.search.search(pid, query, **filters)]


def raw_sql(db: Ctxdb, sql: str) -> None:
    """Run SQL behind ctxdb's back (to damage the index on purpose)."""
    db.storage.write(lambda tx: tx.all_raw(sql, {}))


@pytest.fixture
def records(db: Ctxdb, pid: str) -> dict[str, Any]:
    """One record of each kind mentioning stripe, and one that does not."""
    item = db.context.store(pid, {"decision": "Payments via Stripe", "why": "fees"},
                            "CRITICAL", "decision")
    note = db.context.store(pid, "the orders table has a stripe_id column", "LOW", "note")
    memory = db.memories.put(pid, "billing:psp", "provider", {"name": "stripe", "since": 2024})
    session = db.conversations.create(pid, "chat", "ana")
    event = db.conversations.append(session["session_id"], "user", "Do we use stripe or paypal?")
    other = db.context.store(pid, {"todo": "write tests"}, "HIGH", "todo")
    return {"item": item, "note": note, "memory": memory, "session": session, "event": event,
            "other": other}


def test_every_kind_is_found_with_where_it_lives(
    db: Ctxdb, pid: str, records: dict[str, Any]
) -> None:
    hits = {hit["kind"] + str(hit["id"]): hit for hit in db.search.search(pid, "stripe")}
    item, memory, event = records["item"], records["memory"], records["event"]
    assert set(hits) == {f"context{item['item_id']}", f"context{records['note']['item_id']}",
                         f"memory{memory['memory_id']}", f"event{event['event_id']}"}
    context = hits[f"context{item['item_id']}"]
    assert (context["type"], context["priority"], context["sequence"]) == (
        "decision", "CRITICAL", item["sequence_number"])
    # (JSON keys and values; PostgreSQL's jsonb does not keep the keys' order)
    assert "decision Payments via **Stripe**" in context["snippet"]
    assert context["time"] == db.context.get(item["item_id"])["created_at"]
    found_memory = hits[f"memory{memory['memory_id']}"]
    assert (found_memory["namespace"], found_memory["key"], found_memory["version"],
            found_memory["type"], found_memory["time"]) == (
        "billing:psp", "provider", 1, "semantic", memory["updated_at"])
    found_event = hits[f"event{event['event_id']}"]
    assert (found_event["session_id"], found_event["sequence"], found_event["type"]) == (
        records["session"]["session_id"], 1, "user")
    assert found_event["snippet"] == "Do we use **stripe** or paypal?"
    assert all(isinstance(hit["score"], float) for hit in hits.values())
    assert db.search.index_status() == {"context": (3, 3), "memory": (1, 1), "event": (1, 1),
                                        "observation": (0, 0)}


def test_a_rolled_back_write_leaves_nothing_in_the_index(db: Ctxdb, pid: str) -> None:
    session = db.conversations.create(pid, "chat", "ana")
    seen_inside: list[int] = []

    def unit(tx: Tx) -> None:
        db.memories.put_in_tx(tx, pid, "notes", "k", '"quetzal memory"', kind=None,
                              expected_version=None, ttl_seconds=None, actor="user:test")
        tx.value("insert_item", project_id=pid, phase_id=None, sequence_number=99,
                 content_type="note", priority="HIGH", token_count=1,
                 content='"quetzal item"', metadata="{}", created_by=None,
                 idempotency_key="rolled-back")
        tx.value("insert_session_event", session_id=session["session_id"], sequence=1,
                 role="user", content='"quetzal event"', metadata="{}", idempotency_key="x")
        # The documents are written by the same transaction, so it already sees them.
        seen_inside.append(len(tx.all_raw(
            "SELECT doc_id FROM search_documents WHERE body LIKE '%quetzal%'", {})))
        raise RuntimeError("the unit fails after its writes")

    with pytest.raises(RuntimeError):
        db.storage.write(unit)
    assert seen_inside == [3]
    assert found(db, pid, "quetzal") == []
    assert db.search.index_status() == {"context": (0, 0), "memory": (0, 0), "event": (0, 0),
                                        "observation": (0, 0)}


def test_supersede_delete_put_and_purge_keep_the_index_current(
    db: Ctxdb, pid: str, records: dict[str, Any]
) -> None:
    item_id = records["item"]["item_id"]
    new = db.context.supersede(item_id, {"decision": "Payments via Adyen"})
    assert ("context", item_id) not in found(db, pid, "payments")
    assert found(db, pid, "payments") == [("context", new["item_id"])]
    db.context.delete(new["item_id"])
    assert found(db, pid, "payments") == []

    memory_id = records["memory"]["memory_id"]
    db.memories.put(pid, "billing:psp", "provider", {"name": "adyen"}, expected_version=1)
    assert ("memory", memory_id) not in found(db, pid, "stripe")
    [hit] = db.search.search(pid, "adyen", kinds="memory")
    assert (hit["id"], hit["version"]) == (memory_id, 2)
    db.memories.delete(pid, "billing:psp", "provider")
    assert found(db, pid, "adyen") == []
    db.memories.put(pid, "billing:psp", "provider", "stripe again")  # back from a tombstone
    assert found(db, pid, "again") == [("memory", memory_id)]
    db.memories.purge(pid, "billing:psp", "provider")
    assert found(db, pid, "again") == []
    assert db.search.index_status() == {"context": (2, 2), "memory": (0, 0), "event": (1, 1),
                                        "observation": (0, 0)}


def test_an_expired_memory_is_not_found(db: Ctxdb, pid: str) -> None:
    db.memories.put(pid, "scratch", "short", "ephemeral words", ttl_seconds=1)
    db.memories.put(pid, "scratch", "long", "ephemeral words kept")
    time.sleep(1.1)
    assert [hit["key"] for hit in db.search.search(pid, "ephemeral")] == ["long"]
    assert db.search.index_status()["memory"] == (2, 2)  # until the sweep removes it
    db.memories.sweep_expired(pid)
    assert db.search.index_status()["memory"] == (1, 1)


def test_filters_by_kind_type_priority_namespace_and_time(
    db: Ctxdb, pid: str, records: dict[str, Any]
) -> None:
    item, note = records["item"]["item_id"], records["note"]["item_id"]
    memory, event = records["memory"]["memory_id"], records["event"]["event_id"]
    search = db.search.search
    assert {h["kind"] for h in search(pid, "stripe", kinds=["memory", "event"])} == {
        "memory", "event"}
    assert found(db, pid, "stripe", kinds="context", content_type="note") == [("context", note)]
    assert found(db, pid, "stripe", content_type="user") == [("event", event)]
    assert found(db, pid, "stripe", content_type="semantic") == [("memory", memory)]
    assert found(db, pid, "stripe", priority="critical") == [("context", item)]
    for prefix in ("billing", "billing:psp"):
        assert found(db, pid, "stripe", namespace=prefix) == [("memory", memory)]
    db.memories.put(pid, "billingx", "other", "stripe elsewhere")
    assert found(db, pid, "stripe", namespace="billing") == [("memory", memory)]
    assert found(db, pid, "stripe", namespace="billing:psp:deeper") == []

    when = db.search.search(pid, "paypal")[0]["time"]  # the event's
    assert found(db, pid, "paypal", since=when) == [("event", event)]
    assert found(db, pid, "paypal", until=when) == []
    assert found(db, pid, "stripe", until=when, kinds="event") == []
    assert found(db, pid, "stripe", since="2000-01-01", until="2999-01-01", kinds="event") == [
        ("event", event)]
    assert found(db, pid, "stripe", since="1h", kinds="event") == [("event", event)]
    assert len(search(pid, "stripe", limit=2)) == 2


def test_another_projects_records_never_show(
    db: Ctxdb, pid: str, records: dict[str, Any]
) -> None:
    other = db.projects.create("other")["project_id"]
    db.context.store(other, "stripe in the other project", "CRITICAL", "note")
    db.memories.put(other, "billing:psp", "provider", "stripe")
    assert len(found(db, other, "stripe")) == 2
    assert {kind for kind, _ in found(db, pid, "stripe")} == {"context", "memory", "event"}
    assert all(hit["time"] for hit in db.search.search(pid, "stripe", limit=200))
    mine = {h["id"] for h in db.search.search(pid, "stripe")}
    theirs = {h["id"] for h in db.search.search(other, "stripe")}
    assert not mine & theirs
    # A raw query is still confined to the project it is run in.
    raw = "stripe OR other" if db.storage.dialect.name == "sqlite" else "stripe | other"
    assert {h["id"] for h in db.search.search(pid, raw, raw=True)} == mine
    with pytest.raises(ProjectNotFoundError, match="proj_void"):
        db.search.search("proj_void", "stripe")


HOSTILE = [
    '"; DROP TABLE search_documents; --', "NEAR(stripe paypal)", "stripe AND NOT paypal",
    "body:stripe", "{body}: stripe", "'stripe'", "stripe' & !paypal", "(((stripe", "stripe)))",
    "^stripe", "stripe:*", "stripe*", "stripe**", "\\stripe\\", "stripe -", '"stripe',
    "stripe\x01\t\n", "ÜBER stripe", "stripe " + "x" * 900, "% _ stripe %",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_input_is_searched_as_words(
    db: Ctxdb, pid: str, records: dict[str, Any], query: str
) -> None:
    hits = db.search.search(pid, query)  # never an engine error
    assert all(hit["kind"] in ("context", "memory", "event") for hit in hits)
    assert db.search.index_status()["context"] == (3, 3)  # and nothing was changed


def test_words_that_look_like_operators_are_found_as_words(db: Ctxdb, pid: str) -> None:
    item = db.context.store(pid, "this is NOT a drill, AND it is NEAR the end", "HIGH", "note")
    db.context.store(pid, "a drill without the other words", "HIGH", "note")
    assert found(db, pid, "not drill and near")[0] == ("context", item["item_id"])
    hits = db.search.search(pid, "not drill and near")
    assert [hit["match"] for hit in hits] == ["all", "some"]  # the drill without the others
    assert found(db, pid, '"is not a drill"') == [("context", item["item_id"])]
    assert found(db, pid, '"a not drill"') == []  # a phrase keeps its order


def test_exclusions_alternatives_and_prefixes(
    db: Ctxdb, pid: str, records: dict[str, Any]
) -> None:
    event, memory = records["event"]["event_id"], records["memory"]["memory_id"]
    assert ("event", event) not in found(db, pid, "stripe -paypal")
    assert len(found(db, pid, "stripe -paypal")) == 3
    assert set(found(db, pid, "paypal or provider")) == {("event", event), ("memory", memory)}
    assert ("event", event) in found(db, pid, "payp*")
    assert found(db, pid, "pay") == []  # whole words only, unless asked for a prefix


@pytest.mark.parametrize(("query", "error", "message"), [
    ("", InvalidSearchQueryError, "has no words"),
    ("?!", InvalidSearchQueryError, "has no words"),
    ("-stripe", InvalidSearchQueryError, "only excludes words"),
    ("x" * 1_001, ValidationError, "query is longer than 1000 characters"),
    (5, ValidationError, "query must be a string"),
])
def test_queries_without_words_are_refused(
    db: Ctxdb, pid: str, query: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        db.search.search(pid, query)


@pytest.mark.parametrize(("filters", "error", "message"), [
    ({"kinds": ["context", "file"]}, ValidationError, "kind must be one of"),
    ({"kinds": []}, ValidationError, "at least one of"),
    ({"priority": "URGENT"}, InvalidPriorityError, "invalid priority"),
    ({"namespace": "user prefs"}, ValidationError, "not a namespace path"),
    ({"content_type": ""}, ValidationError, "content_type must not be empty"),
    ({"since": "tomorrow"}, ValidationError, "since must be an ISO-8601"),
    ({"since": "2025-02-01", "until": "2025-01-01"}, ValidationError, "must be before until"),
    ({"limit": 0}, ValidationError, "limit must be between 1 and 200"),
    ({"limit": 201}, ValidationError, "limit must be between 1 and 200"),
])
def test_bad_filters_are_refused(
    db: Ctxdb, pid: str, filters: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        db.search.search(pid, "stripe", **filters)


def test_raw_queries_use_the_engines_syntax_and_bad_ones_are_typed_errors(
    db: Ctxdb, pid: str, records: dict[str, Any]
) -> None:
    sqlite = db.storage.dialect.name == "sqlite"
    # A raw query meets the index's words as they are: stems ("provider" is "provid").
    assert not found(db, pid, "provider", raw=True)
    either = "paypal OR provid" if sqlite else "paypal | provid"
    assert {kind for kind, _ in found(db, pid, either, raw=True)} == {"event", "memory"}
    hits = db.search.search(pid, either, raw=True)
    assert any("**paypal**" in hit["snippet"] for hit in hits)
    for bad in ("stripe AND", "NOT stripe", "'", "stripe &", "!!", "a:b" if sqlite else "a <"):
        with pytest.raises(InvalidSearchQueryError, match="cannot parse the raw query"):
            db.search.search(pid, bad, raw=True)
    with pytest.raises(InvalidSearchQueryError, match="empty"):
        db.search.search(pid, "  ", raw=True)
    # The engine's own limits are invalid queries too, not storage errors: FTS5's parser
    # stack (deep parentheses), PostgreSQL's phrase distance (at most 16,384).
    too_much = "(" * 400 + "a" + ")" * 400 if sqlite else "a <99999> b"
    with pytest.raises(InvalidSearchQueryError, match="cannot parse the raw query"):
        db.search.search(pid, too_much, raw=True)


def test_the_record_about_the_words_ranks_first(db: Ctxdb, pid: str) -> None:
    filler = " ".join(f"filler{n}" for n in range(60))
    mention = db.context.store(pid, f"{filler} stripe {filler}", "HIGH", "note")
    about = db.context.store(pid, "stripe stripe: stripe webhooks", "HIGH", "note")
    db.context.store(pid, "nothing relevant here", "HIGH", "note")
    hits = db.search.search(pid, "stripe")
    assert [hit["id"] for hit in hits] == [about["item_id"], mention["item_id"]]
    assert hits[0]["score"] > hits[1]["score"] > 0
    assert hits[1]["snippet"].startswith("… filler52")  # a window around the match
    # Excluding a word does not flatten relevance (PostgreSQL ranks the wanted words).
    ranked = db.search.search(pid, "stripe -webhookz")
    assert [hit["id"] for hit in ranked] == [about["item_id"], mention["item_id"]]
    assert ranked[0]["score"] > ranked[1]["score"]


def test_equal_scores_come_newest_first(db: Ctxdb, pid: str) -> None:
    ids = [db.context.store(pid, "identical words", "HIGH", "note")["item_id"]
           for _ in range(3)]
    assert [hit["id"] for hit in db.search.search(pid, "identical")] == ids[::-1]


def test_rebuild_repairs_a_damaged_index(db: Ctxdb, pid: str, records: dict[str, Any]) -> None:
    healthy = db.search.index_status()
    raw_sql(db, "DELETE FROM search_documents WHERE kind = 'memory'")
    raw_sql(db, "UPDATE search_documents SET body = 'garbage' WHERE kind = 'event'")
    if db.storage.dialect.name == "sqlite":
        raw_sql(db, "INSERT INTO search_fts (search_fts) VALUES ('delete-all')")
        # The event's document, its body changed, waits for its terms (search_terms_stale):
        # the count, a read of the index, gives them first (of its wrong body), so it counts.
        assert db.search.index_status() == {"context": (3, 0), "memory": (1, 0),
                                            "event": (1, 1),
                                            "observation": (0, 0)}
    else:
        assert db.search.index_status() == {"context": (3, 3), "memory": (1, 0),
                                            "event": (1, 1),
                                            "observation": (0, 0)}
    assert db.search.rebuild_index() == {"context": 3, "memory": 1, "event": 1,
                                         "observation": 0}
    assert db.search.index_status() == healthy
    assert {kind for kind, _ in found(db, pid, "stripe")} == {"context", "memory", "event"}
    assert found(db, pid, "garbage") == []
    entry = db.audit_log(entity_id="search_documents")[0]
    assert entry["action"] == "search.rebuild"
    assert entry["details"]["repaired"]["memory"] == {"removed": 0, "added": 1}
    assert entry["details"]["repaired"]["event"] == {"removed": 1, "added": 1}
    assert db.search.rebuild_index() == {"context": 3, "memory": 1, "event": 1,
                                         "observation": 0}  # idempotent


def test_the_migration_indexes_records_written_before_it(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = _fresh_settings(backend, tmp_path, request)
    storage = connect_storage(settings)
    try:
        migrator = Migrator(storage)
        search_version = next(m.version for m in migrator.migrations if m.name == "search")
        migrator.upgrade(search_version - 1)
        db = Ctxdb(storage, settings)
        pid = db.projects.create("before search")["project_id"]
        db.context.store(pid, {"note": "written before the index"}, "HIGH", "note")
        superseded = db.context.store(pid, "old before words", "LOW", "note")
        db.context.supersede(superseded["item_id"], "new before words")
        db.memories.put(pid, "app", "k", "memory before")
        db.memories.put(pid, "app", "gone", "deleted before")
        db.memories.delete(pid, "app", "gone")
        session = db.conversations.create(pid, "chat", "ana")
        db.conversations.append(session["session_id"], "user", "event before")
        migrator.upgrade()
        assert {kind for kind, _ in found(db, pid, "before")} == {"context", "memory", "event"}
        assert len(found(db, pid, "before", kinds="context")) == 2
        assert found(db, pid, "old") == [] and found(db, pid, "deleted") == []
        assert db.search.index_status() == {"context": (2, 2), "memory": (1, 1),
                                            "event": (1, 1),
                                            "observation": (0, 0)}
        migrator.downgrade(search_version - 1)  # and it can be taken back
        migrator.upgrade()
        assert len(found(db, pid, "before")) == 4
    finally:
        storage.close()


def _fresh_settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """An empty database of its own (it is downgraded), dropped with the test's database."""
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    if backend == "sqlite":
        return load_settings(env=env, url=str(tmp_path / "fresh.db"), actor="user:test")
    import os
    import secrets

    import psycopg

    server = request.getfixturevalue("pg_url")
    name = f"ctxdb_search_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    request.addfinalizer(drop)
    url = server.rsplit("/", 1)[0] + "/" + name
    return load_settings(env=env, url=url, actor="user:test")


def test_the_triggers_write_each_document_as_its_record_makes_it(
    db: Ctxdb, pid: str, records: dict[str, Any]
) -> None:
    """The documents the triggers write (from the row they fire on) are those the search
    repair makes from the records (through the search_*_source views): a rebuild after
    stores, a supersede, a delete, memory puts and a memory delete finds nothing to repair,
    and every document has its terms."""
    db.context.supersede(records["item"]["item_id"], {"decision": "Payments via Adyen"})
    db.context.delete(records["other"]["item_id"])
    db.memories.put(pid, "billing:psp", "provider", {"name": "adyen"}, expected_version=1)
    db.memories.put(pid, "billing:psp", "region", {"name": "eu"})
    db.memories.delete(pid, "billing:psp", "region")
    db.conversations.append(records["session"]["session_id"], "assistant", "We use adyen now.")
    before = db.search.index_status()
    db.search.rebuild_index()
    assert db.audit_log(entity_id="search_documents")[0]["details"]["repaired"] == {
        kind: {"removed": 0, "added": 0}
        for kind in ("context", "memory", "event", "observation")}
    assert db.search.index_status() == before
    assert {kind for kind, _ in found(db, pid, "adyen")} == {"context", "memory", "event"}
    assert sorted(found(db, pid, "stripe")) == sorted([
        ("context", records["note"]["item_id"]), ("event", records["event"]["event_id"])])


def write_behind_ctxdb(db: Ctxdb, sql: str) -> None:
    """Run ``sql`` on a connection of its own, outside ctxdb (nothing indexes what it does)."""
    if db.storage.dialect.name == "sqlite":
        conn = sqlite3.connect(db.settings.sqlite_path)
        try:
            conn.execute(sql)
            conn.commit()
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(db.settings.url, autocommit=True) as pg:
            pg.execute(sql.encode())


def test_a_write_without_documents_spares_the_look_for_them(
    db: Ctxdb, pid: str, records: dict[str, Any]
) -> None:
    """Only a transaction that ran a statement able to write a search document looks for
    documents without index terms: one left without them outside ctxdb stays so through a
    write of another kind, and is indexed by the next write that stores an item."""
    if db.storage.dialect.pending_limit:
        db.search.index_status()  # SQLite: the records' documents given their waiting terms
    write_behind_ctxdb(db, "UPDATE search_documents SET body = body || ' quetzal' "
                           "WHERE kind = 'event'")
    assert _waiting(db) == 1
    db.projects.create("no documents here")
    assert _waiting(db) == 1
    db.context.store(pid, {"note": "a document"}, "LOW", "note")
    # PostgreSQL's store gives it its terms; SQLite's leaves both for a search (fewer than
    # Dialect.pending_limit wait), which gives them theirs before it reads the index.
    assert _waiting(db) == (2 if db.storage.dialect.pending_limit else 0)
    assert found(db, pid, "quetzal") == [("event", records["event"]["event_id"])]
    assert _waiting(db) == 0
    assert db.search.index_status()["event"] == (1, 1)


def _waiting(db: Ctxdb) -> int:
    """Documents without their index terms (a read that does not touch the index)."""
    return len(db.storage.read(lambda tx: tx.all("search_pending_documents", after=0,
                                                  limit=100)))
