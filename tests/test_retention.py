"""``db.retention`` (``ctxdb gc``) on both backends, with the default policy.

Records are made old by setting their timestamps into the past with the database driver (the
service never lets a caller choose them); everything else goes through the services.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import pytest

from ctxdb.errors import (
    ConfigError,
    ConflictError,
    ContextItemNotFoundError,
    ValidationError,
)
from ctxdb.service import Ctxdb
from ctxdb.service.operations.retention import INSTANCE_REFERENCES
from ctxdb.settings import Settings
from test_backup import content_of
from test_foreign_key_indexes import postgres_schema, sqlite_schema

LONG_AGO = "2020-01-02T03:04:05.678Z"


def backdate(settings: Settings, table: str, column: str, key: str, value: Any) -> None:
    sql = f"UPDATE {table} SET {column} = '{LONG_AGO}' WHERE {key} = "
    if settings.is_postgres:
        import psycopg

        with psycopg.connect(settings.url, autocommit=True) as pg:
            pg.execute((sql + "%s").encode(), (value,))
        return
    with sqlite3.connect(settings.sqlite_path) as conn:
        conn.execute(sql + "?", (value,))
    conn.close()


@dataclass
class Scenario:
    """One project with old and new records of every kind gc looks at."""

    pid: str
    other: str
    new_item: int = 0
    goes: dict[str, set[Any]] = field(default_factory=dict)
    stays: dict[str, set[Any]] = field(default_factory=dict)


def old_item(db: Ctxdb, settings: Settings, pid: str, priority: str, **extra: Any) -> int:
    item_id = int(db.context.store(pid, {"old": priority, **extra}, priority=priority)["item_id"])
    backdate(settings, "context_items", "created_at", "item_id", item_id)
    return item_id


def ended_instance(db: Ctxdb, settings: Settings, pid: str, status: str, old: bool) -> str:
    instance_id = str(db.instances.launch(pid, client="codex")["instance_id"])
    db.instances.set_status(instance_id, status)
    if old:
        backdate(settings, "instances", "ended_at", "instance_id", instance_id)
    return instance_id


def build(db: Ctxdb, settings: Settings) -> Scenario:
    pid = db.projects.create("Old and new")["project_id"]
    other = db.projects.create("Another project")["project_id"]
    s = Scenario(pid, other)
    # memories: expired ones go, the rest stays
    db.memories.put(pid, "notes", "stale", 1, ttl_seconds=1)
    backdate(settings, "memories", "expires_at", "key", "stale")
    db.memories.put(pid, "notes", "kept", 2)
    s.goes["memories"], s.stays["memories"] = {"stale"}, {"kept"}
    # instances: ended long ago go, unless they still hold a task lease
    gone = {ended_instance(db, settings, pid, status, True) for status in ("completed",
                                                                           "crashed")}
    holder = str(db.instances.launch(pid, client="codex")["instance_id"])
    db.tasks.create(pid, "leased")
    assert db.tasks.claim(pid, holder, lease_seconds=3600) is not None
    db.instances.set_status(holder, "crashed")
    backdate(settings, "instances", "ended_at", "instance_id", holder)
    recent = ended_instance(db, settings, pid, "completed", False)
    active = str(db.instances.launch(pid, client="codex")["instance_id"])
    backdate(settings, "instances", "last_heartbeat", "instance_id", active)
    db.context.store(pid, {"by": "a gone instance"}, created_by=next(iter(gone)))
    s.goes["instances"], s.stays["instances"] = gone, {holder, recent, active}
    # session events: those of sessions closed long ago go; open sessions keep theirs
    sessions = {}
    for name in ("closed-old", "open-old", "closed-new"):
        session = db.conversations.create(pid, "chat", name)
        sessions[name] = session["session_id"]
        for text in ("hello", "bye"):
            db.conversations.append(session["session_id"], "user", {"text": text})
    for name in ("closed-old", "closed-new"):
        db.conversations.close(sessions[name])
    backdate(settings, "sessions", "closed_at", "session_id", sessions["closed-old"])
    backdate(settings, "session_events", "created_at", "session_id", sessions["open-old"])
    s.goes["sessions"] = {sessions["closed-old"]}
    s.stays["sessions"] = {sessions["open-old"], sessions["closed-new"]}
    # context items: old MEDIUM and LOW are archived; CRITICAL, HIGH and new ones stay
    low, medium = old_item(db, settings, pid, "LOW"), old_item(db, settings, pid, "MEDIUM")
    kept = {old_item(db, settings, pid, p) for p in ("CRITICAL", "HIGH")}
    s.new_item = int(db.context.store(pid, {"new": True}, priority="LOW")["item_id"])
    kept.add(s.new_item)
    # an old CRITICAL item superseded by an old LOW one: the LOW one is pointed at, so stays
    first = old_item(db, settings, pid, "CRITICAL", chain=True)
    successor = int(db.context.supersede(first, {"now": "low"}, priority="LOW")["item_id"])
    backdate(settings, "context_items", "created_at", "item_id", successor)
    kept |= {first, successor}
    other_low = old_item(db, settings, other, "LOW")
    s.goes["items"], s.stays["items"] = {low, medium, other_low}, kept
    return s


@pytest.fixture
def scenario(db: Ctxdb, settings: Settings) -> Scenario:
    return build(db, settings)


def all_item_ids(db: Ctxdb, *project_ids: str) -> set[int]:
    ids = set()
    for pid in project_ids:
        ids |= {int(i["item_id"]) for tier in db.context.full(pid).values() for i in tier}
    return ids


def test_a_dry_run_counts_and_changes_nothing(
        db: Ctxdb, settings: Settings, scenario: Scenario) -> None:
    before = content_of(settings)
    unsealed = db.audit_chain.unsealed()
    report = db.retention.collect(dry_run=True)
    kinds = report["kinds"]
    assert report["dry_run"] and {k: v["found"] for k, v in kinds.items()} == {
        "memories": 1, "instances": 2, "session_events": 2, "context_items": 3,
        "idempotency_keys": 0, "audit_entries": unsealed}
    assert all(v["done"] == 0 for v in kinds.values())
    assert kinds["context_items"]["kept_referenced"] == 1
    assert content_of(settings) == before


class RecordedProgress:
    """What a front end's progress bar would be told: each phase and the work done in it."""

    def __init__(self) -> None:
        self.done: dict[str, int] = {}
        self._phase = ""

    def start(self, phase: str, total: int | None) -> None:
        self._phase = phase
        self.done[phase] = 0

    def advance(self, amount: int) -> None:
        self.done[self._phase] += amount


def test_gc_removes_and_archives_exactly_what_the_policy_says(
        db: Ctxdb, settings: Settings, scenario: Scenario) -> None:
    s = scenario
    progress = RecordedProgress()
    report = db.retention.collect(progress=progress)
    sealed = report["kinds"].pop("audit_entries")["done"]
    assert {k: v["done"] for k, v in report["kinds"].items()} == {
        "memories": 1, "instances": 2, "session_events": 2, "context_items": 3,
        "idempotency_keys": 0}
    assert progress.done == {"gc:memories": 1, "gc:instances": 2, "gc:session_events": 2,
                             "gc:context_items": 3, "gc:idempotency_keys": 0,
                             "gc:audit_entries": 0,
                             "audit seal": sealed}
    # Last, the audit entries are sealed: those of the scenario and those gc just wrote.
    assert sealed == len(db.audit_log(limit=1000)) and db.audit_chain.unsealed() == 0
    assert db.audit_chain.verify()["ok"]
    assert report["kinds"]["session_events"]["sessions"] == 1
    live = {m["key"] for m in db.memories.list(s.pid, include_expired=True)}
    assert live == s.stays["memories"]
    instances = {i["instance_id"] for i in db.instances.list(s.pid)}
    assert not instances & s.goes["instances"] and s.stays["instances"] <= instances
    orphan = [i for tier in db.context.full(s.pid).values() for i in tier
              if i["content"] == {"by": "a gone instance"}]
    assert orphan[0]["created_by"] is None  # the item stays; its author is forgotten
    for session_id in s.goes["sessions"]:
        assert db.conversations.events(session_id) == []
        assert db.conversations.get(session_id)["status"] == "closed"
    for session_id in s.stays["sessions"]:
        assert len(db.conversations.events(session_id)) == 2
    remaining = all_item_ids(db, s.pid, s.other)
    assert not remaining & s.goes["items"]
    assert s.stays["items"] - remaining == {s_id for s_id in s.stays["items"]
                                            if db.context.get(s_id)["state"] != "active"}
    archived = {a["item_id"] for p in (s.pid, s.other) for a in db.retention.archived(p)}
    assert archived == s.goes["items"]
    actions = [a["action"] for a in db.audit_log(limit=50)]
    for action in ("retention.instances", "retention.session_events",
                   "retention.context_items", "memory.expire"):
        assert action in actions
    again = db.retention.collect()
    assert all(v["done"] == 0 for v in again["kinds"].values())


def test_critical_items_are_archived_only_when_listed(
        settings: Settings, scenario: Scenario) -> None:
    with Ctxdb.open(settings.replace(retention_context_priorities="")) as db:
        assert db.retention.collect()["kinds"]["context_items"]["done"] == 0
    everything = settings.replace(retention_context_priorities="critical, HIGH,MEDIUM,LOW")
    with Ctxdb.open(everything) as db:
        report = db.retention.collect(project_id=scenario.pid)
        assert report["kinds"]["context_items"]["done"] == 6
        archived = {a["item_id"] for a in db.retention.archived(scenario.pid)}
        old = (scenario.goes["items"] | scenario.stays["items"]) - {scenario.new_item}
        assert archived == old - set(all_item_ids(db, scenario.other))
    with pytest.raises(ConfigError, match="retention_context_priorities"):
        settings.replace(retention_context_priorities="URGENT")


def test_gc_of_one_project_leaves_the_others_alone(
        db: Ctxdb, settings: Settings, scenario: Scenario) -> None:
    report = db.retention.collect(project_id=scenario.other)
    sealed = report["kinds"].pop("audit_entries")["done"]
    assert {k: v["done"] for k, v in report["kinds"].items()} == {
        "memories": 0, "instances": 0, "session_events": 0, "context_items": 1,
        "idempotency_keys": 0}
    # Only the project's own chain was sealed.
    assert sealed == len(db.audit_log(scenario.other, limit=1000))
    assert db.audit_chain.unsealed(scenario.other) == 0
    assert db.audit_chain.unsealed(scenario.pid) == len(db.audit_log(scenario.pid, limit=1000))
    assert db.retention.collect(project_id=scenario.pid, dry_run=True)["kinds"][
        "instances"]["found"] == 2


def test_zero_ages_switch_kinds_off(settings: Settings, scenario: Scenario) -> None:
    off = settings.replace(retention_instances=0, retention_session_events=0,
                           retention_context_items=0, retention_idempotency_keys=0)
    with Ctxdb.open(off) as db:
        kinds = db.retention.collect()["kinds"]
    assert [k for k, v in kinds.items() if v["done"]] == ["memories", "audit_entries"]
    assert not any(v["enabled"] for k, v in kinds.items()
                   if k not in ("memories", "audit_entries"))  # no age: these always run


def test_unarchive_puts_items_back_unchanged(
        db: Ctxdb, settings: Settings, scenario: Scenario) -> None:
    pid = scenario.pid
    low = old_item(db, settings, pid, "LOW", topic="chain")
    newer = int(db.context.supersede(low, {"topic": "chain", "v": 2})["item_id"])
    backdate(settings, "context_items", "created_at", "item_id", newer)
    newer_item = db.context.get(newer)
    assert newer_item["priority"] == "LOW"
    db.retention.collect()
    assert not {low, newer} & all_item_ids(db, pid)
    pack_ids = {i["item_id"] for tier in db.context.full(pid).values() for i in tier}
    assert newer not in pack_ids
    restored = db.retention.unarchive(low, project_id=pid)
    assert [r["item_id"] for r in restored] == [low, newer]
    assert db.context.get(newer) == newer_item
    assert db.context.get(low)["superseded_by"] == newer
    assert db.audit_log(limit=1)[0]["action"] == "context.unarchive"
    with pytest.raises(ContextItemNotFoundError):
        db.retention.unarchive(low)
    with pytest.raises(ContextItemNotFoundError):
        db.retention.unarchive(next(iter(scenario.goes["items"])), project_id="proj_none")


def test_unarchive_refuses_an_idempotency_key_taken_meanwhile(
        db: Ctxdb, settings: Settings, scenario: Scenario) -> None:
    pid = scenario.pid
    item_id = int(db.context.store(pid, {"k": 1}, priority="LOW",
                                   idempotency_key="same-key")["item_id"])
    backdate(settings, "context_items", "created_at", "item_id", item_id)
    db.retention.collect()
    again = db.context.store(pid, {"k": 2}, priority="LOW", idempotency_key="same-key")
    assert again["item_id"] != item_id
    with pytest.raises(ConflictError, match="idempotency key"):
        db.retention.unarchive(item_id)
    assert item_id in {a["item_id"] for a in db.retention.archived(pid)}


# --- batches: each transaction of gc changes at most batch_size records --------------------


@dataclass
class Fleet:
    """A project whose ended instances are each named by many rows, with long sessions."""

    pid: str
    instances: list[str]
    sessions: list[str]


def build_fleet(db: Ctxdb, settings: Settings, name: str) -> Fleet:
    pid = db.projects.create(name)["project_id"]
    fleet = Fleet(pid, [], [])
    for number in range(4):
        instance_id = str(db.instances.launch(pid, client="codex")["instance_id"])
        for item in range(5):
            db.context.store(pid, {"by": number, "item": item}, priority="HIGH",
                             created_by=instance_id)
        db.checkpoints.save(instance_id, {"step": number})
        db.messages.send(pid, "instance", instance_id, {"hello": number})
        assert db.messages.inbox(instance_id)  # a delivery row that names the instance
        session = db.conversations.create(pid, "chat", f"user{number}", instance_id=instance_id)
        for text in range(7):
            db.conversations.append(session["session_id"], "user", {"text": text})
        db.conversations.close(session["session_id"])
        backdate(settings, "sessions", "closed_at", "session_id", session["session_id"])
        db.instances.end(instance_id)
        backdate(settings, "instances", "ended_at", "instance_id", instance_id)
        fleet.instances.append(instance_id)
        fleet.sessions.append(session["session_id"])
    for item in range(11):
        old_item(db, settings, pid, "LOW", n=item)
    return fleet


def fleet_state(db: Ctxdb, fleet: Fleet) -> dict[str, Any]:
    """What gc leaves of a fleet, in terms that do not depend on its ids."""
    items = [i for tier in db.context.full(fleet.pid).values() for i in tier]
    return {
        "instances": len(db.instances.list(fleet.pid)),
        "authors_forgotten": sum(1 for i in items if "by" in i["content"]
                                 and i["created_by"] is None),
        "items": sorted(str(i["content"]) for i in items),
        "archived": len(db.retention.archived(fleet.pid)),
        "events": [len(db.conversations.events(s)) for s in fleet.sessions],
        "sessions": [db.conversations.get(s)["instance_id"] for s in fleet.sessions],
        "checkpoints": [c["instance_id"] for c in db.checkpoints.list(fleet.pid)],
    }


def retention_audit(db: Ctxdb, pid: str, action: str) -> list[dict[str, Any]]:
    return [row["details"] for row in db.audit_log(pid, limit=1000) if row["action"] == action]


def test_small_batches_end_where_one_big_batch_does(db: Ctxdb, settings: Settings) -> None:
    small, big = build_fleet(db, settings, "small batches"), build_fleet(db, settings, "big")
    sizes = {small.pid: 3, big.pid: 1000}
    reports = {pid: db.retention.collect(pid, batch_size=size)["kinds"]
               for pid, size in sizes.items()}
    assert fleet_state(db, small) == fleet_state(db, big)
    state = fleet_state(db, small)
    assert state["instances"] == 0 and state["archived"] == 11 and set(state["events"]) == {0}
    assert state["authors_forgotten"] == len(state["items"]) == 20
    assert set(state["sessions"]) == {None} and set(state["checkpoints"]) == {None}
    for kind in ("memories", "instances", "session_events", "context_items"):
        assert reports[small.pid][kind]["done"] == reports[big.pid][kind]["done"], kind
    big_batches = {k: v["batches"] for k, v in reports[big.pid].items() if k != "audit_entries"}
    assert big_batches == {"memories": 0, "instances": 1, "session_events": 1,
                           "context_items": 1, "idempotency_keys": 0}
    small_kinds = reports[small.pid]
    # 4 instances, each named by 5 items, a checkpoint, a session and a delivery (32 rows),
    # and their 4 deletes: 36 records, 12 batches of 3
    assert small_kinds["instances"]["batches"] == 36 // 3
    assert small_kinds["session_events"]["batches"] == 28 // 3 + 1
    assert small_kinds["context_items"]["batches"] == 11 // 3 + 1
    # Each batch is a transaction with its audit row, and changed at most 3 records.
    instances = retention_audit(db, small.pid, "retention.instances")
    assert len(instances) == small_kinds["instances"]["batches"]
    assert all(len(a["removed"]) + sum(a["references_forgotten"].values()) <= 3
               for a in instances)
    assert sorted(i for a in instances for i, _ in a["removed"]) == sorted(small.instances)
    events = retention_audit(db, small.pid, "retention.session_events")
    assert len(events) == small_kinds["session_events"]["batches"]
    assert all(sum(a["removed"].values()) <= 3 for a in events)
    archived = retention_audit(db, small.pid, "retention.context_items")
    assert all(len(a["archived"]) <= 3 for a in archived)
    assert small_kinds["session_events"]["sessions"] == 4
    again = db.retention.collect(small.pid, batch_size=3)["kinds"]
    assert all(v["done"] == 0 and v.get("batches", 0) == 0 for v in again.values())


class StopAfter(RecordedProgress):
    """A progress that stops gc (raises) after some batches of one phase: gc interrupted
    between two transactions, as by a crash or a kill."""

    def __init__(self, phase: str, batches: int) -> None:
        super().__init__()
        self.stop_phase, self.left = phase, batches

    def advance(self, amount: int) -> None:
        super().advance(amount)
        if self._phase == self.stop_phase:
            self.left -= 1
            if self.left == 0:
                raise KeyboardInterrupt


@pytest.mark.parametrize("phase", ["gc:instances", "gc:session_events"])
def test_gc_stopped_between_batches_leaves_a_consistent_database(
        db: Ctxdb, settings: Settings, phase: str) -> None:
    stopped, whole = build_fleet(db, settings, "stopped"), build_fleet(db, settings, "whole")
    db.retention.collect(whole.pid, batch_size=3)
    with pytest.raises(KeyboardInterrupt):
        db.retention.collect(stopped.pid, batch_size=3, progress=StopAfter(phase, 4))
    midway = fleet_state(db, stopped)
    assert midway != fleet_state(db, whole)  # stopped part way
    if phase == "gc:instances":
        # Four batches of three: the first instance's 8 references (5 items, its session,
        # checkpoint and delivery) and the instance itself, then 3 items of the second.
        assert midway["instances"] == 3 and midway["events"] == [7] * 4
        assert midway["authors_forgotten"] == 8
    else:
        # Four batches of three events: the first session's 7, then 5 of the second's.
        assert midway["instances"] == 0 and sorted(midway["events"]) == [0, 2, 7, 7]
    assert no_dangling_references(settings)
    db.retention.collect(stopped.pid, batch_size=3)  # the next run finishes the work
    assert fleet_state(db, stopped) == fleet_state(db, whole)
    assert db.audit_chain.verify()["ok"]


def no_dangling_references(settings: Settings) -> bool:
    if settings.is_postgres:  # PostgreSQL checks every foreign key at each statement
        return True
    with sqlite3.connect(settings.sqlite_path) as conn:
        problems = conn.execute("PRAGMA foreign_key_check").fetchall()
    conn.close()
    return problems == []


def test_the_batch_size_is_checked(db: Ctxdb, settings: Settings, scenario: Scenario) -> None:
    before = content_of(settings)
    for wrong in (0, -1, 1001, 2.5, "10", True, None):
        with pytest.raises(ValidationError, match="batch_size must be an integer between 1 "
                                                  "and 1000"):
            db.retention.collect(batch_size=wrong)  # type: ignore[arg-type]
    assert content_of(settings) == before


def test_gc_forgets_every_reference_to_an_instance(db: Ctxdb, backend: str) -> None:
    """The tables gc forgets an instance in, a batch at a time, are exactly those whose
    foreign keys point at instances: a new one would be left to the delete's ON DELETE
    action, all rows of it in one transaction."""
    keys = (postgres_schema(db) if backend == "postgres" else sqlite_schema(db))[0]
    pointing = {k.table: k.columns for k in keys if k.parent == "instances"}
    assert pointing == {table: (column,) for table, column in INSTANCE_REFERENCES.items()}


def test_gc_removes_idempotency_keys_past_their_retention(
        db: Ctxdb, settings: Settings, pid: str) -> None:
    old = db.tasks.create(pid, "retried long ago", idempotency_key="old-key")
    new = db.tasks.create(pid, "retried now", idempotency_key="new-key")
    backdate(settings, "idempotency_keys", "created_at", "idempotency_key", "old-key")
    dry = db.retention.collect(dry_run=True)["kinds"]["idempotency_keys"]
    assert (dry["found"], dry["done"], dry["age_seconds"]) == (1, 0, 7 * 24 * 3600)
    report = db.retention.collect(pid, batch_size=1)["kinds"]["idempotency_keys"]
    assert (report["found"], report["done"], report["batches"]) == (1, 1, 1)
    # The recent key still answers a retry with its record; the old one is a new create.
    assert db.tasks.create(pid, "retried now", idempotency_key="new-key") == new
    again = db.tasks.create(pid, "retried long ago", idempotency_key="old-key")
    assert again["task_id"] != old["task_id"]
    assert [e["action"] for e in db.audit_log(limit=50)].count("retention.idempotency_keys") == 1
    assert db.retention.collect(dry_run=True)["kinds"]["idempotency_keys"]["found"] == 0
