"""Versioned memories on both backends: every operation, and every refusal changing nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ctxdb.errors import (
    ConflictError,
    ContentTooLargeError,
    InvalidContentError,
    InvalidIdentifierError,
    InvalidTransitionError,
    MemoryNotFoundError,
    ProjectNotFoundError,
    StorageError,
    ValidationError,
    VersionConflictError,
)
from ctxdb.service import Ctxdb
from ctxdb.service.usecases.memories import MUST_NOT_EXIST

NS = "user:prefs"


def audit_actions(db: Ctxdb, pid: str) -> list[str]:
    return [row["action"] for row in reversed(db.audit_log(project_id=pid))
            if row["entity_type"] == "memory"]


def test_put_creates_version_one_and_get_returns_it(db: Ctxdb, pid: str) -> None:
    created = db.memories.put(pid, NS, "theme", {"dark": True}, expected_version=MUST_NOT_EXIST,
                              actor="agent:a")
    assert created["version"] == 1 and created["value"] == {"dark": True}
    assert created["memory_type"] == "semantic" and created["expires_at"] is None
    assert created["created_by"] == created["updated_by"] == "agent:a"
    assert db.memories.get(pid, NS, "theme") == created
    assert audit_actions(db, pid) == ["memory.put"]
    entry = db.audit_log(entity_id=created["memory_id"])[0]
    assert entry["actor"] == "agent:a" and entry["details"]["version"] == 1


def test_compare_and_set_updates_and_keeps_every_version(db: Ctxdb, pid: str) -> None:
    db.memories.put(pid, NS, "k", 1, actor="agent:a")
    second = db.memories.put(pid, NS, "k", 2, expected_version=1, actor="agent:b")
    third = db.memories.put(pid, NS, "k", [3], actor="agent:c")  # unconditional
    assert (second["version"], third["version"]) == (2, 3)
    assert third["created_by"] == "agent:a" and third["updated_by"] == "agent:c"
    assert [(v["version"], v["op"], v["value"], v["written_by"])
            for v in db.memories.history(pid, NS, "k")] == [
        (1, "put", 1, "agent:a"), (2, "put", 2, "agent:b"), (3, "put", [3], "agent:c")]
    assert db.memories.get(pid, NS, "k", version=2)["value"] == 2
    assert db.memories.get(pid, NS, "k")["value"] == [3]
    # The audit rows of puts over a live memory (one statement on PostgreSQL, three on
    # SQLite) say the same on both backends.
    assert [(e["actor"], e["details"]) for e in db.audit_log(entity_id=second["memory_id"])
            if e["details"]["version"] > 1] == [
        ("agent:c", {"namespace": NS, "key": "k", "version": 3, "expected_version": None,
                     "memory_type": "semantic"}),
        ("agent:b", {"namespace": NS, "key": "k", "version": 2, "expected_version": 1,
                     "memory_type": "semantic"})]


def test_stale_writer_gets_the_current_version_and_changes_nothing(db: Ctxdb, pid: str) -> None:
    db.memories.put(pid, NS, "k", "a")
    db.memories.put(pid, NS, "k", "b", expected_version=1)
    with pytest.raises(VersionConflictError) as caught:
        db.memories.put(pid, NS, "k", "stale", expected_version=1)
    assert caught.value.details["current_version"] == 2
    assert caught.value.details["expected_version"] == 1
    assert caught.value.category == "conflict"
    with pytest.raises(VersionConflictError) as exists:
        db.memories.put(pid, NS, "k", "again", expected_version=MUST_NOT_EXIST)
    assert exists.value.details["current_version"] == 2
    with pytest.raises(VersionConflictError) as ahead:
        db.memories.put(pid, NS, "new-key", "x", expected_version=3)
    assert ahead.value.details["current_version"] is None
    assert db.memories.get(pid, NS, "k")["value"] == "b"
    assert len(db.memories.history(pid, NS, "k")) == 2
    assert audit_actions(db, pid) == ["memory.put", "memory.put"]


def test_delete_is_a_tombstone_version_and_put_revives(db: Ctxdb, pid: str) -> None:
    db.memories.put(pid, NS, "k", "v")
    with pytest.raises(VersionConflictError):
        db.memories.delete(pid, NS, "k", expected_version=7)
    deleted = db.memories.delete(pid, NS, "k", expected_version=1)
    assert deleted["version"] == 2 and deleted["deleted_at"] is not None
    with pytest.raises(MemoryNotFoundError):
        db.memories.get(pid, NS, "k")
    with pytest.raises(MemoryNotFoundError):
        db.memories.delete(pid, NS, "k")
    assert db.memories.list(pid) == []
    assert [m["key"] for m in db.memories.list(pid, include_deleted=True)] == ["k"]
    assert db.memories.get(pid, NS, "k", version=1)["value"] == "v"
    assert [(v["op"], v["value"]) for v in db.memories.history(pid, NS, "k")] == [
        ("put", "v"), ("delete", None)]
    with pytest.raises(VersionConflictError) as caught:
        db.memories.put(pid, NS, "k", "w", expected_version=2)  # a tombstone is not live
    assert caught.value.details["current_version"] is None
    revived = db.memories.put(pid, NS, "k", "w", expected_version=MUST_NOT_EXIST)
    assert revived["version"] == 3 and revived["deleted_at"] is None
    assert audit_actions(db, pid) == ["memory.put", "memory.delete", "memory.put"]


def test_purge_really_erases_and_is_audited(db: Ctxdb, pid: str) -> None:
    first = db.memories.put(pid, NS, "k", {"secret": "s"})
    db.memories.put(pid, NS, "k", {"secret": "t"})
    db.memories.delete(pid, NS, "k")
    result = db.memories.purge(pid, NS, "k", actor="user:admin")
    assert result == {"memory_id": first["memory_id"], "namespace": NS, "key": "k",
                      "purged_versions": 3}
    for read in (lambda: db.memories.get(pid, NS, "k", version=1),
                 lambda: db.memories.history(pid, NS, "k"),
                 lambda: db.memories.purge(pid, NS, "k")):
        with pytest.raises(MemoryNotFoundError):
            read()
    assert db.memories.list(pid, include_deleted=True, include_expired=True) == []
    entry = db.audit_log(entity_id=first["memory_id"])[0]
    assert entry["action"] == "memory.purge" and entry["actor"] == "user:admin"
    assert entry["details"]["versions"] == 3
    fresh = db.memories.put(pid, NS, "k", 1, expected_version=MUST_NOT_EXIST)
    assert fresh["version"] == 1 and fresh["memory_id"] != first["memory_id"]


def test_list_by_namespace_prefix_in_pages(db: Ctxdb, pid: str) -> None:
    for namespace, key in [("user", "a"), ("user:prefs", "b"), ("user:prefs", "c"),
                           ("username", "d"), ("app:config:x", "e")]:
        db.memories.put(pid, namespace, key, key)
    keys = [m["key"] for m in db.memories.list(pid, "user")]
    assert keys == ["a", "b", "c"]  # not "username"
    assert [m["key"] for m in db.memories.list(pid, "user:prefs")] == ["b", "c"]
    assert [m["key"] for m in db.memories.list(pid, "app")] == ["e"]
    assert len(db.memories.list(pid)) == 5
    first = db.memories.list(pid, limit=2)
    last = first[-1]
    rest = db.memories.list(pid, limit=10, after=(last["namespace"], last["key"]))
    assert [m["key"] for m in first + rest] == [m["key"] for m in db.memories.list(pid)]
    assert len(rest) == 3


def test_expired_memories_are_invisible_and_swept(
    make_settings: Any, pid: str, db: Ctxdb
) -> None:
    db.memories.put(pid, "session:1", "short", "gone soon", ttl_seconds=1)
    db.memories.put(pid, "session:1", "kept", "stays")
    assert db.memories.get(pid, "session:1", "short")["expires_at"] is not None
    time.sleep(1.2)
    for read in (lambda: db.memories.get(pid, "session:1", "short"),
                 lambda: db.memories.get(pid, "session:1", "short", version=1),
                 lambda: db.memories.history(pid, "session:1", "short"),
                 lambda: db.memories.delete(pid, "session:1", "short")):
        with pytest.raises(MemoryNotFoundError):
            read()
    assert [m["key"] for m in db.memories.list(pid)] == ["kept"]
    assert [m["key"] for m in db.memories.list(pid, include_expired=True)] == ["kept", "short"]
    assert db.memories.sweep_expired(pid) == 1
    assert db.memories.sweep_expired() == 0
    assert [m["key"] for m in db.memories.list(pid, include_expired=True)] == ["kept"]
    assert "memory.expire" in audit_actions(db, pid)


def test_a_put_over_an_expired_memory_starts_afresh(db: Ctxdb, pid: str) -> None:
    old = db.memories.put(pid, NS, "k", "old", ttl_seconds=1)
    time.sleep(1.2)
    with pytest.raises(VersionConflictError) as caught:
        db.memories.put(pid, NS, "k", "new", expected_version=1)
    assert caught.value.details["current_version"] is None
    new = db.memories.put(pid, NS, "k", "new", expected_version=MUST_NOT_EXIST)
    assert new["version"] == 1 and new["memory_id"] != old["memory_id"]
    assert len(db.memories.history(pid, NS, "k")) == 1


def test_lifecycle_policy_per_type_from_settings(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(memory_ttl_procedural=3600)) as store:
        pid = store.projects.create("policies")["project_id"]
        episodic = store.memories.put(pid, "log", "e", 1, memory_type="episodic")
        procedural = store.memories.put(pid, "how", "p", 1, memory_type="procedural")
        semantic = store.memories.put(pid, "facts", "s", 1)
        explicit = store.memories.put(pid, "log", "x", 1, memory_type="episodic",
                                      ttl_seconds=60)
        assert semantic["expires_at"] is None
        # Timestamps are ISO text on both backends: order says which expires first.
        assert explicit["expires_at"] < procedural["expires_at"] < episodic["expires_at"]
        assert episodic["expires_at"][:4] >= episodic["created_at"][:4]
        updated = store.memories.put(pid, "log", "e", 2)
        assert updated["memory_type"] == "episodic"  # the type is kept by default


@pytest.mark.parametrize(("field", "value", "error"), [
    ("namespace", "user::prefs", InvalidIdentifierError),
    ("namespace", "user prefs", InvalidIdentifierError),
    ("namespace", ":user", InvalidIdentifierError),
    ("namespace", "user\x00", InvalidIdentifierError),
    ("key", "", InvalidIdentifierError),
    ("key", "a\x00b", InvalidIdentifierError),
    ("value", {"bad": float("nan")}, InvalidContentError),
    ("value", {1, 2}, InvalidContentError),
    ("value", "nul \x00 inside", InvalidContentError),
    ("value", "x" * 2_000, ContentTooLargeError),
    ("memory_type", "dream", ValidationError),
    ("expected_version", -1, ValidationError),
    ("expected_version", "1", ValidationError),
    ("ttl_seconds", 0, ValidationError),
    ("ttl_seconds", 1.5, ValidationError),
    ("actor", " ", InvalidIdentifierError),
])
def test_bad_input_is_refused_and_changes_nothing(
    make_settings: Any, field: str, value: Any, error: type[Exception]
) -> None:
    with Ctxdb.open(make_settings(max_content_bytes=1_000)) as store:
        pid = store.projects.create("bad input")["project_id"]
        arguments: dict[str, Any] = {"namespace": NS, "key": "k", "value": 1, field: value}
        with pytest.raises(error):
            store.memories.put(pid, **arguments)
        assert store.memories.list(pid, include_deleted=True, include_expired=True) == []
        assert audit_actions(store, pid) == []


def test_unknown_project_memory_and_version(db: Ctxdb, pid: str) -> None:
    with pytest.raises(ProjectNotFoundError):
        db.memories.put("proj_unknown", NS, "k", 1)
    with pytest.raises(ProjectNotFoundError):
        db.memories.list("proj_unknown")
    with pytest.raises(MemoryNotFoundError):
        db.memories.get(pid, NS, "missing")
    db.memories.put(pid, NS, "k", 1)
    with pytest.raises(MemoryNotFoundError, match="no version 9"):
        db.memories.get(pid, NS, "k", version=9)
    with pytest.raises(ValidationError):
        db.memories.list(pid, limit=0)
    with pytest.raises(InvalidIdentifierError):
        db.memories.list(pid, "not a path")


def test_memories_never_cross_projects(db: Ctxdb, pid: str) -> None:
    other = db.projects.create("other")["project_id"]
    db.memories.put(pid, NS, "k", "mine")
    for attempt in (lambda: db.memories.get(other, NS, "k"),
                    lambda: db.memories.history(other, NS, "k"),
                    lambda: db.memories.delete(other, NS, "k"),
                    lambda: db.memories.purge(other, NS, "k")):
        with pytest.raises(MemoryNotFoundError):
            attempt()
    with pytest.raises(VersionConflictError):
        db.memories.put(other, NS, "k", "theirs", expected_version=1)
    theirs = db.memories.put(other, NS, "k", "theirs", expected_version=MUST_NOT_EXIST)
    assert theirs["version"] == 1
    assert db.memories.get(pid, NS, "k")["value"] == "mine"
    assert db.memories.list(other) == [theirs]


def test_archived_projects_refuse_writes(db: Ctxdb, pid: str) -> None:
    db.memories.put(pid, NS, "k", 1)
    db.projects.archive(pid)
    with pytest.raises(InvalidTransitionError):
        db.memories.put(pid, NS, "k", 2)
    assert db.memories.get(pid, NS, "k")["value"] == 1


def test_the_database_itself_refuses_invalid_json(db: Ctxdb, pid: str) -> None:
    """The schema enforces JSON even for a writer that bypasses the service's checks."""
    db.memories.put(pid, NS, "k", 1)

    def raw_insert(tx: Any) -> None:
        tx.execute("insert_memory", memory_id="mem_raw", project_id=pid, namespace=NS,
                   key="raw", memory_type="semantic", value="{not json", actor="user:x",
                   ttl_seconds=None)

    with pytest.raises((ConflictError, StorageError)):
        db.storage.write(raw_insert)
    assert [m["key"] for m in db.memories.list(pid)] == ["k"]
