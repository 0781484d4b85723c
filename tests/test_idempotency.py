"""The idempotency keys of creates in the service layer (service/idempotency.py), on both
backends: a retry gets the first answer, another request under the key is refused, keys are
per project and per operation, and concurrent requests with one key create once."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ctxdb.errors import IdempotencyConflictError
from ctxdb.service import Ctxdb
from ctxdb.service.idempotency import claim_of, write_once
from ctxdb.storage import Tx


def count_tasks(db: Ctxdb, project_id: str) -> int:
    return len(db.tasks.list(project_id, limit=1000))


def test_a_retried_create_returns_the_first_record(db: Ctxdb, pid: str) -> None:
    first = db.tasks.create(pid, "write the docs", priority=3, idempotency_key="k1")
    again = db.tasks.create(pid, "write the docs", priority=3, idempotency_key="k1")
    assert again == first and count_tasks(db, pid) == 1
    with pytest.raises(IdempotencyConflictError, match=r"another task\.create request"):
        db.tasks.create(pid, "write the docs", priority=4, idempotency_key="k1")
    assert count_tasks(db, pid) == 1
    db.tasks.create(pid, "write the docs", priority=3)  # no key: a new task every time
    assert count_tasks(db, pid) == 2


def test_the_first_answer_stands_after_the_record_moved_on(db: Ctxdb, pid: str) -> None:
    """A retry is answered with what the create answered, not the record as it is now."""
    first = db.messages.send(pid, "broadcast", None, {"hi": 1}, idempotency_key="m1")
    instance = db.instances.launch(pid)["instance_id"]
    db.messages.inbox(instance)
    assert db.messages.send(pid, "broadcast", None, {"hi": 1}, idempotency_key="m1") == first


def test_keys_are_per_project_and_per_operation(db: Ctxdb, pid: str) -> None:
    other = db.projects.create("other")["project_id"]
    mine = db.tasks.create(pid, "t", idempotency_key="shared")
    theirs = db.tasks.create(other, "t", idempotency_key="shared")
    assert mine["task_id"] != theirs["task_id"] and theirs["project_id"] == other
    session = db.conversations.create(pid, "app", "user", idempotency_key="shared")
    assert session["project_id"] == pid


def test_project_creation_keys_are_fleet_wide(db: Ctxdb) -> None:
    first = db.projects.create("p", idempotency_key="p1")
    assert db.projects.create("p", idempotency_key="p1") == first
    assert len(db.projects.list()) == 1
    with pytest.raises(IdempotencyConflictError):
        db.projects.create("q", idempotency_key="p1")


def test_an_instance_launch_is_the_fields_given(db: Ctxdb, pid: str) -> None:
    """The request is the fields given, not the defaults filled in (host, process id), which
    differ from one server process to the next; a field given differently is another."""
    first = db.instances.launch(pid, model="m", idempotency_key="i1")
    with pytest.raises(IdempotencyConflictError):
        db.instances.launch(pid, model="m", idempotency_key="i1", hostname="elsewhere")
    again = db.instances.launch(pid, model="m", idempotency_key="i1")
    assert again["instance_id"] == first["instance_id"]
    assert len(db.instances.list(pid)) == 1


def test_concurrent_creates_with_one_key_create_once(db: Ctxdb, pid: str) -> None:
    answers: list[Any] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            answers.append(db.tasks.create(pid, "once", idempotency_key="race"))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({answer["task_id"] for answer in answers}) == 1
    assert count_tasks(db, pid) == 1


def test_a_unit_run_again_after_its_commit_answers_from_the_key(db: Ctxdb, pid: str) -> None:
    """What the storage does after a transient error when the first attempt had committed:
    the unit runs again, finds its key claimed, and answers without writing."""
    claim = claim_of(pid, "test.create", "u1", {"n": 1})
    runs: list[int] = []

    def unit(tx: Tx) -> dict[str, Any]:
        runs.append(1)
        return {"made": len(runs)}

    assert write_once(db.storage, claim, unit) == {"made": 1}
    assert write_once(db.storage, claim, unit) == {"made": 1}
    assert runs == [1]
    with pytest.raises(IdempotencyConflictError):
        write_once(db.storage, claim_of(pid, "test.create", "u1", {"n": 2}), unit)
