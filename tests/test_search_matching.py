"""How search matches words, on both backends (docs/search.md, "How words match"): word forms,
the words of code identifiers and paths, prefixes, phrases, malformed input; the migration
that re-indexes an existing database; ranking by priority and recency."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from ctxdb.errors import InvalidSearchQueryError
from ctxdb.service import Ctxdb
from ctxdb.storage import Migrator, connect_storage
from ctxdb.storage.search_text import index_terms, prefix_words, query_words
from test_search_service import _fresh_settings, raw_sql


def bare_sql(db: Ctxdb, sql: str) -> None:
    """Run SQL with the database driver itself, as a script would, not through ctxdb."""
    if db.storage.dialect.name == "sqlite":
        import sqlite3

        with contextlib.closing(sqlite3.connect(db.storage.url)) as conn, conn:
            conn.execute(sql)
        return
    import psycopg

    with psycopg.connect(db.storage.url, autocommit=True) as conn:
        conn.execute(sql)


def ids(db: Ctxdb, pid: str, query: str, **filters: Any) -> set[Any]:
    """The records with every word of the query (not those with some of them)."""
    return {hit["id"] for hit in db.search.search(pid, query, limit=50, **filters)
            if hit["match"] == "all"}


def store(db: Ctxdb, pid: str, text: str, priority: str = "MEDIUM") -> int:
    return int(db.context.store(pid, text, priority, "note")["item_id"])


# --- the normalisation itself --------------------------------------------------------------


def test_index_terms_split_identifiers_and_stem_words() -> None:
    assert index_terms("payments are retried") == "payment are retri"
    assert index_terms("parse_config parseConfig ParseConfig") == (
        "pars config pars config pars config")
    assert index_terms("HTTPServer getHTTPResponse2") == "http server get http response2"
    assert index_terms("src/ctxdb/cli.py") == "src ctxdb cli py"
    assert index_terms("Straße ÜBER 日本語") == "straße über 日本語"
    assert query_words(("retry",)) == ("retri",)
    assert prefix_words(("retry",)) == ("retri",)  # a stem may end in another letter
    assert prefix_words(("parseCon",)) == ("pars", "con")


# --- each rule, through the service, on both backends ------------------------------------------


def test_word_forms_find_each_other(db: Ctxdb, pid: str) -> None:
    webhook = store(db, pid, "Stripe webhooks must be verified with the signing secret")
    retry = store(db, pid, "payments are retried three times")
    other = store(db, pid, "the deploy pipeline runs nightly")
    assert ids(db, pid, "webhook") == {webhook}
    assert ids(db, pid, "verify") == {webhook}
    assert ids(db, pid, "payment") == {retry}
    assert ids(db, pid, "retry") == {retry}
    assert ids(db, pid, "retries payment") == {retry}
    assert ids(db, pid, "running deploys") == {other}
    hit = db.search.search(pid, "retry")[0]
    assert hit["snippet"] == "payments are **retried** three times"


def test_identifiers_are_found_by_their_words_and_as_a_whole(db: Ctxdb, pid: str) -> None:
    snake = store(db, pid, "call parse_config before start")
    camel = store(db, pid, "then parseConfig returns a dict")
    pascal = store(db, pid, "class ParseConfig(Base)")
    store(db, pid, "parse the arguments; config comes later")  # the words, apart
    http = store(db, pid, "HTTPServer listens on 8080")
    identifiers = {snake, camel, pascal}
    assert ids(db, pid, "config") >= identifiers
    assert ids(db, pid, '"parse config"') == identifiers
    for whole in ("parse_config", "parseConfig", "ParseConfig", "parse-config"):
        assert ids(db, pid, whole) == identifiers, whole
    assert ids(db, pid, "http server") == {http}
    assert ids(db, pid, "server") == {http}
    hit = db.search.search(pid, "config", kinds="context")[0]
    assert "**" in hit["snippet"]
    assert ids(db, pid, "parseConfig", kinds="context") == identifiers


def test_paths_are_found_by_each_part(db: Ctxdb, pid: str) -> None:
    path = store(db, pid, "edited src/ctxdb/cli.py and tests/test_cli.py")
    store(db, pid, "the client library")
    assert ids(db, pid, "cli") == {path}
    assert ids(db, pid, "src/ctxdb/cli.py") == {path}
    assert ids(db, pid, "ctxdb/cli") == {path}
    assert ids(db, pid, "test_cli") == {path}


def test_prefixes(db: Ctxdb, pid: str) -> None:
    migrations = store(db, pid, "the migrations ran")
    migrated = store(db, pid, "we migrated the data")
    retried = store(db, pid, "payments are retried")
    camel = store(db, pid, "parseConfiguration is slow")
    assert ids(db, pid, "migrat*") == {migrations, migrated}
    assert ids(db, pid, "retry*") == {retried}
    assert ids(db, pid, "parseConf*") == {camel}
    assert ids(db, pid, "pay*") == {retried}


def test_phrases_keep_their_order(db: Ctxdb, pid: str) -> None:
    signing = store(db, pid, "verified with the Signing Secrets of each endpoint")
    store(db, pid, "the secret of signing is patience")
    assert ids(db, pid, '"signing secret"') == {signing}
    assert ids(db, pid, '"signed secrets"') == {signing}  # word forms within a phrase
    assert len(ids(db, pid, "signing secret")) == 2


@pytest.mark.parametrize("query", [
    '"unterminated', 'a AND', "NOT x", "(((", "*", "x**", "-a b*", 'NEAR(a, b)', "a:b",
    "'; DROP TABLE x", "&|!<->", "col: value", "^start", "{a b}", "a OR", "OR a",
    "\\", "’smart quotes’", "x" * 500, "__init__", "a_", "_b", "1.5.2", "v2.0-rc1*",
])
def test_malformed_input_never_reaches_the_engine(db: Ctxdb, pid: str, query: str) -> None:
    store(db, pid, "a b start value x 1 5 2 init")
    # A typed refusal (no words, only exclusions) is fine; an engine error is not.
    with contextlib.suppress(InvalidSearchQueryError):
        db.search.search(pid, query)


def test_the_same_query_finds_the_same_records_on_both_backends(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The engines index the very same terms: a corpus gives identical hit sets."""
    texts = ["payments are retried", "parseConfig(path)", "src/app/main.py crashed",
             "HTTPServer on 8080", "über straße", "Configuring the webhooks",
             "migrations: 0013_search_terms.sql", "the retry budget is 3"]
    queries = ["retry", "config*", "main", "http server", "über", "configure webhook",
               "migration", "search_terms", '"retry budget"', "retried or webhooks -budget"]
    results: dict[str, list[set[str]]] = {}
    for name in ("sqlite", backend):
        settings = _fresh_settings(name, tmp_path / name, request)
        with Ctxdb.open(settings.replace(auto_migrate=True)) as db:
            pid = db.projects.create("same")["project_id"]
            numbered = {store(db, pid, text): text for text in texts}
            results[name] = [{numbered[i] for i in ids(db, pid, q)} for q in queries]
    assert results["sqlite"] == results[backend]
    assert all(results["sqlite"])


# --- index upkeep -----------------------------------------------------------------------------


def test_a_changed_memory_is_indexed_again(db: Ctxdb, pid: str) -> None:
    db.memories.put(pid, "app", "queue", "jobs are retried")
    assert [h["kind"] for h in db.search.search(pid, "retry")] == ["memory"]
    db.memories.put(pid, "app", "queue", "jobs are dropped", expected_version=1)
    assert db.search.search(pid, "retry") == []
    assert [h["kind"] for h in db.search.search(pid, "drop")] == ["memory"]


def test_documents_written_behind_ctxdbs_back_are_indexed_by_the_next_process(
        db: Ctxdb, pid: str) -> None:
    """A process indexes what lacks terms with its first write; later writes look only above
    what it indexed itself on PostgreSQL (docs/search.md), so a new process (a hook, the CLI)
    is what picks up documents written behind ctxdb's back."""
    item = store(db, pid, "written through ctxdb")
    bare_sql(db, "UPDATE search_documents SET terms = NULL")  # as a bare driver leaves them
    if db.storage.dialect.pending_limit:  # SQLite: a search brings the index current first
        assert ids(db, pid, "written") == {item}
        assert db.search.index_status()["context"] == (1, 1)
        return
    assert db.search.index_status()["context"] == (1, 0)
    assert ids(db, pid, "written") == set()
    with Ctxdb.open(db.settings) as next_process:
        store(next_process, pid, "another")
    assert ids(db, pid, "written") == {item}
    assert db.search.index_status()["context"] == (2, 2)


def test_rebuild_rewrites_terms_that_disagree_with_the_rules(db: Ctxdb, pid: str) -> None:
    item = store(db, pid, "payments are retried")
    db.search.index_status()  # a read of the index: SQLite's waiting terms given first
    raw_sql(db, "UPDATE search_documents SET terms = 'stale' WHERE terms IS NOT NULL")
    if db.storage.dialect.name == "sqlite":  # the FTS5 index no longer knows it
        raw_sql(db, "INSERT INTO search_fts (search_fts) VALUES ('rebuild')")
    assert ids(db, pid, "retry") == set()
    db.search.rebuild_index()
    assert ids(db, pid, "retry") == {item}
    assert db.search.index_status()["context"] == (1, 1)


def test_the_migration_reindexes_an_existing_database(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = _fresh_settings(backend, tmp_path, request)
    storage = connect_storage(settings)
    try:
        migrator = Migrator(storage)
        version = next(m.version for m in migrator.migrations if m.name == "search_terms")
        migrator.upgrade(version - 1)
        db = Ctxdb(storage, settings)
        pid = db.projects.create("before terms")["project_id"]
        item = store(db, pid, "payments are retried by parseConfig")
        db.memories.put(pid, "app", "hooks", "webhooks verified")
        migrator.upgrade()
        assert ids(db, pid, "retry") == {item}
        assert ids(db, pid, "config") == {item}
        assert [h["kind"] for h in db.search.search(pid, "webhook")] == ["memory"]
        assert db.search.index_status() == {"context": (1, 1), "memory": (1, 1),
                                            "event": (0, 0),
                                            "observation": (0, 0)}
        migrator.downgrade(version - 1)  # and it can be taken back
        store(db, pid, "a write after the downgrade")  # (no terms to give: no column)
        migrator.upgrade()
        assert ids(db, pid, "retry") == {item}
        assert len(ids(db, pid, "write")) == 1
    finally:
        storage.close()


def test_records_with_some_of_the_words_come_after_those_with_all(
        db: Ctxdb, pid: str) -> None:
    both = store(db, pid, "failed payments are retried", "LOW")
    retry = store(db, pid, "the job is retried", "CRITICAL")
    payments = store(db, pid, "payments in cents")
    store(db, pid, "nothing of it")
    hits = db.search.search(pid, "how many times do we retry failed payments")
    assert [(h["id"], h["match"]) for h in hits][:1] == [(both, "some")]
    assert {h["id"] for h in hits} == {both, retry, payments}
    hits = db.search.search(pid, "retry payments")
    assert (hits[0]["id"], hits[0]["match"]) == (both, "all")
    assert {h["id"]: h["match"] for h in hits[1:]} == {retry: "some", payments: "some"}
    assert [h["id"] for h in db.search.search(pid, "retry payments", limit=1)] == [both]
    assert {h["id"] for h in db.search.search(pid, "retry payments -cents")} == {both, retry}


# --- ranking ----------------------------------------------------------------------------------


def test_priority_and_recency_weigh_on_equal_relevance(db: Ctxdb, pid: str) -> None:
    low = store(db, pid, "cache invalidation rules", "LOW")
    critical = store(db, pid, "cache invalidation rules", "CRITICAL")
    medium = store(db, pid, "cache invalidation rules", "MEDIUM")
    assert [h["id"] for h in db.search.search(pid, "cache")] == [critical, medium, low]
    old = store(db, pid, "queue backoff policy")
    new = store(db, pid, "queue backoff policy")
    raw_sql(db, "UPDATE search_documents SET occurred_at = '2020-01-01T00:00:00.000Z' "
                f"WHERE item_id = {old}")
    hits = db.search.search(pid, "backoff")
    assert [h["id"] for h in hits] == [new, old]
    assert hits[0]["score"] > hits[1]["score"] * 1.5  # the old one weighs about half
