"""CheckpointService on both backends: save, get, latest, list; refusals; audit rows."""

from __future__ import annotations

from typing import Any

import pytest

from ctxdb.errors import (
    CheckpointNotFoundError,
    ConflictError,
    ContentTooLargeError,
    IdempotencyConflictError,
    InstanceNotFoundError,
    InvalidContentError,
    InvalidTransitionError,
    ProjectNotFoundError,
    StorageError,
    ValidationError,
)
from ctxdb.service import Ctxdb


@pytest.fixture
def agent(db: Ctxdb, pid: str) -> str:
    return str(db.instances.launch(pid, instance_id="coder-1")["instance_id"])


def test_save_and_get(db: Ctxdb, pid: str, agent: str) -> None:
    phase = db.phases.create(pid, 1, "Build")["phase_id"]
    db.phases.start(phase)
    db.instances.heartbeat(agent, phase)
    saved = db.checkpoints.save(agent, {"step": 3, "files": ["cart.py"]}, label="before-tests")
    assert (saved["project_id"], saved["instance_id"], saved["phase_id"], saved["generation"],
            saved["label"], saved["state"], saved["created_by"]) == (
        pid, agent, phase, 0, "before-tests", {"step": 3, "files": ["cart.py"]}, agent)
    assert db.checkpoints.get(saved["checkpoint_id"], project_id=pid) == saved
    audit = db.audit_log(entity_id=str(saved["checkpoint_id"]))
    assert [(r["action"], r["details"]["label"]) for r in audit
            if r["entity_type"] == "checkpoint"] == [("checkpoint.save", "before-tests")]


def test_the_generation_is_the_instances(db: Ctxdb, pid: str, agent: str) -> None:
    db.tokens.update_usage(agent, 1000)
    db.tokens.clear_and_reload(agent, summary="first round")
    assert db.checkpoints.save(agent, "any JSON value")["generation"] == 1


def test_latest_by_instance_and_label(db: Ctxdb, pid: str, agent: str) -> None:
    assert db.checkpoints.latest(pid) is None
    other = db.instances.launch(pid, instance_id="coder-2")["instance_id"]
    a = db.checkpoints.save(agent, {"n": 1}, label="plan")
    b = db.checkpoints.save(agent, {"n": 2})
    c = db.checkpoints.save(other, {"n": 3}, label="plan")
    assert db.checkpoints.latest(pid) == c
    assert db.checkpoints.latest(pid, instance_id=agent) == b
    assert db.checkpoints.latest(pid, instance_id=agent, label="plan") == a
    assert db.checkpoints.latest(pid, label="plan") == c
    assert db.checkpoints.latest(pid, label="nothing") is None


def test_list_filters_and_pages(db: Ctxdb, pid: str, agent: str) -> None:
    ids = [db.checkpoints.save(agent, i, label="even" if i % 2 == 0 else "odd")["checkpoint_id"]
           for i in range(5)]
    assert [c["checkpoint_id"] for c in db.checkpoints.list(pid)] == ids
    assert [c["state"] for c in db.checkpoints.list(pid, label="even")] == [0, 2, 4]
    assert [c["checkpoint_id"] for c in db.checkpoints.list(pid, after=ids[1], limit=2)] == (
        ids[2:4])
    assert [c["checkpoint_id"] for c in db.checkpoints.list(pid, instance_id=agent)] == ids


def test_save_is_idempotent_by_key(db: Ctxdb, pid: str, agent: str) -> None:
    first = db.checkpoints.save(agent, {"n": 1}, idempotency_key="step-1")
    assert db.checkpoints.save(agent, {"n": 1}, idempotency_key="step-1") == first
    with pytest.raises(IdempotencyConflictError) as refused:
        db.checkpoints.save(agent, {"n": 2}, idempotency_key="step-1")
    assert refused.value.details["fields"] == ["state"]
    assert "checkpoint " + str(first["checkpoint_id"]) in refused.value.message
    assert len(db.checkpoints.list(pid)) == 1


def test_unknown_and_cross_project_ids_are_refused(db: Ctxdb, pid: str, agent: str) -> None:
    other = db.projects.create("Other")["project_id"]
    stranger = db.instances.launch(other, instance_id="stranger")["instance_id"]
    foreign = db.checkpoints.save(stranger, {"theirs": True})["checkpoint_id"]
    with pytest.raises(CheckpointNotFoundError):
        db.checkpoints.get(999_999)
    with pytest.raises(CheckpointNotFoundError):
        db.checkpoints.get(foreign, project_id=pid)
    with pytest.raises(InstanceNotFoundError):
        db.checkpoints.save("nobody", {})
    with pytest.raises(ValidationError, match="belongs to project"):
        db.checkpoints.save(stranger, {}, project_id=pid)
    with pytest.raises(ValidationError, match="belongs to project"):
        db.checkpoints.latest(pid, instance_id=stranger)
    with pytest.raises(ProjectNotFoundError):
        db.checkpoints.latest("proj_unknown")
    with pytest.raises(ProjectNotFoundError):
        db.checkpoints.list("proj_unknown")
    assert db.checkpoints.list(pid) == []
    assert db.checkpoints.latest(pid, label="") is None


def test_an_archived_project_refuses_saves(db: Ctxdb, pid: str, agent: str) -> None:
    kept = db.checkpoints.save(agent, {"n": 1})
    db.projects.archive(pid)
    with pytest.raises(InvalidTransitionError, match="archived"):
        db.checkpoints.save(agent, {"n": 2})
    assert db.checkpoints.latest(pid) == kept


@pytest.mark.parametrize("call, error", [
    (lambda db: db.checkpoints.save("coder-1", {1, 2}), InvalidContentError),
    (lambda db: db.checkpoints.save("coder-1", float("nan")), InvalidContentError),
    (lambda db: db.checkpoints.save("coder-1", {"a": "\x00"}), InvalidContentError),
    (lambda db: db.checkpoints.save("coder-1", {}, label=5), ValidationError),
    (lambda db: db.checkpoints.save("coder-1", {}, label="x" * 201), ValidationError),
    (lambda db: db.checkpoints.save("", {}), ValidationError),
    (lambda db: db.checkpoints.save("coder-1", {}, idempotency_key="k\x00"), ValidationError),
    (lambda db: db.checkpoints.get(0), ValidationError),
    (lambda db: db.checkpoints.get("1"), ValidationError),
])
def test_bad_input_is_refused_and_changes_nothing(db: Ctxdb, pid: str, agent: str, call: Any,
                                                  error: type[Exception]) -> None:
    db.checkpoints.save(agent, {"n": 1})
    before = (db.checkpoints.list(pid), len(db.audit_log(pid)))
    with pytest.raises(error):
        call(db)
    assert (db.checkpoints.list(pid), len(db.audit_log(pid))) == before


def test_state_over_the_limit_is_refused(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(max_content_bytes=1000)) as db:
        pid = db.projects.create("Small")["project_id"]
        agent = db.instances.launch(pid)["instance_id"]
        with pytest.raises(ContentTooLargeError):
            db.checkpoints.save(agent, {"blob": "x" * 2000})
        assert db.checkpoints.list(pid) == []


def test_the_database_itself_refuses_invalid_json(db: Ctxdb, pid: str, agent: str) -> None:
    def raw_insert(tx: Any) -> None:
        tx.execute("insert_checkpoint", project_id=pid, instance_id=agent, phase_id=None,
                   generation=0, label="", state="{not json", created_by="x",
                   idempotency_key="k")

    with pytest.raises((ConflictError, StorageError)):
        db.storage.write(raw_insert)
    assert db.checkpoints.list(pid) == []
