"""SQLite's search index brought current in batches (issue 14): a write leaves its documents
without index terms until DEFER_LIMIT wait, and then gives them all theirs in its transaction
(one FTS5 segment for the batch); every statement that reads the FTS5 index first brings it
current, so every search still finds every committed document (docs/architecture.md)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ctxdb.errors import SearchIndexPendingError
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings
from ctxdb.storage import Tx, connect_storage
from ctxdb.storage.dialect import DEFER_LIMIT
from index_rows import index_rows, waiting_documents


def _insert_elsewhere(path: Path, pid: str, words: list[str]) -> None:
    """Items written by another writer (a bare driver): their trigger writes the documents,
    without terms."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    for number, word in enumerate(words):
        conn.execute("INSERT INTO context_items (project_id, sequence_number, content_type, "
                     "priority, token_count, content, metadata, idempotency_key, created_at) "
                     "VALUES (?, ?, 'note', 'HIGH', 1, ?, '{}', ?, "
                     "'2026-01-01T00:00:00.000Z')",
                     (pid, 1000 + number, f'{{"note": "{word}"}}', f"elsewhere-{number}"))
    conn.execute("COMMIT")
    conn.close()


def test_a_store_leaves_its_terms_and_a_search_right_after_finds_it(lite_db: Ctxdb) -> None:
    db, path = lite_db, lite_db.settings.sqlite_path
    pid = db.projects.create("right after")["project_id"]
    item = db.context.store(pid, {"note": "the okapi ledger"})
    assert waiting_documents(path) == 1 and index_rows(path, "okapi") == 0  # left for later
    assert [hit["id"] for hit in db.search.search(pid, "okapi")] == [item["item_id"]]
    assert waiting_documents(path) == 0 and index_rows(path, "okapi") == 1
    assert [row["item_id"] for row in db.context.search(pid, "okapi")["items"]] == [
        item["item_id"]]


def test_a_search_from_another_connection_finds_a_store(lite: Settings) -> None:
    with Ctxdb.open(lite) as writer, Ctxdb.open(lite) as reader:
        pid = writer.projects.create("two connections")["project_id"]
        reader.search.search(pid, "warmup")  # the reader's snapshot machinery is warm
        item = writer.context.store(pid, {"note": "a numbat in the logs"})
        assert [hit["id"] for hit in reader.search.search(pid, "numbat")] == [item["item_id"]]


def test_a_search_from_another_process_finds_a_store(lite_db: Ctxdb, lite: Settings) -> None:
    pid = lite_db.projects.create("two processes")["project_id"]
    item = lite_db.context.store(pid, {"note": "a quoll in the logs"})
    found = _in_child(lite, f"""
        hits = db.search.search({pid!r}, "quoll")
        print([hit["id"] for hit in hits])
    """)
    assert found == str([item["item_id"]])


def _in_child(settings: Settings, body: str) -> str:
    """Run ``body`` with ``db`` open on ``settings``' database in a new process; its output."""
    script = textwrap.dedent("""
        import sys
        from ctxdb.service import Ctxdb
        from ctxdb.settings import load_settings
        env = {{"HOME": sys.argv[2], "XDG_CONFIG_HOME": sys.argv[2]}}
        with Ctxdb.open(load_settings(env=env, url=sys.argv[1], actor="user:test")) as db:
        {body}
    """).format(body=textwrap.indent(textwrap.dedent(body), "    "))
    home = str(settings.sqlite_path.parent)
    done = subprocess.run([sys.executable, "-c", script, str(settings.sqlite_path), home],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_documents_waiting_below_the_limit_are_all_found(lite_db: Ctxdb) -> None:
    db, path = lite_db, lite_db.settings.sqlite_path
    pid = db.projects.create("below the limit")["project_id"]
    words = [f"wallaby tag{chr(97 + n // 26)}{chr(97 + n % 26)}" for n in range(DEFER_LIMIT - 1)]
    _insert_elsewhere(path, pid, words)
    assert waiting_documents(path) == DEFER_LIMIT - 1
    assert len(db.search.search(pid, "wallaby", limit=100)) == DEFER_LIMIT - 1
    assert waiting_documents(path) == 0
    for word in (words[0], words[-1]):
        assert len(db.search.search(pid, word.split()[1])) == 1


def test_the_write_that_finds_the_limit_waiting_indexes_them_all(lite_db: Ctxdb) -> None:
    db, path = lite_db, lite_db.settings.sqlite_path
    pid = db.projects.create("the limit")["project_id"]
    for number in range(DEFER_LIMIT - 1):
        db.context.store(pid, {"note": f"dingo {number}"})
    assert waiting_documents(path) == DEFER_LIMIT - 1 and index_rows(path, "dingo") == 0
    db.context.store(pid, {"note": "dingo last"})
    assert waiting_documents(path) == 0 and index_rows(path, "dingo") == DEFER_LIMIT
    db.memories.put(pid, "notes", "k", {"note": "a memory waits too"})
    assert waiting_documents(path) == 1


def test_a_write_unit_that_stores_then_searches_finds_its_store(lite_db: Ctxdb) -> None:
    db = lite_db
    pid = db.projects.create("one unit")["project_id"]
    values = db.context.item_values(pid, {"note": "a potoroo"}, "HIGH", "note", None, None,
                                    None, None, None)

    def unit(tx: Tx) -> list[int]:
        db.context.store_in_tx(tx, values, None)
        return [row["item_id"] for row in tx.all(
            "search_matching_items", match='"potoroo"', project_id=pid, priority="",
            content_type="", phase_id=None, limit=10)]

    assert len(db.storage.write(unit)) == 1


def test_a_search_after_a_kill_finds_the_store(lite_db: Ctxdb, lite: Settings) -> None:
    """The store commits its document without terms; a process killed right after it leaves
    it so, and the next search gives it its terms first."""
    pid = lite_db.projects.create("killed")["project_id"]
    script = textwrap.dedent("""
        import os, signal, sys
        from ctxdb.service import Ctxdb
        from ctxdb.settings import load_settings
        env = {"HOME": sys.argv[2], "XDG_CONFIG_HOME": sys.argv[2]}
        db = Ctxdb.open(load_settings(env=env, url=sys.argv[1], actor="user:test"))
        item = db.context.store(sys.argv[3], {"note": "a bilby before the crash"})
        print(item["item_id"], flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    path = lite.sqlite_path
    done = subprocess.run([sys.executable, "-c", script, str(path), str(path.parent), pid],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == -9, done.stderr
    assert waiting_documents(path) == 1
    assert [hit["id"] for hit in lite_db.search.search(pid, "bilby")] == [
        int(done.stdout.strip())]


def test_a_read_only_storage_refuses_a_search_that_would_miss_documents(
    lite_db: Ctxdb, lite: Settings
) -> None:
    pid = lite_db.projects.create("read only")["project_id"]
    lite_db.context.store(pid, {"note": "an echidna"})
    storage = connect_storage(lite, read_only=True)
    try:
        reader = Ctxdb(storage, lite)
        with pytest.raises(SearchIndexPendingError) as refused:
            reader.search.search(pid, "echidna")
        assert refused.value.code == "search_index_pending"
        assert waiting_documents(lite.sqlite_path) == 1  # nothing written
        lite_db.search.search(pid, "anything")  # a writable search brings the index current
        assert [hit["kind"] for hit in reader.search.search(pid, "echidna")] == ["context"]
    finally:
        storage.close()




def test_a_downgrade_leaves_no_document_waiting(lite_db: Ctxdb) -> None:
    """Older versions search without bringing the index current: the migration that older
    code refuses (0027) gives every waiting document its terms when it is taken back."""
    from ctxdb.storage import Migrator

    pid = lite_db.projects.create("downgrade")["project_id"]
    lite_db.context.store(pid, {"note": "a bandicoot"})
    migrator = Migrator(lite_db.storage)
    assert 27 in [m.version for m in migrator.migrations]
    assert waiting_documents(lite_db.settings.sqlite_path) == 1
    migrator.downgrade(26)
    assert waiting_documents(lite_db.settings.sqlite_path) == 0
    assert index_rows(lite_db.settings.sqlite_path, "bandicoot") == 1


def test_searches_during_constant_writes_find_every_committed_store(lite: Settings) -> None:
    """Writers never stop leaving documents waiting; each search, from another connection,
    finds the newest store that had returned before it began (its read runs again as a write
    that gives the waiting documents their terms, once, with no loop)."""
    import threading
    import time

    with Ctxdb.open(lite) as writer, Ctxdb.open(lite) as reader:
        pid = writer.projects.create("constant writes")["project_id"]
        stored: list[tuple[str, int]] = []
        stop = threading.Event()

        def write() -> None:
            number = 0
            while not stop.is_set():
                word = f"marsupial{number:05d}"
                item = writer.context.store(pid, {"note": f"a {word}"})
                stored.append((word, item["item_id"]))
                number += 1

        thread = threading.Thread(target=write)
        thread.start()
        try:
            searches, deadline = 0, time.monotonic() + 60
            # Until batches were written meanwhile too (each search takes the write lock
            # when documents wait, so the writer may store only a few between searches).
            while (searches < 40 or len(stored) <= 2 * DEFER_LIMIT) \
                    and time.monotonic() < deadline:
                if not stored:
                    time.sleep(0.001)
                    continue
                word, item_id = stored[-1]
                assert [hit["id"] for hit in reader.search.search(pid, word)] == [item_id]
                searches += 1
        finally:
            stop.set()
            thread.join()
        assert searches >= 40 and len(stored) > 2 * DEFER_LIMIT


def test_a_search_through_group_commit_brings_the_index_current(tmp_path: Path) -> None:
    """With group commit on (the server's SQLite writes), the read that meets waiting
    documents runs again as a write through the committer, like any write."""
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    settings = load_settings(env=env, url=str(tmp_path / "group.db"), actor="user:test",
                             sqlite_group_commit=True)
    with Ctxdb.open(settings) as db:
        assert db.storage.group_commit is not None
        pid = db.projects.create("group")["project_id"]
        item = db.context.store(pid, {"note": "a cassowary"})
        assert waiting_documents(settings.sqlite_path) == 1
        assert [hit["id"] for hit in db.search.search(pid, "cassowary")] == [item["item_id"]]
        assert waiting_documents(settings.sqlite_path) == 0
