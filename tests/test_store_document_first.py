"""PostgreSQL: a store's search document written before its project's row is locked
(``store_document_first``, issue 14), and the races that then end in the careful way.

The document is written with an id drawn from the items' sequence, where no item has the key
and the project is active as seen without a lock; the row is locked after it. A store whose
key was taken, or whose project was archived, between that look and the lock inserts no
item: the document's foreign key fails the statement, nothing is committed, and the store
answers as the careful way does (the item stored under the key, or a typed refusal).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ctxdb.errors import InvalidTransitionError
from ctxdb.service import Ctxdb
from ctxdb.service.usecases.context_insert import draw_and_insert
from ctxdb.settings import load_settings
from ctxdb.storage import Tx

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_db(pg_url: str, tmp_path: Path) -> Iterator[Ctxdb]:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    with Ctxdb.open(load_settings(env=env, url=pg_url, actor="user:test")) as db:
        yield db


def _ids_drawn(url: str) -> tuple[int, int]:
    """The last item id and document id drawn (sequences: not rolled back, seen at once)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT (SELECT last_value FROM context_items_item_id_seq), "
                           "(SELECT last_value FROM search_documents_doc_id_seq)").fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def _wait_for_lock_wait(url: str, holder_pid: int) -> None:
    """Until a backend waits for a lock the backend ``holder_pid`` holds."""
    deadline = time.monotonic() + 10
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT 1 FROM pg_stat_activity WHERE %s = ANY "
                            "(pg_blocking_pids(pid))", (holder_pid,)).fetchone():
                return
            time.sleep(0.01)
    raise AssertionError("no store waited for the project's row")


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["answer"] = call()
        except Exception as exc:  # reported by the test
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _orphan_documents(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM search_documents d WHERE kind = 'context' "
                           "AND NOT EXISTS (SELECT FROM context_items i "
                           "WHERE i.item_id = d.item_id)").fetchone()
        assert row is not None
        return int(row[0])


def _sequence_numbers(url: str, pid: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [row[0] for row in conn.execute(
            "SELECT sequence_number FROM context_items WHERE project_id = %s ORDER BY 1",
            (pid,))]


def test_the_document_is_written_before_the_row_is_locked(pg_db: Ctxdb, pg_url: str) -> None:
    """While the store waits for its project's row, its item id and its document are drawn
    already: PostgreSQL ran the document's insert before the lock's part."""
    pid = pg_db.projects.create("document first")["project_id"]
    pg_db.context.store(pid, {"note": "warmup"})  # the first write learns the schema
    with psycopg.connect(pg_url) as holder:
        holder.execute("SELECT 1 FROM projects WHERE project_id = %s FOR UPDATE", (pid,))
        before = _ids_drawn(pg_url)
        thread, outcome = _in_thread(lambda: pg_db.context.store(pid, {"note": "aardvark"}))
        _wait_for_lock_wait(pg_url, holder.info.backend_pid)
        while_waiting = _ids_drawn(pg_url)
        holder.commit()
    thread.join()
    assert while_waiting == (before[0] + 1, before[1] + 1)
    assert outcome["answer"]["item_id"] == while_waiting[0]
    assert outcome["answer"]["sequence_number"] == 2
    assert pg_db.context.search(pid, "aardvark")["items"]


def test_a_repeated_store_neither_writes_nor_waits_for_the_row(
        pg_db: Ctxdb, pg_url: str) -> None:
    """A store of a key already stored (a retry) draws no id and does not lock the row: it
    answers with the first item while another transaction holds the project's row."""
    pid = pg_db.projects.create("repeat")["project_id"]
    first = pg_db.context.store(pid, {"note": "ibis"}, idempotency_key="once")
    with psycopg.connect(pg_url) as holder:
        holder.execute("SELECT 1 FROM projects WHERE project_id = %s FOR UPDATE", (pid,))
        before = _ids_drawn(pg_url)
        thread, outcome = _in_thread(lambda: pg_db.context.store(
            pid, {"note": "ibis"}, idempotency_key="once"))
        thread.join(timeout=5)
        answered = not thread.is_alive()
        holder.rollback()  # lets a store that did wait finish
    thread.join()
    assert answered, "the repeated store waited for the project's row"
    assert _ids_drawn(pg_url) == before
    assert outcome["answer"] == first


def test_two_stores_of_one_key_at_once(pg_db: Ctxdb, pg_url: str) -> None:
    """The second store's look misses the first's uncommitted item: it writes a document,
    waits for the row, then finds the key taken. Nothing of it is committed, and it answers
    with the first store's item (the careful way)."""
    pid = pg_db.projects.create("one key twice")["project_id"]
    pg_db.context.store(pid, {"note": "warmup"})
    values = pg_db.context.item_values(pid, {"note": "kinkajou"}, "HIGH", "code", None, None,
                                       None, None, "shared-key")
    first_inserted, second_waits = threading.Event(), threading.Event()

    def first_unit(tx: Tx) -> Any:
        row = draw_and_insert(tx, values, "user:test")  # the row locked, not committed
        first_inserted.set()
        assert second_waits.wait(10)
        return row

    first_thread, first = _in_thread(lambda: pg_db.storage.write(first_unit))
    assert first_inserted.wait(10)
    before = _ids_drawn(pg_url)
    second_thread, second = _in_thread(lambda: pg_db.context.store(
        pid, {"note": "kinkajou"}, idempotency_key="shared-key"))
    deadline = time.monotonic() + 10
    while _ids_drawn(pg_url) == before:  # its document written: it waits for the row now
        assert time.monotonic() < deadline, "the second store wrote no document"
        time.sleep(0.01)
    second_waits.set()
    first_thread.join()
    second_thread.join()
    assert "error" not in first and "error" not in second, (first, second)
    assert second["answer"]["item_id"] == first["answer"]["item_id"]
    assert second["answer"]["sequence_number"] == first["answer"]["sequence_number"] == 2
    assert _orphan_documents(pg_url) == 0
    assert _sequence_numbers(pg_url, pid) == [1, 2]
    assert len(pg_db.context.search(pid, "kinkajou")["items"]) == 1
    assert pg_db.context.store(pid, {"note": "next"})["sequence_number"] == 3


def test_a_store_racing_an_archive_is_refused_and_leaves_nothing(
        pg_db: Ctxdb, pg_url: str) -> None:
    """The project, active when the store looked, is archived before the store has its row:
    the store is refused as for an archived project, and its document is not committed."""
    pid = pg_db.projects.create("archived meanwhile")["project_id"]
    pg_db.context.store(pid, {"note": "warmup"})
    with psycopg.connect(pg_url) as archiver:
        archiver.execute("UPDATE projects SET status = 'archived', archived_at = now() "
                         "WHERE project_id = %s", (pid,))
        before = _ids_drawn(pg_url)
        thread, outcome = _in_thread(lambda: pg_db.context.store(pid, {"note": "quagga"}))
        _wait_for_lock_wait(pg_url, archiver.info.backend_pid)
        assert _ids_drawn(pg_url) == (before[0] + 1, before[1] + 1)  # its document written
        archiver.commit()
    thread.join()
    assert isinstance(outcome.get("error"), InvalidTransitionError), outcome
    assert _orphan_documents(pg_url) == 0
    assert _sequence_numbers(pg_url, pid) == [1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE projects SET status = 'active', archived_at = NULL "
                     "WHERE project_id = %s", (pid,))
    assert not pg_db.context.search(pid, "quagga")["items"]
    assert pg_db.context.store(pid, {"note": "after"})["sequence_number"] == 2
