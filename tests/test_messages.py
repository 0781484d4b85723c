"""MessageService on both backends: addressing (instance, role, broadcast), per-consumer
delivery with a visibility timeout, acknowledgement, refusals, audit rows and promotion."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from ctxdb.errors import (
    CtxdbError,
    IdempotencyConflictError,
    InstanceNotFoundError,
    InvalidContentError,
    InvalidIdentifierError,
    InvalidPriorityError,
    MemoryNotFoundError,
    MessageNotFoundError,
    ProjectNotFoundError,
    ValidationError,
)
from ctxdb.service import Ctxdb

SHORT = 0.2  # seconds: a visibility timeout the tests let run out
LONG = 60.0


@pytest.fixture
def fleet(db: Ctxdb, pid: str) -> dict[str, str]:
    """Three instances: two reviewers and a coder."""
    for name, role in (("rev-1", "reviewer"), ("rev-2", "reviewer"), ("coder", "coder")):
        db.instances.launch(pid, instance_id=name, metadata={"role": role})
    return {"rev1": "rev-1", "rev2": "rev-2", "coder": "coder"}


def ids(messages: list[dict[str, Any]]) -> list[int]:
    return [m["message_id"] for m in messages]


def actions(db: Ctxdb, message_id: int) -> list[str]:
    return [row["action"] for row in reversed(db.audit_log(entity_id=str(message_id)))]


def test_send_and_get(db: Ctxdb, pid: str, fleet: dict[str, str]) -> None:
    sent = db.messages.send(pid, "instance", "coder", {"fix": ["a.py", 3]}, subject="bug",
                            sender="rev-1")
    assert (sent["recipient_kind"], sent["recipient"], sent["sender"]) == (
        "instance", "coder", "rev-1")
    assert (sent["subject"], sent["body"]) == ("bug", {"fix": ["a.py", 3]})
    stored = db.messages.get(sent["message_id"], project_id=pid)
    assert stored == {k: v for k, v in sent.items() if k != "live_recipients"}
    assert sent["live_recipients"] == 1
    default_sender = db.messages.send(pid, "broadcast", None, "hello")
    assert default_sender["sender"] == "user:test"


def test_direct_role_and_broadcast_addressing(db: Ctxdb, pid: str,
                                              fleet: dict[str, str]) -> None:
    direct = db.messages.send(pid, "instance", "rev-2", 1, sender="coder")["message_id"]
    to_reviewers = db.messages.send(pid, "role", "reviewer", 2, sender="coder")["message_id"]
    to_all = db.messages.send(pid, "broadcast", None, 3, sender="coder")["message_id"]
    to_nobody = db.messages.send(pid, "role", "tester", 4, sender="coder")["message_id"]
    assert ids(db.messages.inbox("rev-1", LONG)) == [to_reviewers, to_all]
    assert ids(db.messages.inbox("rev-2", LONG)) == [direct, to_reviewers, to_all]
    # A sender does not receive its own role or broadcast messages.
    assert db.messages.inbox("coder", LONG) == []
    assert to_nobody not in ids(db.messages.inbox("rev-1", LONG))


def test_an_instance_without_a_role_gets_direct_and_broadcast_only(db: Ctxdb, pid: str) -> None:
    db.instances.launch(pid, instance_id="plain")
    db.messages.send(pid, "role", "reviewer", "r")
    everyone = db.messages.send(pid, "broadcast", None, "b")["message_id"]
    assert ids(db.messages.inbox("plain", LONG)) == [everyone]


def test_two_consumers_redelivery_after_the_timeout_and_ack(db: Ctxdb, pid: str,
                                                            fleet: dict[str, str]) -> None:
    first = db.messages.send(pid, "broadcast", None, "one", sender="coder")["message_id"]
    second = db.messages.send(pid, "broadcast", None, "two", sender="coder")["message_id"]
    # Each consumer gets each broadcast once per visibility window.
    got1 = db.messages.inbox("rev-1", SHORT)
    got2 = db.messages.inbox("rev-2", SHORT)
    assert ids(got1) == ids(got2) == [first, second]
    assert {m["delivered_count"] for m in got1 + got2} == {1}
    assert db.messages.inbox("rev-1", SHORT) == []
    assert db.messages.inbox("rev-2", SHORT) == []
    # rev-1 acknowledges the first; rev-2 acknowledges nothing.
    db.messages.ack(first, "rev-1")
    time.sleep(SHORT + 0.1)
    again1 = db.messages.inbox("rev-1", SHORT)
    again2 = db.messages.inbox("rev-2", SHORT)
    assert ids(again1) == [second]
    assert ids(again2) == [first, second]
    assert {m["delivered_count"] for m in again1 + again2} == {2}
    db.messages.ack(second, "rev-1")
    db.messages.ack(first, "rev-2")
    db.messages.ack(second, "rev-2")
    time.sleep(SHORT + 0.1)
    # Acknowledged messages are never delivered again.
    assert db.messages.inbox("rev-1", SHORT) == []
    assert db.messages.inbox("rev-2", SHORT) == []


def test_inbox_limit_takes_the_oldest_and_leaves_the_rest_visible(
        db: Ctxdb, pid: str, fleet: dict[str, str]) -> None:
    sent = [db.messages.send(pid, "instance", "coder", n)["message_id"] for n in range(3)]
    assert ids(db.messages.inbox("coder", LONG, limit=2)) == sent[:2]
    assert ids(db.messages.inbox("coder", LONG, limit=2)) == sent[2:]
    assert db.messages.inbox("coder", LONG) == []


def test_ack_is_idempotent_and_works_before_delivery(db: Ctxdb, pid: str,
                                                     fleet: dict[str, str]) -> None:
    message_id = db.messages.send(pid, "role", "reviewer", "x")["message_id"]
    first = db.messages.ack(message_id, "rev-1")
    assert (first["delivered_count"], first["instance_id"]) == (0, "rev-1")
    assert first["acked_at"] is not None
    assert db.messages.ack(message_id, "rev-1") == first
    assert ids(db.messages.inbox("rev-1", LONG)) == []
    assert ids(db.messages.inbox("rev-2", LONG)) == [message_id]


def test_audit_rows(db: Ctxdb, pid: str, fleet: dict[str, str]) -> None:
    message_id = db.messages.send(pid, "instance", "coder", "x", sender="rev-1")["message_id"]
    db.messages.inbox("coder", SHORT)
    time.sleep(SHORT + 0.1)
    db.messages.inbox("coder", SHORT)
    db.messages.ack(message_id, "coder")
    db.messages.ack(message_id, "coder")
    assert actions(db, message_id) == ["message.send", "message.deliver", "message.deliver",
                                       "message.ack"]
    newest = db.audit_log(entity_id=str(message_id), limit=2)
    assert newest[0]["actor"] == "coder"
    assert newest[1]["details"]["delivered_count"] == 2
    db.messages.promote(message_id, "context")
    assert actions(db, message_id)[-1] == "message.promote"


def test_unknown_ids(db: Ctxdb, pid: str, fleet: dict[str, str]) -> None:
    with pytest.raises(MessageNotFoundError):
        db.messages.get(999)
    with pytest.raises(MessageNotFoundError):
        db.messages.ack(999, "coder")
    with pytest.raises(MessageNotFoundError):
        db.messages.promote(999, "context")
    with pytest.raises(InstanceNotFoundError):
        db.messages.send(pid, "instance", "ghost", "x")
    with pytest.raises(InstanceNotFoundError):
        db.messages.inbox("ghost")
    with pytest.raises(ProjectNotFoundError):
        db.messages.send("no-such-project", "broadcast", None, "x")
    message_id = db.messages.send(pid, "broadcast", None, "x")["message_id"]
    with pytest.raises(InstanceNotFoundError):
        db.messages.ack(message_id, "ghost")
    with pytest.raises(MessageNotFoundError):
        db.messages.get(message_id, project_id="other-project")


def test_cross_project_recipients_are_refused(db: Ctxdb, pid: str,
                                              fleet: dict[str, str]) -> None:
    other = db.projects.create("Other", "", 100)["project_id"]
    db.instances.launch(other, instance_id="stranger", metadata={"role": "reviewer"})
    with pytest.raises(ValidationError, match="belongs to project"):
        db.messages.send(pid, "instance", "stranger", "x")
    message_id = db.messages.send(pid, "role", "reviewer", "x")["message_id"]
    assert db.messages.inbox("stranger", LONG) == []
    with pytest.raises(ValidationError, match="belongs to project"):
        db.messages.ack(message_id, "stranger")
    direct = db.messages.send(pid, "instance", "rev-1", "x")["message_id"]
    with pytest.raises(ValidationError, match="not addressed"):
        db.messages.ack(direct, "rev-2")
    assert actions(db, message_id) == ["message.send"]


def test_bad_input_changes_nothing(db: Ctxdb, pid: str, fleet: dict[str, str]) -> None:
    with pytest.raises(InvalidContentError):
        db.messages.send(pid, "broadcast", None, {"x": float("nan")})
    with pytest.raises(InvalidContentError):
        db.messages.send(pid, "broadcast", None, {1, 2})
    with pytest.raises(InvalidIdentifierError):
        db.messages.send(pid, "instance", "co\x00der", "x")
    with pytest.raises(InvalidIdentifierError):
        db.messages.send(pid, "broadcast", None, "x", sender="a\x00b")
    with pytest.raises(InvalidIdentifierError):
        db.messages.inbox("co\x00der")
    with pytest.raises(InvalidIdentifierError):
        db.messages.ack(1, "co\x00der")
    with pytest.raises(ValidationError, match="recipient_kind"):
        db.messages.send(pid, "everyone", None, "x")
    with pytest.raises(ValidationError, match="no recipient"):
        db.messages.send(pid, "broadcast", "coder", "x")
    with pytest.raises(InvalidIdentifierError):
        db.messages.send(pid, "role", None, "x")
    with pytest.raises(ValidationError, match="subject"):
        db.messages.send(pid, "broadcast", None, "x", subject="a\x00")
    for seconds in (0, -1, float("inf"), "5", True):
        with pytest.raises(ValidationError, match="visibility_seconds"):
            db.messages.inbox("coder", seconds)
    with pytest.raises(ValidationError, match="limit"):
        db.messages.inbox("coder", LONG, limit=0)
    with pytest.raises(ValidationError, match="message_id"):
        db.messages.get(0)
    with pytest.raises(ValidationError, match="promoted"):
        db.messages.promote(1, "disk")
    assert [r for r in db.audit_log(pid) if r["action"].startswith("message.")] == []
    assert db.messages.inbox("coder", LONG) == []


def test_promote_to_memory(db: Ctxdb, pid: str, fleet: dict[str, str]) -> None:
    message_id = db.messages.send(pid, "broadcast", None, {"style": "black"},
                                  sender="coder")["message_id"]
    memory = db.messages.promote(message_id, "memory", namespace="team:conventions",
                                 key="format")
    assert (memory["value"], memory["version"]) == ({"style": "black"}, 1)
    assert db.memories.get(pid, "team:conventions", "format")["value"] == {"style": "black"}
    promoted = db.audit_log(entity_id=str(message_id), limit=1)[0]
    assert promoted["action"] == "message.promote"
    assert promoted["details"]["to"] == "memory"
    with pytest.raises(InvalidIdentifierError):
        db.messages.promote(message_id, "memory", namespace="bad space", key="k")
    with pytest.raises(InvalidIdentifierError):
        db.messages.promote(message_id, "memory", namespace="team", key=None)  # type: ignore[arg-type]


def test_promote_to_context_is_idempotent(db: Ctxdb, pid: str, fleet: dict[str, str]) -> None:
    message_id = db.messages.send(pid, "instance", "coder", ["step 1", "step 2"],
                                  subject="plan", sender="rev-1")["message_id"]
    item = db.messages.promote(message_id, "context", priority="CRITICAL")
    assert (item["priority"], item["content_type"], item["created_by"]) == (
        "CRITICAL", "message", "rev-1")
    stored = db.context.get(item["item_id"])
    assert stored["content"] == {"subject": "plan", "body": ["step 1", "step 2"]}
    assert stored["metadata"] == {"message_id": message_id, "sender": "rev-1"}
    again = db.messages.promote(message_id, "context", priority="CRITICAL")
    assert again == item
    assert db.context.counts(pid)["CRITICAL"]["items"] == 1  # one item, not two
    audit_before = db.audit_log()
    with pytest.raises(IdempotencyConflictError) as refused:  # kept once, with one priority
        db.messages.promote(message_id, "context", priority="LOW")
    assert refused.value.details["fields"] == ["priority"]
    assert db.audit_log() == audit_before
    from_an_actor = db.messages.send(pid, "broadcast", None, "note")["message_id"]
    kept = db.context.get(db.messages.promote(from_an_actor, "context")["item_id"])
    assert (kept["created_by"], kept["metadata"]["sender"]) == (None, "user:test")
    with pytest.raises(InvalidPriorityError):
        db.messages.promote(message_id, "context", priority="URGENT")


@pytest.mark.parametrize("to", ["memory", "context"])
def test_a_promotion_is_one_transaction(db: Ctxdb, pid: str, fleet: dict[str, str],
                                        settings: Any, to: str) -> None:
    """When the promotion's own audit row cannot be written, the memory or item it wrote is
    rolled back with it: nothing of a failed promotion remains."""
    message_id = db.messages.send(pid, "broadcast", None, {"keep": "me"},
                                  sender="coder")["message_id"]
    before = len(db.audit_log(pid, limit=1000))
    with refused_audit(settings, "message.promote"), \
            pytest.raises(CtxdbError, match="no promotions today"):
        db.messages.promote(message_id, to, namespace="team", key="kept")
    with pytest.raises(MemoryNotFoundError):
        db.memories.get(pid, "team", "kept")
    assert db.context.counts(pid)["HIGH"]["items"] == 0
    assert len(db.audit_log(pid, limit=1000)) == before
    assert db.messages.promote(message_id, to, namespace="team", key="kept")  # works again


@contextmanager
def refused_audit(settings: Any, action: str) -> Iterator[None]:
    """A trigger that refuses audit rows of ``action`` (dropped afterwards: PostgreSQL's
    database is shared by the tests)."""
    if settings.is_postgres:
        import psycopg

        with psycopg.connect(settings.url, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION refuse_promotions() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN RAISE EXCEPTION 'no promotions today'; END $$")
            conn.execute(
                f"CREATE TRIGGER refuse_promotions BEFORE INSERT ON audit_log FOR EACH ROW "
                f"WHEN (NEW.action = '{action}') EXECUTE FUNCTION refuse_promotions()")
        try:
            yield
        finally:
            with psycopg.connect(settings.url, autocommit=True) as conn:
                conn.execute("DROP TRIGGER refuse_promotions ON audit_log")
                conn.execute("DROP FUNCTION refuse_promotions()")
        return
    conn = sqlite3.connect(settings.sqlite_path)
    try:
        conn.execute(f"CREATE TRIGGER refuse_promotions BEFORE INSERT ON audit_log "
                     f"WHEN new.action = '{action}' "
                     f"BEGIN SELECT RAISE(ABORT, 'no promotions today'); END")
        conn.commit()
        yield
    finally:
        conn.execute("DROP TRIGGER IF EXISTS refuse_promotions")
        conn.commit()
        conn.close()


def test_list_pages_a_projects_messages_newest_first_without_delivering(
        db: Ctxdb, pid: str, fleet: dict[str, str]) -> None:
    other = db.projects.create("other")["project_id"]
    db.messages.send(other, "broadcast", None, "not ours")
    sent = [db.messages.send(pid, "broadcast", None, {"n": n})["message_id"] for n in range(5)]
    db.messages.ack(sent[0], "coder")
    first = db.messages.list(pid, limit=3)
    assert ids(first) == sent[:1:-1]
    rest = db.messages.list(pid, before=first[-1]["message_id"], limit=3)
    assert ids(rest) == [sent[1], sent[0]]
    assert rest[-1]["acked"] == 1 and first[0]["acked"] == 0
    assert rest[-1]["body"] == {"n": 0}
    assert ids(db.messages.inbox("rev-1", limit=10)) == sent  # listing delivered nothing
    with pytest.raises(ProjectNotFoundError):
        db.messages.list("proj_nope")
    with pytest.raises(ValidationError):
        db.messages.list(pid, before=-1)
