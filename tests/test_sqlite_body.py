"""The body of an item's or a memory's search document made in Python
(storage/sqlite_body.py) is what SQLite's ``search_context_source`` or ``search_memory_source``
makes of the same JSON text, or ``None``; a store or a put then writes the document the
trigger would have written either way."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from ctxdb.domain.validation import encode_json
from ctxdb.service import Ctxdb
from ctxdb.settings import load_settings
from ctxdb.storage.sqlite import SQLiteStorage
from ctxdb.storage.sqlite_body import sqlite_document_text, sqlite_memory_text

# Keys and strings with what JSON escapes (quotes, backslashes, control characters), letters
# of other scripts and characters outside the Basic Multilingual Plane.
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
                | st.sampled_from(['"', "\\", "\n", "\t", "\x01", "\u2028", "é", "😀", "/"]),
                max_size=10)
_SCALARS = (st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
            | st.integers(-10**30, 10**30) | st.floats(allow_nan=False, allow_infinity=False)
            | _TEXT)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=25)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """A connection with a table of items and ctxdb's own search_context_source over it."""
    folder = tmp_path_factory.mktemp("body")
    env = {"HOME": str(folder), "XDG_CONFIG_HOME": str(folder / "config")}
    with Ctxdb.open(load_settings(env=env, url=str(folder / "ctxdb.db"),
                                  actor="user:test")) as db:
        assert isinstance(db.storage, SQLiteStorage)
        views = [sql for (sql,) in db.storage._connection().execute(
            "SELECT sql FROM sqlite_schema WHERE name IN ('search_context_source', "
            "'search_memory_source')")]
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE context_items (item_id INTEGER PRIMARY KEY, project_id, "
                 "content_type, priority, content, created_at, state)")
    conn.execute("CREATE TABLE memories (memory_id, project_id, memory_type, namespace, key, "
                 "value, expires_at, updated_at, deleted_at)")
    assert len(views) == 2
    for view in views:
        conn.execute(view)
    yield conn
    conn.close()


def sqlite_body(source: sqlite3.Connection, text: str) -> str:
    source.execute("DELETE FROM context_items")
    source.execute("INSERT INTO context_items VALUES (1, 'p', 'note', 'HIGH', ?, 'now', "
                   "'active')", (text,))
    (body,) = source.execute("SELECT body FROM search_context_source").fetchone()
    return str(body)


def sqlite_memory_body(source: sqlite3.Connection, namespace: str, key: str, text: str) -> str:
    source.execute("DELETE FROM memories")
    source.execute("INSERT INTO memories VALUES ('m', 'p', 'semantic', ?, ?, ?, NULL, 'now', "
                   "NULL)", (namespace, key, text))
    (body,) = source.execute("SELECT body FROM search_memory_source").fetchone()
    return str(body)


@examples(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(namespace=_TEXT, key=_TEXT, value=JSON_VALUES)
def test_the_python_body_is_what_sqlite_makes_of_any_memory(
        source: sqlite3.Connection, namespace: str, key: str, value: Any) -> None:
    text = encode_json(value, "value")
    made = sqlite_memory_text(namespace, key, text)
    assert (made is None) == (sqlite_document_text(text) is None)
    if made is not None:
        assert made == sqlite_memory_body(source, namespace, key, text)


def test_a_long_memory_body_is_cut_as_sqlite_cuts_it(source: sqlite3.Connection) -> None:
    text = encode_json(["w" * 199_990, "tail"], "value")
    assert sqlite_memory_text("a:b", "k", text) == sqlite_memory_body(source, "a:b", "k", text)


@examples(max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_VALUES)
def test_the_python_body_is_what_sqlite_makes_of_any_json(source: sqlite3.Connection,
                                                          value: Any) -> None:
    text = encode_json(value, "content")
    made = sqlite_document_text(text)
    if made is not None:
        assert made == sqlite_body(source, text)


@pytest.mark.parametrize("text", [
    '{"a":1,"a":2}', '{"bb":{"c":[1,[2,{"d":null}]]},"a":"x","é":true}', '"text"', 'null',
    '{}', '[]', '[[[1]],[2]]', '{"":""}', '[null,false,"",0]', '-0', '9223372036854775807',
    '-9223372036854775807', '{"k\\"q":"v\\\\w\\n"}', '"\\u00e9\\ud83d\\ude00"',
    '{"x":"' + "w" * 200_010 + '"}'])
def test_the_python_body_of_hand_picked_json(source: sqlite3.Connection, text: str) -> None:
    assert sqlite_document_text(text) == sqlite_body(source, text)


@pytest.mark.parametrize("text", ['1.5', '[1e2]', '{"n":-0.0}', '9223372036854775808',
                                  '[-9223372036854775808]'])
def test_sqlite_makes_the_body_of_numbers_written_its_own_way(text: str) -> None:
    assert sqlite_document_text(text) is None


def test_a_store_writes_the_document_the_trigger_writes(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    with Ctxdb.open(load_settings(env=env, url=str(tmp_path / "ctxdb.db"),
                                  actor="user:test")) as db:
        project = db.projects.create("bodies")["project_id"]
        for content in ({"note": "made in Python", "n": [1, True, None]},
                        {"ratio": 0.5, "note": "made by SQLite"}):
            db.context.store(project, content)
        assert isinstance(db.storage, SQLiteStorage)
        rows = db.storage._connection().execute(
            "SELECT d.body, s.body FROM search_documents d JOIN search_context_source s "
            "ON s.item_id = d.item_id ORDER BY d.doc_id").fetchall()
    assert len(rows) == 2
    assert all(stored == source for stored, source in rows)
    assert rows[0][0] == "note\nmade in Python\nn\n1\ntrue"


def test_a_put_writes_the_document_the_trigger_writes(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    with Ctxdb.open(load_settings(env=env, url=str(tmp_path / "ctxdb.db"),
                                  actor="user:test")) as db:
        project = db.projects.create("bodies")["project_id"]
        for number, value in enumerate(({"note": "made in Python", "n": 1},
                                        {"ratio": 0.5, "note": "made by SQLite"},
                                        ["made", "in", "Python", True])):
            db.memories.put(project, "team:notes", f"k{number}", {"first": "put"})
            db.memories.put(project, "team:notes", f"k{number}", value, expected_version=1)
        assert isinstance(db.storage, SQLiteStorage)
        rows = db.storage._connection().execute(
            "SELECT d.body, s.body FROM search_documents d JOIN search_memory_source s "
            "ON s.memory_id = d.memory_id ORDER BY d.body").fetchall()
    assert len(rows) == 3
    assert all(stored == source for stored, source in rows)
    assert sorted(stored for stored, _ in rows)[0] == "team notes\nk0\nnote\nmade in Python\nn\n1"
