"""SQLite's named queries with numbered placeholders (storage/sqlite_params.py), the kept
statement cursor of a transaction, and the store's audit details made without an encoder."""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctxdb.domain.validation import encode_json
from ctxdb.errors import CtxdbError, InvalidContentError, StorageError
from ctxdb.service import Ctxdb
from ctxdb.service.usecases.context_insert import store_audit_details
from ctxdb.settings import load_settings
from ctxdb.storage import Tx
from ctxdb.storage.dialect import SQLITE
from ctxdb.storage.queries import compiled_queries, raw_queries
from ctxdb.storage.sqlite import SQLiteStorage
from ctxdb.storage.sqlite_params import numbered


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Ctxdb]:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    with Ctxdb.open(load_settings(env=env, url=str(tmp_path / "ctxdb.db"),
                                  actor="user:test")) as store:
        yield store


def test_placeholders_are_numbered_by_first_use_outside_literals_and_comments() -> None:
    sql, pick = numbered(
        "SELECT :b, ':a', \":a\", x::text, :a -- :c\n/* :d */ FROM t WHERE y = :b")
    assert sql == "SELECT ?1, ':a', \":a\", x::text, ?2 -- :c\n/* :d */ FROM t WHERE y = ?1"
    assert pick({"a": 1, "b": 2, "unused": 3}) == (2, 1)
    with pytest.raises(KeyError):
        pick({"a": 1})
    one_sql, one = numbered("SELECT :only")
    assert (one_sql, one({"only": None})) == ("SELECT ?1", (None,))
    assert numbered("SELECT 'it''s :x'")[1]({}) == ()


def test_every_named_query_binds_the_same_values_numbered(db: Ctxdb) -> None:
    """Each query SQLite can prepare takes exactly the names found, by name and numbered."""
    assert isinstance(db.storage, SQLiteStorage)
    conn = db.storage._connection()
    prepared = 0
    for name in raw_queries():
        named_sql = compiled_queries(SQLITE)[name]
        sql, pick = numbered(named_sql)
        names = list(dict.fromkeys(_names(named_sql)))
        try:
            conn.execute("EXPLAIN " + named_sql, dict.fromkeys(names))
        except (sqlite3.OperationalError, sqlite3.ProgrammingError):
            continue  # PostgreSQL's own statements, scripts: never run on SQLite
        conn.execute("EXPLAIN " + sql, pick(dict.fromkeys(names)))
        prepared += 1
    assert prepared > 200


def _names(sql: str) -> list[str]:
    found: list[str] = []
    pick = numbered(sql)[1]

    class Recorder(dict[str, Any]):
        def __missing__(self, key: str) -> None:
            found.append(key)

    pick(Recorder())
    return found


def test_a_missing_value_is_the_drivers_typed_error(db: Ctxdb) -> None:
    with pytest.raises(StorageError, match="project_id"):
        db.storage.read(lambda tx: tx.one("get_project"))


def test_a_unit_failing_after_an_unread_row_rolls_back(db: Ctxdb) -> None:
    for name in ("one", "two"):
        db.projects.create(name)

    def unit(tx: Tx) -> None:
        assert tx.one("list_projects", include_archived=1) is not None
        raise CtxdbError("changed my mind")

    with pytest.raises(CtxdbError, match="changed my mind"):
        db.storage.write(unit)
    assert isinstance(db.storage, SQLiteStorage)
    assert not db.storage._connection().in_transaction
    assert len(db.projects.list()) == 2
    db.projects.create("three")  # the next transaction begins as usual


class Level(enum.IntEnum):
    SEVEN = 7


@pytest.mark.parametrize(("priority", "sequence", "tokens"),
                         [("HIGH", 1, 0), ("CRITICAL", 2**62, 120), ("LOW", Level.SEVEN, 5)])
def test_store_audit_details_are_what_the_encoder_writes(priority: str, sequence: int,
                                                         tokens: int) -> None:
    assert store_audit_details(priority, sequence, tokens) == encode_json(
        {"priority": priority, "sequence_number": sequence, "token_count": tokens}, "details")


def test_a_store_audits_its_details(db: Ctxdb) -> None:
    project = db.projects.create("audited")["project_id"]
    item = db.context.store(project, {"note": "x"}, priority="MEDIUM", token_count=3)
    (row,) = [r for r in db.audit_log() if r["action"] == "context.store"]
    assert row["details"] == {"priority": "MEDIUM", "sequence_number":
                              item["sequence_number"], "token_count": 3}


def test_the_kept_encoder_writes_what_json_dumps_writes() -> None:
    import json

    for value in [{"a": [1, 2.5, "é\"\n", None, True]}, "text", 3, [], {"k": {"n": -1e300}}]:
        assert encode_json(value, "v") == json.dumps(value, ensure_ascii=False,
                                                     separators=(",", ":"))
    looped: dict[str, Any] = {}
    looped["self"] = looped
    with pytest.raises(InvalidContentError, match="nested deeper"):
        encode_json(looped, "v")
    with pytest.raises(InvalidContentError, match="not JSON-serializable"):
        encode_json(float("nan"), "v")
