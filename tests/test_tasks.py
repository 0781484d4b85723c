"""TaskService on both backends: the queue, leases and their fencing, dependencies, refusals,
crash release and audit rows."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ctxdb.errors import (
    InstanceNotFoundError,
    InvalidContentError,
    InvalidPriorityError,
    InvalidStatusError,
    InvalidTransitionError,
    LeaseExpiredError,
    ProjectNotFoundError,
    StaleEpochError,
    TaskNotFoundError,
    ValidationError,
)
from ctxdb.service import Ctxdb

SHORT = 0.2  # seconds: a lease the tests let run out


@pytest.fixture
def worker(db: Ctxdb, pid: str) -> str:
    return str(db.instances.launch(pid, instance_id="worker-1")["instance_id"])


def actions(db: Ctxdb, task_id: int) -> list[str]:
    return [row["action"] for row in reversed(db.audit_log(entity_id=str(task_id)))]


def test_create_and_get(db: Ctxdb, pid: str) -> None:
    parent = db.tasks.create(pid, "Ship it", description="the epic", priority=5)
    child = db.tasks.create(pid, "Write code", parent_task_id=parent["task_id"])
    assert (parent["status"], parent["priority"], parent["epoch"], parent["attempts"]) == (
        "ready", 5, 0, 0)
    assert (parent["description"], parent["created_by"], parent["depends_on"]) == (
        "the epic", "user:test", [])
    assert child["parent_task_id"] == parent["task_id"]
    assert db.tasks.get(child["task_id"], project_id=pid) == child
    assert actions(db, parent["task_id"]) == ["task.create"]


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_claim_passes_over_a_task_another_transaction_holds(
    db: Ctxdb, pid: str, worker: str, settings: Any
) -> None:
    """PostgreSQL claims with FOR UPDATE SKIP LOCKED: a task locked by another claim in
    progress is skipped at once, not waited for."""
    import psycopg

    held = db.tasks.create(pid, "held", priority=5)["task_id"]
    free = db.tasks.create(pid, "free", priority=1)["task_id"]
    claimed: list[dict[str, Any] | None] = []
    with psycopg.connect(settings.url) as other:
        other.execute("SELECT 1 FROM tasks WHERE task_id = %s FOR UPDATE", (held,))
        claim = threading.Thread(target=lambda: claimed.append(db.tasks.claim(pid, worker, 30)))
        claim.start()
        claim.join(10)
        waited = claim.is_alive()
        other.rollback()  # lets a claim that waited for the lock finish
        claim.join()
    assert not waited, "the claim waited for the locked task instead of skipping it"
    assert claimed[0] is not None and claimed[0]["task_id"] == free
    again = db.tasks.claim(pid, worker, 30)
    assert again is not None and again["task_id"] == held


def test_claim_takes_the_highest_priority_then_the_oldest(db: Ctxdb, pid: str,
                                                          worker: str) -> None:
    low = db.tasks.create(pid, "low", priority=-1)["task_id"]
    first = db.tasks.create(pid, "first", priority=3)["task_id"]
    second = db.tasks.create(pid, "second", priority=3)["task_id"]
    claimed = [db.tasks.claim(pid, worker, 30) for _ in range(3)]
    assert [t["task_id"] for t in claimed if t] == [first, second, low]
    assert db.tasks.claim(pid, worker, 30) is None
    task = claimed[0]
    assert task is not None
    assert (task["status"], task["lease_owner"], task["epoch"], task["attempts"],
            task["lease_live"]) == ("claimed", worker, 1, 1, True)
    assert task["lease_expires_at"] > task["updated_at"]


def test_the_lease_lifecycle_to_done(db: Ctxdb, pid: str, worker: str) -> None:
    task_id = db.tasks.create(pid, "work")["task_id"]
    epoch = db.tasks.claim(pid, worker, 30)["epoch"]  # type: ignore[index]
    running = db.tasks.start(task_id, epoch)
    assert running["status"] == "running"
    renewed = db.tasks.renew(task_id, epoch, 60)
    assert renewed["lease_expires_at"] > running["lease_expires_at"]
    done = db.tasks.complete(task_id, epoch, {"files": ["a.py"], "ok": True})
    assert (done["status"], done["result"], done["lease_owner"]) == (
        "done", {"files": ["a.py"], "ok": True}, worker)
    assert done["completed_at"] is not None and done["lease_expires_at"] is None
    assert actions(db, task_id) == ["task.create", "task.claim", "task.start", "task.renew",
                                    "task.complete"]
    with pytest.raises(InvalidTransitionError, match="done, not leased"):
        db.tasks.complete(task_id, epoch, "again")
    assert db.tasks.get(task_id)["result"] == {"files": ["a.py"], "ok": True}


def test_fail_and_release(db: Ctxdb, pid: str, worker: str) -> None:
    a = db.tasks.create(pid, "a", priority=2)["task_id"]
    b = db.tasks.create(pid, "b", priority=1)["task_id"]
    epoch_a = db.tasks.claim(pid, worker, 30)["epoch"]  # type: ignore[index]
    failed = db.tasks.fail(a, epoch_a, "tests are red")
    assert (failed["status"], failed["error"]) == ("failed", "tests are red")
    epoch_b = db.tasks.claim(pid, worker, 30)["epoch"]  # type: ignore[index]
    released = db.tasks.release(b, epoch_b)
    assert (released["status"], released["lease_owner"], released["epoch"]) == (
        "ready", None, epoch_b + 1)
    with pytest.raises(StaleEpochError):
        db.tasks.complete(b, epoch_b, None)
    again = db.tasks.claim(pid, worker, 30)
    assert again is not None and (again["task_id"], again["attempts"]) == (b, 2)
    assert actions(db, b) == ["task.create", "task.claim", "task.release", "task.claim"]


def test_a_stale_epoch_is_refused_and_changes_nothing(db: Ctxdb, pid: str,
                                                      worker: str) -> None:
    task_id = db.tasks.create(pid, "work")["task_id"]
    epoch = db.tasks.claim(pid, worker, 30)["epoch"]  # type: ignore[index]
    before = db.tasks.get(task_id)
    for write in (lambda: db.tasks.start(task_id, epoch + 1),
                  lambda: db.tasks.renew(task_id, epoch - 1, 30),
                  lambda: db.tasks.complete(task_id, epoch + 5, 1),
                  lambda: db.tasks.fail(task_id, 0, "x"),
                  lambda: db.tasks.release(task_id, epoch + 1)):
        with pytest.raises(StaleEpochError) as caught:
            write()
        assert caught.value.details["current_epoch"] == epoch
    assert db.tasks.get(task_id) == before
    assert actions(db, task_id) == ["task.create", "task.claim"]


def test_an_expired_lease_is_refused_then_reclaimed(db: Ctxdb, pid: str, worker: str) -> None:
    other = db.instances.launch(pid, instance_id="worker-2")["instance_id"]
    task_id = db.tasks.create(pid, "work")["task_id"]
    first = db.tasks.claim(pid, worker, SHORT)
    assert first is not None
    db.tasks.start(task_id, first["epoch"])
    time.sleep(SHORT + 0.1)
    assert db.tasks.get(task_id)["lease_live"] is False
    for write in (lambda: db.tasks.renew(task_id, first["epoch"], 30),
                  lambda: db.tasks.complete(task_id, first["epoch"], "late"),
                  lambda: db.tasks.release(task_id, first["epoch"])):
        with pytest.raises(LeaseExpiredError):
            write()
    second = db.tasks.claim(pid, other, 30)
    assert second is not None
    assert (second["task_id"], second["lease_owner"], second["epoch"], second["attempts"]) == (
        task_id, other, first["epoch"] + 1, 2)
    claims = [r for r in db.audit_log(entity_id=str(task_id)) if r["action"] == "task.claim"]
    assert claims[0]["details"]["reclaimed_from"] == worker
    with pytest.raises(StaleEpochError):
        db.tasks.complete(task_id, first["epoch"], "late")
    assert db.tasks.complete(task_id, second["epoch"], "on time")["result"] == "on time"


def test_dependencies_unblock_when_all_are_done(db: Ctxdb, pid: str, worker: str) -> None:
    a = db.tasks.create(pid, "a", priority=1)["task_id"]
    b = db.tasks.create(pid, "b")["task_id"]
    c = db.tasks.create(pid, "c", priority=9, depends_on=[a, b, a])
    assert (c["status"], c["depends_on"]) == ("pending", [a, b])
    for expected in (a, b):
        task = db.tasks.claim(pid, worker, 30)
        assert task is not None and task["task_id"] == expected  # c is not claimable yet
        db.tasks.complete(expected, task["epoch"])
        assert db.tasks.get(c["task_id"])["status"] == ("ready" if expected == b else "pending")
    completes = [r for r in db.audit_log(entity_id=str(b)) if r["action"] == "task.complete"]
    assert completes[0]["details"]["unblocked"] == [c["task_id"]]
    d = db.tasks.create(pid, "d", depends_on=[a])
    assert d["status"] == "ready"


def test_failure_and_cancel_block_dependants(db: Ctxdb, pid: str, worker: str) -> None:
    a = db.tasks.create(pid, "a", priority=1)["task_id"]
    b = db.tasks.create(pid, "b", depends_on=[a])["task_id"]
    c = db.tasks.create(pid, "c", depends_on=[b])["task_id"]
    epoch = db.tasks.claim(pid, worker, 30)["epoch"]  # type: ignore[index]
    db.tasks.fail(a, epoch, "broken")
    assert [db.tasks.get(t)["status"] for t in (b, c)] == ["blocked", "blocked"]
    assert db.tasks.create(pid, "e", depends_on=[a])["status"] == "blocked"
    x = db.tasks.create(pid, "x")["task_id"]
    y = db.tasks.create(pid, "y", depends_on=[x])["task_id"]
    cancelled = db.tasks.cancel(x)
    assert (cancelled["status"], db.tasks.get(y)["status"]) == ("cancelled", "blocked")
    with pytest.raises(InvalidTransitionError, match="already cancelled"):
        db.tasks.cancel(x)


def test_cancel_makes_the_lease_stale(db: Ctxdb, pid: str, worker: str) -> None:
    task_id = db.tasks.create(pid, "work")["task_id"]
    epoch = db.tasks.claim(pid, worker, 30)["epoch"]  # type: ignore[index]
    assert db.tasks.cancel(task_id, project_id=pid)["epoch"] == epoch + 1
    with pytest.raises(StaleEpochError):
        db.tasks.complete(task_id, epoch, None)
    assert db.tasks.claim(pid, worker, 30) is None


def test_start_twice_is_refused(db: Ctxdb, pid: str, worker: str) -> None:
    task_id = db.tasks.create(pid, "work")["task_id"]
    epoch = db.tasks.claim(pid, worker, 30)["epoch"]  # type: ignore[index]
    db.tasks.start(task_id, epoch)
    with pytest.raises(InvalidTransitionError, match="not claimed"):
        db.tasks.start(task_id, epoch)


def test_list_filters_and_pages(db: Ctxdb, pid: str, worker: str) -> None:
    parent = db.tasks.create(pid, "parent")["task_id"]
    kids = [db.tasks.create(pid, f"kid {n}", parent_task_id=parent)["task_id"] for n in range(3)]
    db.tasks.claim(pid, worker, 30)
    assert [t["task_id"] for t in db.tasks.list(pid)] == [parent, *kids]
    assert [t["task_id"] for t in db.tasks.list(pid, status="claimed")] == [parent]
    assert [t["task_id"] for t in db.tasks.list(pid, lease_owner=worker)] == [parent]
    assert [t["task_id"] for t in db.tasks.list(pid, parent_task_id=parent)] == kids
    page = db.tasks.list(pid, after=kids[0], limit=1)
    assert [t["task_id"] for t in page] == [kids[1]]


def test_crashed_instances_release_their_leases(make_settings: Any, pid: str) -> None:
    # Stale after half a second: long enough that "alive", heard from just before the reap,
    # is not taken for crashed on a loaded machine.
    with Ctxdb.open(make_settings(stale_after=0.5)) as db:
        gone = db.instances.launch(pid, instance_id="gone")["instance_id"]
        alive = db.instances.launch(pid, instance_id="alive")["instance_id"]
        lost = db.tasks.create(pid, "lost", priority=2)["task_id"]
        kept = db.tasks.create(pid, "kept", priority=1)["task_id"]
        epoch = db.tasks.claim(pid, gone, 600)["epoch"]  # type: ignore[index]
        db.tasks.start(lost, epoch)
        time.sleep(0.6)
        db.instances.heartbeat(alive)
        kept_epoch = db.tasks.claim(pid, alive, 600)["epoch"]  # type: ignore[index]
        assert [r["instance_id"] for r in db.instances.reap_stale(pid)] == [gone]
        task = db.tasks.get(lost)
        assert (task["status"], task["lease_owner"], task["epoch"]) == ("ready", None, epoch + 1)
        assert db.tasks.get(kept)["status"] == "claimed"
        release = db.audit_log(entity_id=str(lost))[0]
        assert (release["action"], release["details"]["reason"]) == (
            "task.release", "instance crashed")
        with pytest.raises(StaleEpochError):
            db.tasks.complete(lost, epoch, None)
        assert db.tasks.complete(kept, kept_epoch)["status"] == "done"
        # A crashed instance claims nothing until a heartbeat brings it back; an ended one
        # never again. A refused claim changes nothing.
        with pytest.raises(InvalidTransitionError, match="is crashed"):
            db.tasks.claim(pid, gone, 600)
        assert db.tasks.get(lost)["status"] == "ready"
        db.instances.heartbeat(gone)
        assert db.tasks.claim(pid, gone, 600)["task_id"] == lost  # type: ignore[index]
        db.instances.end(alive)
        with pytest.raises(InvalidTransitionError, match="is completed"):
            db.tasks.claim(pid, alive, 600)


def test_unknown_ids_are_refused(db: Ctxdb, pid: str, worker: str) -> None:
    other = db.projects.create("Other")["project_id"]
    foreign = db.tasks.create(other, "foreign")["task_id"]
    stranger = db.instances.launch(other, instance_id="stranger")["instance_id"]
    with pytest.raises(TaskNotFoundError):
        db.tasks.get(999_999)
    with pytest.raises(TaskNotFoundError):
        db.tasks.get(foreign, project_id=pid)
    with pytest.raises(TaskNotFoundError):
        db.tasks.create(pid, "x", depends_on=[foreign])
    with pytest.raises(TaskNotFoundError):
        db.tasks.create(pid, "x", parent_task_id=foreign)
    with pytest.raises(TaskNotFoundError):
        db.tasks.complete(999_999, 1)
    with pytest.raises(TaskNotFoundError):
        db.tasks.cancel(foreign, project_id=pid)
    with pytest.raises(ProjectNotFoundError):
        db.tasks.create("proj_unknown", "x")
    with pytest.raises(InstanceNotFoundError):
        db.tasks.claim(pid, "nobody", 30)
    with pytest.raises(ValidationError, match="belongs to project"):
        db.tasks.claim(pid, stranger, 30)
    assert [t["task_id"] for t in db.tasks.list(pid)] == []


@pytest.mark.parametrize("call, error", [
    (lambda db, pid: db.tasks.create(pid, ""), ValidationError),
    (lambda db, pid: db.tasks.create(pid, "   "), ValidationError),
    (lambda db, pid: db.tasks.create(pid, "x", priority="urgent"), InvalidPriorityError),
    (lambda db, pid: db.tasks.create(pid, "x", priority=True), InvalidPriorityError),
    (lambda db, pid: db.tasks.create(pid, "x", priority=10**9), InvalidPriorityError),
    (lambda db, pid: db.tasks.create(pid, "x", depends_on="12"), ValidationError),
    (lambda db, pid: db.tasks.create(pid, "x", depends_on=[0]), ValidationError),
    (lambda db, pid: db.tasks.create(pid, "x\x00"), ValidationError),
    (lambda db, pid: db.tasks.list(pid, status="finished"), InvalidStatusError),
    (lambda db, pid: db.tasks.list(pid, limit=0), ValidationError),
    (lambda db, pid: db.tasks.claim(pid, "worker-1", 0), ValidationError),
    (lambda db, pid: db.tasks.claim(pid, "worker-1", float("nan")), ValidationError),
    (lambda db, pid: db.tasks.claim(pid, "worker-1", "10"), ValidationError),
    (lambda db, pid: db.tasks.renew(1, -1, 10), ValidationError),
    (lambda db, pid: db.tasks.complete(1, 1, {1, 2}), InvalidContentError),
    (lambda db, pid: db.tasks.complete(1, 1, float("inf")), InvalidContentError),
    (lambda db, pid: db.tasks.fail(1, 1, 42), ValidationError),
])
def test_bad_input_is_refused_and_changes_nothing(db: Ctxdb, pid: str, worker: str,
                                                  call: Any, error: type[Exception]) -> None:
    task_id = db.tasks.create(pid, "work")["task_id"]
    assert task_id == 1  # the ids the calls name
    db.tasks.claim(pid, worker, 30)
    before = (db.tasks.list(pid), len(db.audit_log(pid)))
    with pytest.raises(error):
        call(db, pid)
    assert (db.tasks.list(pid), len(db.audit_log(pid))) == before
