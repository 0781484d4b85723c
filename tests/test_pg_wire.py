"""How a unit's named queries travel on PostgreSQL (storage/pg_wire.py): prepared once per
connection, kept across rollbacks, prepared anew when the server lost them, the same answers
without pipeline mode, and an error in a pipeline raised even when it is a Parse's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ctxdb.service import Ctxdb
from ctxdb.settings import load_settings
from ctxdb.storage import Tx
from ctxdb.storage.pg_wire import PreparedStatementsStale, Wire, positional
from ctxdb.storage.postgres_errors import is_transient

pytestmark = pytest.mark.postgres


@pytest.fixture
def one_connection(pg_url: str, tmp_path: Path) -> Iterator[Ctxdb]:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    settings = load_settings(env=env, url=pg_url, actor="user:test", pool_min_size=1,
                             pool_max_size=1)
    with Ctxdb.open(settings) as db:
        yield db


def _prepared(db: Ctxdb) -> set[str]:
    rows = db.storage.read(lambda tx: tx.all_raw(
        "SELECT name FROM pg_prepared_statements WHERE name LIKE 'ctxdb%%'", {}))
    return {row["name"] for row in rows}


def _wire(db: Ctxdb) -> Wire:
    wire: Wire = db.storage.read(lambda tx: tx.connection.wire())
    return wire


def test_placeholders_become_positional_once_per_name() -> None:
    sql, names = positional("SELECT %(a)s, %(b)s, %(a)s, 5 %% 2 WHERE x LIKE 'a%%'")
    assert sql == b"SELECT $1, $2, $1, 5 % 2 WHERE x LIKE 'a%'"
    assert names == ("a", "b")


def test_a_store_prepares_its_statements_once(one_connection: Ctxdb) -> None:
    db = one_connection
    pid = db.projects.create("prepared")["project_id"]
    db.context.store(pid, {"note": "first"})
    before = _prepared(db)
    for number in range(5):
        db.context.store(pid, {"note": f"again {number}"})
    assert before and _prepared(db) == before


def test_a_rollback_keeps_the_prepared_statements(one_connection: Ctxdb) -> None:
    """psycopg's own rollback() deallocates its prepared statements; ctxdb's connections
    do not prepare with psycopg, so a failed unit leaves pg_wire's in place."""
    db = one_connection
    pid = db.projects.create("rollback")["project_id"]
    first = db.context.store(pid, {"note": "first"})["sequence_number"]
    for _ in range(6):  # a literal query psycopg would have prepared by now
        before = _prepared(db)

    def failing(tx: Tx) -> None:
        tx.one("get_project", project_id=pid)
        raise ValueError("the unit fails")

    with pytest.raises(ValueError, match="the unit fails"):
        db.storage.write(failing)
    assert _prepared(db) >= before
    assert db.context.store(pid, {"note": "after"})["sequence_number"] > first


def test_statements_the_server_lost_are_prepared_anew_and_the_unit_runs_again(
        one_connection: Ctxdb) -> None:
    db = one_connection
    pid = db.projects.create("lost")["project_id"]
    first = db.context.store(pid, {"note": "first"})["sequence_number"]
    db.storage.read(lambda tx: tx.execute_raw("DEALLOCATE ALL", {}))
    assert _prepared(db) == set()
    # The store's statement was known as prepared: the first attempt finds it gone.
    second = db.context.store(pid, {"note": "second"})["sequence_number"]
    third = db.context.store(pid, {"note": "third"})["sequence_number"]
    assert first < second < third
    assert [item["note"] for item in (
        i["content"] for group in db.context.full(pid).values() for i in group)] == \
        ["first", "second", "third"]
    assert is_transient(PreparedStatementsStale("a prepared statement was stale"))


def test_without_pipelines_the_answers_are_the_same(one_connection: Ctxdb) -> None:
    db = one_connection
    pid = db.projects.create("one by one")["project_id"]
    queries = db.storage._queries
    statements: list[tuple[Any, Any]] = [
        (b"BEGIN", None),
        (queries["get_project"], {"project_id": pid}),
        (queries["get_project"], {"project_id": "proj_none"}),
        (b"COMMIT", None),
    ]
    wire = _wire(db)
    for pipeline in (True, False, False):
        results = wire.exchange(statements, pipeline=pipeline)
        assert [len(wire.rows(result)) for result in results] == [0, 1, 0, 0]
        assert wire.rows(results[1])[0]["project_id"] == pid
        assert wire.rowcount(results[1]) == 1


@pytest.mark.parametrize("pipeline", [True, False])
def test_an_error_is_raised_and_what_follows_it_does_not_run(
        one_connection: Ctxdb, pipeline: bool) -> None:
    db = one_connection
    pid = db.projects.create("errors")["project_id"]
    wire = _wire(db)
    bad_parse = "SELECT * FROM no_such_table WHERE x = %(x)s"
    bad_value = "SELECT CAST(%(x)s AS INTEGER) AS n"
    rename = "UPDATE projects SET name = %(name)s WHERE project_id = %(project_id)s"
    for bad in (bad_parse, bad_value):
        with pytest.raises(psycopg.Error):
            wire.exchange([(b"BEGIN", None), (bad, {"x": "text"}),
                           (rename, {"name": "renamed", "project_id": pid}),
                           (b"COMMIT", None)], pipeline=pipeline)
        wire.exchange([(b"ROLLBACK", None)])
    assert db.projects.get(pid)["name"] == "errors"
    # The refused Parse left no name behind: the same query fails the same way again.
    with pytest.raises(psycopg.errors.UndefinedTable):
        wire.exchange([(bad_parse, {"x": "text"})], pipeline=pipeline)


def test_a_missing_parameter_is_a_clear_error(one_connection: Ctxdb) -> None:
    wire = _wire(one_connection)
    with pytest.raises(psycopg.ProgrammingError, match="query parameter missing: 'a'"):
        wire.exchange([("SELECT %(a)s::text AS a", {"b": 1})])
    assert wire.rows(wire.exchange([("SELECT %(a)s::text AS a", {"a": 1})])[0]) == [{"a": "1"}]


def test_a_read_unit_sends_begin_with_its_first_statement(
        one_connection: Ctxdb, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read unit's BEGIN (and scope) travel in its first statement's round trip; a unit
    that sends nothing sends no BEGIN and no COMMIT."""
    db = one_connection
    pid = db.projects.create("reads")["project_id"]
    sent: list[list[str]] = []
    original_simple, original_exchange = Wire.simple, Wire.exchange

    def counting_simple(self: Wire, sql: bytes) -> Any:
        sent.append([sql.decode()])
        return original_simple(self, sql)

    def counting_exchange(self: Wire, statements: Any, pipeline: bool = True) -> Any:
        sent.append([sql.decode() if isinstance(sql, bytes) else "query"
                     for sql, _params in statements])
        return original_exchange(self, statements, pipeline)

    monkeypatch.setattr(Wire, "simple", counting_simple)
    monkeypatch.setattr(Wire, "exchange", counting_exchange)
    project = db.storage.read(lambda tx: tx.one("get_project", project_id=pid))
    assert sent == [["BEGIN", "query"], ["COMMIT"]]
    sent.clear()
    assert db.storage.read(lambda tx: None) is None
    assert sent == []
    sent.clear()
    scoped = db.storage.scoped([pid])
    assert scoped.read(lambda tx: tx.one("get_project", project_id=pid)) == project
    assert sent[0][0] == "BEGIN" and sent[0][2] == "query"
    assert sent[0][1].startswith("SELECT set_config(")
    monkeypatch.undo()
    assert db.storage.read(lambda tx: tx.one("get_project", project_id=pid)) == project


@pytest.mark.parametrize("pipeline", [True, False])
def test_a_value_that_cannot_be_sent_leaves_no_statement_known_as_prepared(
        one_connection: Ctxdb, pipeline: bool) -> None:
    """Nothing was sent when a later statement's value cannot be dumped: the earlier
    statements' first use is still to come, with their Parse."""
    wire = _wire(one_connection)
    first = f"SELECT %(a)s::text AS a, {int(pipeline)} AS pipelined"
    with pytest.raises(psycopg.ProgrammingError):
        wire.exchange([(first, {"a": "x"}), ("SELECT %(b)s::text AS b", {"b": object()})],
                      pipeline=pipeline)
    assert wire.rows(wire.exchange([(first, {"a": "y"})], pipeline=pipeline)[0]) == [
        {"a": "y", "pipelined": int(pipeline)}]
