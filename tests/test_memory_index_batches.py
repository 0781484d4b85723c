"""SQLite: a memory put's index work in the batch too (issue 14, migration 0028). A put leaves
its document waiting for its terms, stale: the FTS5 index still holds the old terms, which the
row keeps (indexed_terms) until the batch deletes them and inserts the new. Every search still
finds every memory by its current text and never by its old text (docs/architecture.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ctxdb.errors import SearchIndexPendingError
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from ctxdb.storage import Migrator, connect_storage
from ctxdb.storage.dialect import DEFER_LIMIT
from index_rows import index_rows, query_beside, waiting_documents


def _stale(path: Path) -> int:
    return int(query_beside(path, "SELECT count(*) FROM search_documents "
                            "WHERE indexed_terms IS NOT NULL")[0][0])


def _check_index(path: Path) -> None:
    """FTS5's own check of its index against the documents' terms (it fails on a stale
    document, whose index entry is not its row's terms: called once none is)."""
    assert _stale(path) == 0
    query_beside(path, "INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")


def _keys(db: Ctxdb, pid: str, words: str) -> list[str]:
    return sorted(hit["key"] for hit in db.search.search(pid, words, limit=200))


def test_a_search_right_after_a_put_finds_the_new_text_and_not_the_old(lite_db: Ctxdb) -> None:
    db, path = lite_db, lite_db.settings.sqlite_path
    pid = db.projects.create("right after")["project_id"]
    db.memories.put(pid, "notes", "k", {"note": "an okapi"})
    assert _keys(db, pid, "okapi") == ["k"]  # brought current: indexed, nothing waits
    assert waiting_documents(path) == 0
    db.memories.put(pid, "notes", "k", {"note": "a numbat"}, expected_version=1)
    # Left for the batch: the index still holds the old terms, and the row keeps them.
    assert waiting_documents(path) == 1 and _stale(path) == 1
    assert index_rows(path, "okapi") == 1 and index_rows(path, "numbat") == 0
    assert _keys(db, pid, "numbat") == ["k"]
    assert _keys(db, pid, "okapi") == []
    assert index_rows(path, "okapi") == 0 and index_rows(path, "numbat") == 1
    _check_index(path)


def test_stale_documents_across_the_batch_threshold(lite_db: Ctxdb) -> None:
    """DEFER_LIMIT - 1 puts leave their documents stale; the put that brings the waiting
    documents to DEFER_LIMIT gives them all their terms, old ones deleted, in its
    transaction. A memory put twice meanwhile is found by neither older text."""
    db, path = lite_db, lite_db.settings.sqlite_path
    pid = db.projects.create("threshold")["project_id"]
    keys = [f"k{number}" for number in range(DEFER_LIMIT)]
    for key in keys:
        db.memories.put(pid, "notes", key, {"note": f"wombat {key}x"})
    assert len(_keys(db, pid, "wombat")) == DEFER_LIMIT and waiting_documents(path) == 0
    db.memories.put(pid, "notes", keys[0], {"note": "quoll first"}, expected_version=1)
    for key in keys[:-1]:  # keys[0] twice: its stale document changed again
        version = 3 if key == keys[0] else 2
        db.memories.put(pid, "notes", key, {"note": f"kowari {key}y"},
                        expected_version=version - 1)
    assert waiting_documents(path) == DEFER_LIMIT - 1 == _stale(path)
    assert index_rows(path, "wombat") == DEFER_LIMIT and index_rows(path, "kowari") == 0
    assert index_rows(path, "quoll") == 0  # never indexed: the batch skipped it
    db.memories.put(pid, "notes", keys[-1], {"note": f"kowari {keys[-1]}y"}, expected_version=1)
    assert waiting_documents(path) == 0 and _stale(path) == 0
    assert index_rows(path, "wombat") == 0 and index_rows(path, "kowari") == DEFER_LIMIT
    _check_index(path)
    assert _keys(db, pid, "kowari") == sorted(keys)
    assert _keys(db, pid, "wombat") == [] and _keys(db, pid, "quoll") == []
    assert _keys(db, pid, f"{keys[5]}y") == [keys[5]]


def test_stale_documents_deleted_moved_or_rewritten_keep_the_index_whole(
    lite_db: Ctxdb
) -> None:
    """Whatever else writes a stale document: a tombstone deletes the terms the index holds,
    another connection's update of the memory keeps them for the batch, a move to another
    project deletes them under the old project and enters them under the new."""
    db, path = lite_db, lite_db.settings.sqlite_path
    pid = db.projects.create("others")["project_id"]
    other_pid = db.projects.create("elsewhere")["project_id"]
    for key in ("gone", "elsewhere", "moved"):
        db.memories.put(pid, "notes", key, {"note": f"dingo {key}"})
    db.search.index_status()
    for key in ("gone", "elsewhere", "moved"):
        db.memories.put(pid, "notes", key, {"note": f"potoroo {key}"}, expected_version=1)
    assert _stale(path) == 3
    db.memories.delete(pid, "notes", "gone", expected_version=2)
    query_beside(path, "UPDATE memories SET value = '{\"note\": \"quokka\"}', "
                 "version = version + 1 WHERE key = 'elsewhere'")
    query_beside(path, "UPDATE search_documents SET project_id = ? WHERE memory_id = "
                 "(SELECT memory_id FROM memories WHERE key = 'moved')", other_pid)
    assert _stale(path) == 2 and index_rows(path, "dingo") == 2
    assert _keys(db, pid, "dingo") == [] and _keys(db, pid, "potoroo") == []
    assert _keys(db, pid, "quokka") == ["elsewhere"]
    assert _keys(db, other_pid, "potoroo") == ["moved"]
    assert index_rows(path, "dingo") == 0
    _check_index(path)


def _in_child(settings: Settings, body: str) -> subprocess.Popen[str]:
    """``body`` run with ``db`` open on ``settings``' database in a new process."""
    script = textwrap.dedent("""
        import sys
        from ctxdb.service import Ctxdb
        from ctxdb.settings import load_settings
        env = {{"HOME": sys.argv[2], "XDG_CONFIG_HOME": sys.argv[2]}}
        db = Ctxdb.open(load_settings(env=env, url=sys.argv[1], actor="user:test"))
        {body}
    """).format(body=textwrap.dedent(body).strip())
    return subprocess.Popen(
        [sys.executable, "-c", script, str(settings.sqlite_path),
         str(settings.sqlite_path.parent)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def test_a_search_after_a_kill_finds_the_put_and_not_its_old_text(
    lite_db: Ctxdb, lite: Settings
) -> None:
    db, path = lite_db, lite.sqlite_path
    pid = db.projects.create("killed")["project_id"]
    db.memories.put(pid, "notes", "k", {"note": "a bettong"})
    db.search.index_status()
    child = _in_child(lite, f"""
        import os, signal
        db.memories.put({pid!r}, "notes", "k", {{"note": "a bandicoot"}}, expected_version=1)
        print("put", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    out, err = child.communicate(timeout=120)
    assert child.returncode == -9 and out.strip() == "put", err
    assert _stale(path) == 1 and index_rows(path, "bettong") == 1
    assert _keys(db, pid, "bandicoot") == ["k"] and _keys(db, pid, "bettong") == []
    _check_index(path)


def test_puts_killed_at_any_point_lose_nothing(lite_db: Ctxdb, lite: Settings) -> None:
    """A process putting without pause, across batches, killed at some moment: every put it
    had been answered is found by its text, no older text is, and the index is whole."""
    db, path = lite_db, lite.sqlite_path
    pid = db.projects.create("killed anywhere")["project_id"]
    keys = 5
    for key in range(keys):
        db.memories.put(pid, "notes", f"k{key}", {"note": f"gen{key}n0"})
    for delay in (0.4, 0.9):
        start = db.memories.get(pid, "notes", "k0")["version"]
        child = _in_child(lite, f"""
            number = 0
            while True:
                for key in range({keys}):
                    db.memories.put({pid!r}, "notes", f"k{{key}}",
                                    {{"note": f"gen{{key}}n{{number + 1}}"}})
                    print(key, number + 1, flush=True)
                number += 1
        """)
        deadline = time.monotonic() + 60
        while (db.memories.get(pid, "notes", "k0")["version"] == start
               and time.monotonic() < deadline):  # until it runs
            time.sleep(0.01)
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate(timeout=120)
        latest = {key: 0 for key in range(keys)}
        for key, number in (map(int, line.split()) for line in out.splitlines() if line):
            latest[key] = max(latest[key], number)
        for key in range(keys):
            value = db.memories.get(pid, "notes", f"k{key}")["value"]["note"]
            current = int(value.rpartition("n")[2])
            assert current >= latest[key]  # nothing answered was lost (one more may commit)
            assert _keys(db, pid, value) == [f"k{key}"]
            assert _keys(db, pid, f"gen{key}n{current - 1}") == []
        _check_index(path)


def test_a_read_only_storage_refuses_a_search_that_would_find_old_text(
    lite_db: Ctxdb, lite: Settings
) -> None:
    pid = lite_db.projects.create("read only")["project_id"]
    lite_db.memories.put(pid, "notes", "k", {"note": "an echidna"})
    lite_db.search.index_status()
    lite_db.memories.put(pid, "notes", "k", {"note": "a platypus"}, expected_version=1)
    storage = connect_storage(lite, read_only=True)
    try:
        reader = Ctxdb(storage, lite)
        for words in ("echidna", "platypus"):
            with pytest.raises(SearchIndexPendingError):
                reader.search.search(pid, words)
        assert _stale(lite.sqlite_path) == 1  # nothing written
        lite_db.search.search(pid, "anything")  # a writable search brings the index current
        assert reader.search.search(pid, "echidna") == []
        assert [hit["key"] for hit in reader.search.search(pid, "platypus")] == ["k"]
    finally:
        storage.close()


def test_a_downgrade_gives_stale_documents_their_terms(lite_db: Ctxdb) -> None:
    """Taking 0028 back deletes the stale documents' old terms from the index while the rows
    still hold them; then every waiting document is given its terms (Migrator._apply_down),
    for the older ctxdb it lets in."""
    db, path = lite_db, lite_db.settings.sqlite_path
    pid = db.projects.create("downgrade")["project_id"]
    db.memories.put(pid, "notes", "stale", {"note": "a wombat"})
    db.memories.put(pid, "notes", "other", {"note": "a wombat too"})
    db.search.index_status()
    db.memories.put(pid, "notes", "stale", {"note": "a pademelon"}, expected_version=1)
    db.memories.put(pid, "notes", "new", {"note": "a fresh pademelon"})
    assert _stale(path) == 1 and waiting_documents(path) == 2
    migrator = Migrator(db.storage)
    assert 28 in [migration.version for migration in migrator.migrations]
    migrator.downgrade(27)
    columns = [row[1] for row in query_beside(path, "PRAGMA table_info(search_documents)")]
    assert "indexed_terms" not in columns
    assert waiting_documents(path) == 0
    assert index_rows(path, "wombat") == 1 and index_rows(path, "pademelon") == 2
    query_beside(path, "INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")
    # At 27 a put clears its terms and the index deletes them at once: still found right.
    db.memories.put(pid, "notes", "other", {"note": "a quokka"}, expected_version=1)
    assert index_rows(path, "wombat") == 0
    assert _keys(db, pid, "quokka") == ["other"] and _keys(db, pid, "wombat") == []
    migrator.upgrade()
    db.memories.put(pid, "notes", "other", {"note": "a dunnart"}, expected_version=2)
    assert _stale(path) == 1
    assert _keys(db, pid, "dunnart") == ["other"] and _keys(db, pid, "quokka") == []
    _check_index(path)
