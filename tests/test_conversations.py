"""Conversation sessions and their event logs on both backends: every operation, and every
refusal changing nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ctxdb.errors import (
    ConflictError,
    ContentTooLargeError,
    IdempotencyConflictError,
    InstanceNotFoundError,
    InvalidContentError,
    InvalidIdentifierError,
    InvalidStatusError,
    InvalidTransitionError,
    ProjectNotFoundError,
    SessionNotFoundError,
    StorageError,
    ValidationError,
)
from ctxdb.service import Ctxdb


@pytest.fixture
def sid(db: Ctxdb, pid: str) -> str:
    return str(db.conversations.create(pid, "shop-bot", "u1")["session_id"])


def audit_actions(db: Ctxdb, pid: str) -> list[str]:
    return [row["action"] for row in reversed(db.audit_log(project_id=pid))
            if row["entity_type"] == "session"]


def snapshot(db: Ctxdb, pid: str) -> Any:
    """Everything a refused operation must leave as it was."""
    sessions = db.conversations.list(pid, limit=1000)
    events = {s["session_id"]: db.conversations.events(s["session_id"], limit=1000)
              for s in sessions}
    return sessions, events, audit_actions(db, pid)


# --- sessions ------------------------------------------------------------------------------


def test_create_and_get_a_session(db: Ctxdb, pid: str) -> None:
    instance = db.instances.launch(pid)
    created = db.conversations.create(pid, "shop-bot", "u1", instance_id=instance["instance_id"],
                                      state={"cart": []}, actor="agent:a")
    assert created["session_id"].startswith("sess_")
    assert (created["project_id"], created["app_name"], created["user_id"]) == (
        pid, "shop-bot", "u1")
    assert created["instance_id"] == instance["instance_id"]
    assert (created["state"], created["status"], created["next_event_seq"]) == (
        {"cart": []}, "open", 0)
    assert created["created_at"].endswith("Z") and created["closed_at"] is None
    assert db.conversations.get(created["session_id"]) == created
    assert db.conversations.get(created["session_id"], project_id=pid) == created
    entry = db.audit_log(entity_id=created["session_id"])[0]
    assert (entry["action"], entry["actor"]) == ("session.create", "agent:a")
    assert entry["details"]["instance_id"] == instance["instance_id"]


def test_list_filters_and_pages(db: Ctxdb, pid: str) -> None:
    a = db.conversations.create(pid, "shop-bot", "u1")
    b = db.conversations.create(pid, "shop-bot", "u2")
    c = db.conversations.create(pid, "help-bot", "u1")
    db.conversations.close(b["session_id"])
    other = db.projects.create("other")["project_id"]
    db.conversations.create(other, "shop-bot", "u1")
    everything = db.conversations.list(pid)
    assert sorted(s["session_id"] for s in everything) == sorted(
        s["session_id"] for s in (a, b, c))
    assert [s["session_id"] for s in everything] == sorted(s["session_id"] for s in everything)
    assert {s["session_id"] for s in db.conversations.list(pid, app_name="shop-bot")} == {
        a["session_id"], b["session_id"]}
    assert {s["session_id"] for s in db.conversations.list(pid, user_id="u1")} == {
        a["session_id"], c["session_id"]}
    assert [s["session_id"] for s in db.conversations.list(pid, status="closed")] == [
        b["session_id"]]
    assert [s["session_id"] for s in db.conversations.list(
        pid, app_name="shop-bot", user_id="u1", status="open")] == [a["session_id"]]
    first = db.conversations.list(pid, limit=2)
    rest = db.conversations.list(pid, after=first[-1]["session_id"], limit=2)
    assert [s["session_id"] for s in first + rest] == [s["session_id"] for s in everything]


def test_update_state_replaces_it(db: Ctxdb, pid: str, sid: str) -> None:
    updated = db.conversations.update_state(sid, {"step": 2, "cart": ["apple"]}, actor="agent:b")
    assert updated["state"] == {"step": 2, "cart": ["apple"]}
    assert updated["updated_at"] >= updated["created_at"]
    assert db.conversations.update_state(sid, {})["state"] == {}
    assert db.conversations.get(sid)["state"] == {}
    assert audit_actions(db, pid) == ["session.create", "session.state", "session.state"]


def test_close_keeps_events_and_refuses_changes(db: Ctxdb, pid: str, sid: str) -> None:
    db.conversations.append(sid, "user", "hello")
    closed = db.conversations.close(sid)
    assert closed["status"] == "closed" and closed["closed_at"] is not None
    before = snapshot(db, pid)
    with pytest.raises(InvalidTransitionError, match="closed"):
        db.conversations.append(sid, "user", "anyone there?")
    with pytest.raises(InvalidTransitionError):
        db.conversations.update_state(sid, {"late": True})
    with pytest.raises(InvalidTransitionError):
        db.conversations.close(sid)
    assert snapshot(db, pid) == before
    assert [e["content"] for e in db.conversations.events(sid)] == ["hello"]
    assert audit_actions(db, pid) == ["session.create", "session.append", "session.close"]


# --- events --------------------------------------------------------------------------------


def test_append_numbers_events_in_order(db: Ctxdb, pid: str, sid: str) -> None:
    messages = [("system", "be brief"), ("user", {"text": "hi"}),
                ("assistant", ["hello", "there"]), ("tool", {"result": 42})]
    appended = [db.conversations.append(sid, role, content, metadata={"n": n}, actor="agent:a")
                for n, (role, content) in enumerate(messages)]
    assert [e["sequence"] for e in appended] == [1, 2, 3, 4]
    events = db.conversations.events(sid)
    assert events == appended
    assert [(e["role"], e["content"], e["metadata"]) for e in events] == [
        (role, content, {"n": n}) for n, (role, content) in enumerate(messages)]
    assert all(e["session_id"] == sid and e["created_at"].endswith("Z") for e in events)
    assert db.conversations.get(sid)["next_event_seq"] == 4
    entries = [r for r in reversed(db.audit_log(entity_id=sid)) if r["action"] == "session.append"]
    assert [(r["details"]["sequence"], r["details"]["role"], r["actor"]) for r in entries] == [
        (n + 1, role, "agent:a") for n, (role, _) in enumerate(messages)]


def test_events_page_by_sequence(db: Ctxdb, sid: str) -> None:
    for n in range(7):
        db.conversations.append(sid, "user", n)
    pages, after = [], 0
    while page := db.conversations.events(sid, after_sequence=after, limit=3):
        pages.append([e["content"] for e in page])
        after = page[-1]["sequence"]
    assert pages == [[0, 1, 2], [3, 4, 5], [6]]
    assert db.conversations.events(sid, after_sequence=99) == []


def test_idempotent_append_returns_the_first_event(db: Ctxdb, pid: str, sid: str) -> None:
    first = db.conversations.append(sid, "user", "once", idempotency_key="msg-1")
    again = db.conversations.append(sid, "user", "once", idempotency_key="msg-1")
    assert again == first and first["idempotency_key"] == "msg-1"
    with pytest.raises(IdempotencyConflictError) as refused:
        db.conversations.append(sid, "assistant", "different", idempotency_key="msg-1")
    assert refused.value.details["fields"] == ["content", "role"]
    other = db.conversations.create(pid, "shop-bot", "u2")["session_id"]
    theirs = db.conversations.append(other, "user", "theirs", idempotency_key="msg-1")
    assert theirs["sequence"] == 1 and theirs["event_id"] != first["event_id"]
    db.conversations.close(sid)
    assert db.conversations.append(sid, "user", "once", idempotency_key="msg-1") == first
    assert [e["content"] for e in db.conversations.events(sid)] == ["once"]
    assert db.conversations.get(sid)["next_event_seq"] == 1
    assert audit_actions(db, pid).count("session.append") == 2


# --- refusals ------------------------------------------------------------------------------


def test_unknown_sessions_and_projects(db: Ctxdb, pid: str, sid: str) -> None:
    before = snapshot(db, pid)
    for attempt in (lambda: db.conversations.get("sess_unknown"),
                    lambda: db.conversations.events("sess_unknown"),
                    lambda: db.conversations.append("sess_unknown", "user", "x"),
                    lambda: db.conversations.update_state("sess_unknown", {}),
                    lambda: db.conversations.close("sess_unknown")):
        with pytest.raises(SessionNotFoundError, match="unknown session"):
            attempt()
    with pytest.raises(ProjectNotFoundError):
        db.conversations.create("proj_unknown", "shop-bot", "u1")
    with pytest.raises(ProjectNotFoundError):
        db.conversations.list("proj_unknown")
    assert snapshot(db, pid) == before


def test_ids_never_reach_across_projects(db: Ctxdb, pid: str, sid: str) -> None:
    other = db.projects.create("other")["project_id"]
    foreign = db.instances.launch(other)["instance_id"]
    before = snapshot(db, pid)
    with pytest.raises(ValidationError, match="belongs to project"):
        db.conversations.create(pid, "shop-bot", "u1", instance_id=foreign)
    with pytest.raises(InstanceNotFoundError):
        db.conversations.create(pid, "shop-bot", "u1", instance_id="inst_unknown")
    for attempt in (lambda: db.conversations.get(sid, project_id=other),
                    lambda: db.conversations.events(sid, project_id=other),
                    lambda: db.conversations.append(sid, "user", "x", project_id=other),
                    lambda: db.conversations.update_state(sid, {"x": 1}, project_id=other),
                    lambda: db.conversations.close(sid, project_id=other)):
        with pytest.raises(SessionNotFoundError, match=f"in project '{other}'"):
            attempt()
    assert snapshot(db, pid) == before
    assert db.conversations.list(other) == []


def test_archived_projects_refuse_new_sessions(db: Ctxdb, pid: str) -> None:
    db.projects.archive(pid)
    with pytest.raises(InvalidTransitionError):
        db.conversations.create(pid, "shop-bot", "u1")
    assert db.conversations.list(pid) == []


def test_archived_projects_refuse_changes_to_their_sessions(
    db: Ctxdb, pid: str, sid: str
) -> None:
    db.conversations.append(sid, "user", "before the archive")
    db.projects.archive(pid)
    before = db.audit_log(pid, limit=1_000)
    for change in (lambda: db.conversations.append(sid, "user", "after"),
                   lambda: db.conversations.update_state(sid, {"step": 2}),
                   lambda: db.conversations.close(sid)):
        with pytest.raises(InvalidTransitionError, match="archived"):
            change()
    assert [e["content"] for e in db.conversations.events(sid)] == ["before the archive"]
    assert db.conversations.get(sid)["status"] == "open"
    assert db.audit_log(pid, limit=1_000) == before


@pytest.mark.parametrize(("arguments", "error"), [
    ({"role": "robot"}, ValidationError),
    ({"role": None}, ValidationError),
    ({"content": {1, 2}}, InvalidContentError),
    ({"content": float("nan")}, InvalidContentError),
    ({"content": "nul \x00 inside"}, InvalidContentError),
    ({"content": "x" * 2_000}, ContentTooLargeError),
    ({"metadata": ["not", "an", "object"]}, ValidationError),
    ({"metadata": {"bad": object()}}, InvalidContentError),
    ({"idempotency_key": "nul\x00key"}, InvalidIdentifierError),
    ({"idempotency_key": " "}, InvalidIdentifierError),
    ({"session_id": "sess\x00x"}, InvalidIdentifierError),
    ({"project_id": "proj\x00x"}, InvalidIdentifierError),
    ({"actor": " "}, InvalidIdentifierError),
])
def test_bad_appends_are_refused_and_change_nothing(
    make_settings: Any, arguments: dict[str, Any], error: type[Exception]
) -> None:
    with Ctxdb.open(make_settings(max_content_bytes=1_000)) as store:
        pid = store.projects.create("bad input")["project_id"]
        sid = store.conversations.create(pid, "shop-bot", "u1")["session_id"]
        before = snapshot(store, pid)
        call: dict[str, Any] = {"session_id": sid, "role": "user", "content": "ok", **arguments}
        with pytest.raises(error):
            store.conversations.append(**call)
        assert snapshot(store, pid) == before


@pytest.mark.parametrize(("arguments", "error"), [
    ({"app_name": ""}, InvalidIdentifierError),
    ({"app_name": "nul\x00"}, InvalidIdentifierError),
    ({"user_id": 7}, InvalidIdentifierError),
    ({"instance_id": "inst\x00x"}, InvalidIdentifierError),
    ({"state": ["not", "an", "object"]}, ValidationError),
    ({"state": {"bad": {1, 2}}}, InvalidContentError),
    ({"state": {"nul": "\x00"}}, InvalidContentError),
    ({"project_id": "proj\x00x"}, InvalidIdentifierError),
])
def test_bad_sessions_are_refused_and_change_nothing(
    db: Ctxdb, pid: str, arguments: dict[str, Any], error: type[Exception]
) -> None:
    call: dict[str, Any] = {"project_id": pid, "app_name": "shop-bot", "user_id": "u1",
                            **arguments}
    with pytest.raises(error):
        db.conversations.create(**call)
    assert snapshot(db, pid) == ([], {}, [])


def test_bad_state_updates_and_reads_are_refused(db: Ctxdb, pid: str, sid: str) -> None:
    db.conversations.append(sid, "user", "hi")
    before = snapshot(db, pid)
    with pytest.raises(ValidationError, match="JSON object"):
        db.conversations.update_state(sid, "a string")  # type: ignore[arg-type]
    with pytest.raises(InvalidContentError):
        db.conversations.update_state(sid, {"x": float("inf")})
    for limit in (0, 1_001, -1, "10", True):
        with pytest.raises(ValidationError):
            db.conversations.events(sid, limit=limit)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            db.conversations.list(pid, limit=limit)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        db.conversations.events(sid, after_sequence=-1)
    with pytest.raises(InvalidStatusError):
        db.conversations.list(pid, status="pending")
    with pytest.raises(InvalidIdentifierError):
        db.conversations.list(pid, app_name="nul\x00")
    assert snapshot(db, pid) == before
    assert len(db.conversations.events(sid, limit=1_000)) == 1


def test_the_database_itself_refuses_bad_events(db: Ctxdb, pid: str, sid: str) -> None:
    """The schema enforces JSON, roles and unique numbers even for a writer bypassing the
    service's checks."""
    db.conversations.append(sid, "user", "hi", idempotency_key="k1")
    rows: list[dict[str, Any]] = [
        {"sequence": 2, "role": "user", "content": "{not json", "idempotency_key": "k2"},
        {"sequence": 2, "role": "robot", "content": "1", "idempotency_key": "k2"},
        {"sequence": 1, "role": "user", "content": "1", "idempotency_key": "k2"},
        {"sequence": 2, "role": "user", "content": "1", "idempotency_key": "k1"},
    ]
    for row in rows:
        def raw_insert(tx: Any, row: dict[str, Any] = row) -> None:
            tx.execute("insert_session_event", session_id=sid, metadata="{}", **row)

        with pytest.raises((ConflictError, StorageError)):
            db.storage.write(raw_insert)
    assert [e["sequence"] for e in db.conversations.events(sid)] == [1]


def test_concurrent_appends_get_gapless_numbers(settings: Any, pid: str, sid: str) -> None:
    """Writers on their own connections append at once; each number is drawn exactly once."""
    def writer(name: str) -> list[int]:
        with Ctxdb.open(settings) as store:
            return [store.conversations.append(sid, "user", f"{name}-{n}",
                                               idempotency_key=f"{name}-{n}")["sequence"]
                    for n in range(10)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        drawn = [seq for result in pool.map(writer, ["a", "b", "c", "d"]) for seq in result]
    assert sorted(drawn) == list(range(1, 41))
    with Ctxdb.open(settings) as store:
        events = store.conversations.events(sid, limit=1000)
    assert [e["sequence"] for e in events] == list(range(1, 41))
    for name in "abcd":  # each writer's own events keep its order
        mine = [e["content"] for e in events if e["content"].startswith(name)]
        assert mine == [f"{name}-{n}" for n in range(10)]
