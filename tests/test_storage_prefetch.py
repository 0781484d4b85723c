"""Tx.prefetch: reads announced ahead answer as if they were made where the unit makes them
(on PostgreSQL in one round trip, sent once; on SQLite they simply run as they come)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ctxdb.service import Ctxdb
from ctxdb.storage import Tx
from ctxdb.storage.pg_tx import PIPELINE, PostgresTx


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The named queries PostgreSQL was sent."""
    names: list[str] = []
    named = PostgresTx._named

    def spy(self: PostgresTx, query: str) -> str:
        names.append(query)
        return named(self, query)

    monkeypatch.setattr(PostgresTx, "_named", spy)
    yield names


def _memory(pid: str) -> tuple[str, dict[str, Any]]:
    return "get_live_memory", {"project_id": pid, "namespace": "app", "key": "k"}


def test_prefetched_reads_answer_in_order_and_are_sent_once(
        db: Ctxdb, pid: str, backend: str, sent: list[str]) -> None:
    db.memories.put(pid, "app", "k", {"v": 1})
    project = ("get_project", {"project_id": pid})
    missing = ("get_project", {"project_id": "proj_void"})

    def unit(tx: Tx) -> tuple[Any, ...]:
        tx.prefetch([_memory(pid), project, missing])
        return (tx.one(_memory(pid)[0], **_memory(pid)[1]), tx.all(project[0], **project[1]),
                tx.one(missing[0], **missing[1]))

    sent.clear()
    memory, projects, none = db.storage.read(unit)
    assert json.loads(memory["value"]) == {"v": 1}
    assert [row["project_id"] for row in projects] == [pid] and none is None
    if backend == "postgres" and PIPELINE:
        assert sent == ["get_live_memory", "get_project", "get_project"]


def test_a_statement_between_drops_what_was_prefetched(db: Ctxdb, pid: str) -> None:
    db.memories.put(pid, "app", "k", {"v": 1})

    def unit(tx: Tx) -> Any:
        tx.prefetch([("get_project", {"project_id": pid}), _memory(pid)])
        db.memories.put_in_tx(tx, pid, "app", "k", '{"v": 2}', kind=None,
                              expected_version=None, ttl_seconds=None, actor="user:test")
        return tx.one(_memory(pid)[0], **_memory(pid)[1])

    # The read after the write sees the write: its prefetched answer was not taken.
    assert json.loads(db.storage.write(unit)["value"]) == {"v": 2}


def test_reads_made_out_of_order_are_answered_by_the_database(
        db: Ctxdb, pid: str, backend: str, sent: list[str]) -> None:
    db.memories.put(pid, "app", "k", {"v": 1})
    project = ("get_project", {"project_id": pid})

    def unit(tx: Tx) -> tuple[Any, Any]:
        tx.prefetch([project, _memory(pid)])
        memory = tx.one(_memory(pid)[0], **_memory(pid)[1])  # not the next one announced
        return memory, tx.one(project[0], **project[1])

    sent.clear()
    memory, row = db.storage.read(unit)
    assert json.loads(memory["value"]) == {"v": 1} and row["project_id"] == pid
    if backend == "postgres" and PIPELINE:
        assert sent == ["get_project", "get_live_memory", "get_live_memory", "get_project"]
