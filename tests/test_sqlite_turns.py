"""Turns at SQLite's write lock (storage/sqlite_turns.py): ctxdb's writers reach the lock one
at a time, a writer that waited as long as its patience goes on to SQLite's own waiting, and a
folder that cannot hold the file costs nothing but the turns."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ctxdb.service import Ctxdb
from ctxdb.settings import load_settings
from ctxdb.storage.sqlite_turns import WriteTurns, turns_path


def test_a_turn_waits_for_the_writer_holding_it(tmp_path: Path) -> None:
    database = tmp_path / "turns.db"
    first, second = WriteTurns(database, 30.0), WriteTurns(database, 30.0)
    order: list[str] = []
    with first.turn():
        waiter = threading.Thread(target=lambda: _take(second, order))
        waiter.start()
        time.sleep(0.2)
        order.append("first done")
    waiter.join(timeout=10)
    assert order == ["first done", "second"]
    assert turns_path(database).stat().st_mode & 0o777 == 0o600
    first.close()
    second.close()


def _take(turns: WriteTurns, order: list[str]) -> None:
    with turns.turn():
        order.append("second")


def test_a_writer_stops_waiting_for_its_turn_after_its_patience(tmp_path: Path) -> None:
    database = tmp_path / "turns.db"
    holder, impatient = WriteTurns(database, 30.0), WriteTurns(database, 0.1)
    with holder.turn():
        started = time.monotonic()
        with impatient.turn():  # goes on without a turn: SQLite's lock still decides
            waited = time.monotonic() - started
    assert 0.1 <= waited < 5
    holder.close()
    impatient.close()


def test_without_a_place_for_the_file_writes_go_on(tmp_path: Path) -> None:
    turns = WriteTurns(tmp_path / "missing folder" / "turns.db", 30.0)
    with turns.turn():
        pass
    assert not (tmp_path / "missing folder").exists()


def test_threads_storing_at_once_all_store(tmp_path: Path) -> None:
    settings = load_settings(env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
                             url=str(tmp_path / "ctx.db"))
    with Ctxdb.open(settings) as db:
        project = db.projects.create("turns")["project_id"]
        errors: list[BaseException] = []

        def writer(number: int) -> None:
            try:
                for index in range(25):
                    db.context.store(project, {"writer": number, "index": index})
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        counts = db.context.counts(project)
        assert counts["HIGH"]["items"] == 150
        assert turns_path(settings.sqlite_path).exists()


def test_a_store_makes_its_document_body_before_its_turn(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk of the item's JSON that makes its search document's body is Python work the
    store does not need the write lock for: it is done before the turn is taken, so that the
    writers waiting for the lock do not wait for it too."""
    from ctxdb.service.usecases import context, context_insert
    from ctxdb.storage import sqlite_turns

    holding: list[bool] = [False]
    walked_holding: list[bool] = []
    take, give_back = WriteTurns.take, WriteTurns.give_back

    def taking(self: WriteTurns) -> int | None:
        held = take(self)
        holding[0] = True
        return held

    def giving_back(held: int | None) -> None:
        holding[0] = False
        give_back(held)

    def walk(module: object) -> None:
        original = module.sqlite_document_text  # type: ignore[attr-defined]

        def walking(content: str) -> str | None:
            walked_holding.append(holding[0])
            return original(content)  # type: ignore[no-any-return]

        monkeypatch.setattr(module, "sqlite_document_text", walking)

    monkeypatch.setattr(sqlite_turns.WriteTurns, "take", taking)
    monkeypatch.setattr(sqlite_turns.WriteTurns, "give_back", staticmethod(giving_back))
    for module in (context, context_insert):
        if hasattr(module, "sqlite_document_text"):
            walk(module)
    settings = load_settings(env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
                             url=str(tmp_path / "ctx.db"))
    with Ctxdb.open(settings) as db:
        project = db.projects.create("bodies")["project_id"]
        stored = db.context.store(project, {"note": "walked before the turn"})
        hits = db.search.search(project, "walked")
        assert [hit["id"] for hit in hits] == [stored["item_id"]]
    assert walked_holding and not any(walked_holding)
