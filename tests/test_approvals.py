"""ApprovalService on both backends: request, decide once, cancel, wait, refusals, audit."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ctxdb.errors import (
    AlreadyDecidedError,
    ApprovalGateNotFoundError,
    ApprovalTimeoutError,
    ConflictError,
    IdempotencyConflictError,
    InvalidContentError,
    InvalidStatusError,
    InvalidTransitionError,
    PhaseNotFoundError,
    ProjectNotFoundError,
    StorageError,
    ValidationError,
)
from ctxdb.service import Ctxdb


@pytest.fixture
def agent(db: Ctxdb, pid: str) -> str:
    return str(db.instances.launch(pid, instance_id="planner-1")["instance_id"])


def actions(db: Ctxdb, gate_id: int) -> list[str]:
    return [row["action"] for row in reversed(db.audit_log(entity_id=str(gate_id)))
            if row["entity_type"] == "approval_gate"]


def test_request_and_approve(db: Ctxdb, pid: str, agent: str) -> None:
    phase = db.phases.create(pid, 1, "Plan")["phase_id"]
    gate = db.approvals.request(pid, "implementation_plan", {"steps": ["a", "b"]},
                                title="Plan for checkout", phase_id=phase, instance_id=agent)
    assert (gate["status"], gate["request"], gate["title"], gate["gate_type"]) == (
        "pending", {"steps": ["a", "b"]}, "Plan for checkout", "implementation_plan")
    assert (gate["phase_id"], gate["instance_id"], gate["requested_by"]) == (phase, agent, agent)
    assert (gate["response"], gate["decided_by"], gate["decided_at"]) == (None, None, None)
    assert db.approvals.get(gate["gate_id"], project_id=pid) == gate

    approved = db.approvals.approve(gate["gate_id"], {"note": "go ahead"}, actor="user:lead")
    assert (approved["status"], approved["response"], approved["decided_by"]) == (
        "approved", {"note": "go ahead"}, "user:lead")
    assert approved["decided_at"] >= approved["created_at"]
    assert actions(db, gate["gate_id"]) == ["approval.request", "approval.approve"]


def test_reject_and_cancel(db: Ctxdb, pid: str) -> None:
    rejected = db.approvals.reject(db.approvals.request(pid, "deploy")["gate_id"],
                                   "not on a Friday")
    assert (rejected["status"], rejected["response"], rejected["request"],
            rejected["requested_by"], rejected["decided_by"]) == (
        "rejected", "not on a Friday", {}, "user:test", "user:test")
    cancelled = db.approvals.cancel(db.approvals.request(pid, "deploy")["gate_id"])
    assert (cancelled["status"], cancelled["response"]) == ("cancelled", None)


@pytest.mark.parametrize("first", ["approve", "reject", "cancel"])
@pytest.mark.parametrize("second", ["approve", "reject", "cancel"])
def test_a_decision_is_never_changed(db: Ctxdb, pid: str, first: str, second: str) -> None:
    gate_id = db.approvals.request(pid, "plan")["gate_id"]
    decided = getattr(db.approvals, first)(gate_id, "first", actor="user:a")
    with pytest.raises(AlreadyDecidedError, match="already") as caught:
        getattr(db.approvals, second)(gate_id, "second", actor="user:b")
    assert isinstance(caught.value, InvalidTransitionError)
    assert caught.value.details["status"] == decided["status"]
    assert caught.value.details["decided_by"] == "user:a"
    assert db.approvals.get(gate_id) == decided
    assert len(actions(db, gate_id)) == 2


def test_concurrent_decisions_one_wins(db: Ctxdb, pid: str) -> None:
    gate_id = db.approvals.request(pid, "plan")["gate_id"]
    outcomes: list[str] = []

    def decide(verb: str) -> None:
        try:
            getattr(db.approvals, verb)(gate_id, actor=f"user:{verb}")
            outcomes.append(verb)
        except AlreadyDecidedError:
            outcomes.append("refused")

    threads = [threading.Thread(target=decide, args=(verb,))
               for verb in ("approve", "reject") * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("refused") == 7
    winner = next(o for o in outcomes if o != "refused")
    assert db.approvals.get(gate_id)["decided_by"] == f"user:{winner}"


def test_request_is_idempotent_by_key(db: Ctxdb, pid: str) -> None:
    first = db.approvals.request(pid, "deploy", {"v": 1}, idempotency_key="deploy-v1")
    audit_before = db.audit_log()
    assert db.approvals.request(pid, "deploy", {"v": 1}, idempotency_key="deploy-v1") == first
    with pytest.raises(IdempotencyConflictError) as refused:
        db.approvals.request(pid, "deploy", {"v": 2}, title="v2", idempotency_key="deploy-v1")
    assert refused.value.details == {"idempotency_key": "deploy-v1",
                                     "fields": ["request", "title"],
                                     "gate_id": first["gate_id"]}
    assert db.audit_log() == audit_before
    other = db.projects.create("Other")["project_id"]
    elsewhere = db.approvals.request(other, "deploy", idempotency_key="deploy-v1")
    assert elsewhere["gate_id"] != first["gate_id"]
    assert [g["gate_id"] for g in db.approvals.list(pid)] == [first["gate_id"]]


def test_list_filters_and_pages(db: Ctxdb, pid: str) -> None:
    ids = [db.approvals.request(pid, kind)["gate_id"]
           for kind in ("plan", "deploy", "plan", "plan")]
    db.approvals.approve(ids[0])
    db.approvals.reject(ids[1])
    assert [g["gate_id"] for g in db.approvals.list(pid, status="pending")] == ids[2:]
    assert [g["gate_id"] for g in db.approvals.list(pid, gate_type="plan")] == [
        ids[0], ids[2], ids[3]]
    assert [g["gate_id"] for g in db.approvals.list(pid, after=ids[0], limit=2)] == ids[1:3]
    assert db.approvals.list(pid, status="approved", gate_type="deploy") == []


def test_wait_returns_the_decision(db: Ctxdb, pid: str) -> None:
    gate_id = db.approvals.request(pid, "plan")["gate_id"]
    timer = threading.Timer(0.3, lambda: db.approvals.approve(gate_id, "ok"))
    timer.start()
    try:
        started = time.monotonic()
        gate = db.approvals.wait(gate_id, 10, poll_seconds=0.05)
        assert time.monotonic() - started < 5
    finally:
        timer.join()
    assert (gate["status"], gate["response"]) == ("approved", "ok")
    rejected = db.approvals.reject(db.approvals.request(pid, "plan")["gate_id"])
    assert db.approvals.wait(rejected["gate_id"], 0)["status"] == "rejected"


def test_wait_times_out_on_a_pending_gate(db: Ctxdb, pid: str) -> None:
    gate_id = db.approvals.request(pid, "plan")["gate_id"]
    started = time.monotonic()
    with pytest.raises(ApprovalTimeoutError, match=r"still pending after 0\.2 s"):
        db.approvals.wait(gate_id, 0.2, poll_seconds=0.05)
    assert 0.15 < time.monotonic() - started < 5
    with pytest.raises(ApprovalTimeoutError):
        db.approvals.wait(gate_id, 0)
    assert db.approvals.get(gate_id)["status"] == "pending"


def test_unknown_and_cross_project_ids_are_refused(db: Ctxdb, pid: str, agent: str) -> None:
    other = db.projects.create("Other")["project_id"]
    foreign = db.approvals.request(other, "plan")["gate_id"]
    foreign_phase = db.phases.create(other, 1, "Theirs")["phase_id"]
    stranger = db.instances.launch(other, instance_id="stranger")["instance_id"]
    with pytest.raises(ApprovalGateNotFoundError):
        db.approvals.get(999_999)
    with pytest.raises(ApprovalGateNotFoundError):
        db.approvals.get(foreign, project_id=pid)
    with pytest.raises(ApprovalGateNotFoundError):
        db.approvals.approve(foreign, project_id=pid)
    with pytest.raises(ApprovalGateNotFoundError):
        db.approvals.reject(999_999)
    with pytest.raises(ApprovalGateNotFoundError):
        db.approvals.wait(foreign, 0, project_id=pid)
    with pytest.raises(ProjectNotFoundError):
        db.approvals.request("proj_unknown", "plan")
    with pytest.raises(ProjectNotFoundError):
        db.approvals.list("proj_unknown")
    with pytest.raises(PhaseNotFoundError):
        db.approvals.request(pid, "plan", phase_id=foreign_phase)
    with pytest.raises(ValidationError, match="belongs to project"):
        db.approvals.request(pid, "plan", instance_id=stranger)
    assert db.approvals.list(pid) == []
    assert db.approvals.get(foreign)["status"] == "pending"


def test_an_archived_project_refuses_requests_and_decisions(db: Ctxdb, pid: str) -> None:
    gate_id = db.approvals.request(pid, "plan")["gate_id"]
    db.projects.archive(pid)
    with pytest.raises(InvalidTransitionError, match="archived"):
        db.approvals.request(pid, "plan")
    with pytest.raises(InvalidTransitionError, match="archived"):
        db.approvals.approve(gate_id)
    assert db.approvals.get(gate_id)["status"] == "pending"
    assert len(db.approvals.list(pid)) == 1


@pytest.mark.parametrize("call, error", [
    (lambda db, pid: db.approvals.request(pid, ""), ValidationError),
    (lambda db, pid: db.approvals.request(pid, "plan", {1, 2}), InvalidContentError),
    (lambda db, pid: db.approvals.request(pid, "plan", float("nan")), InvalidContentError),
    (lambda db, pid: db.approvals.request(pid, "plan", "\x00"), InvalidContentError),
    (lambda db, pid: db.approvals.request(pid, "plan", title=7), ValidationError),
    (lambda db, pid: db.approvals.request(pid, "plan", phase_id=-1), ValidationError),
    (lambda db, pid: db.approvals.request(pid, "plan", idempotency_key="k\x00"), ValidationError),
    (lambda db, pid: db.approvals.approve(1, {"bad": object()}), InvalidContentError),
    (lambda db, pid: db.approvals.approve(0), ValidationError),
    (lambda db, pid: db.approvals.approve("1"), ValidationError),
    (lambda db, pid: db.approvals.reject(1, actor="  "), ValidationError),
    (lambda db, pid: db.approvals.list(pid, status="maybe"), InvalidStatusError),
    (lambda db, pid: db.approvals.list(pid, limit=0), ValidationError),
    (lambda db, pid: db.approvals.wait(1, -1), ValidationError),
    (lambda db, pid: db.approvals.wait(1, float("inf")), ValidationError),
    (lambda db, pid: db.approvals.wait(1, 1, poll_seconds=0), ValidationError),
])
def test_bad_input_is_refused_and_changes_nothing(db: Ctxdb, pid: str, call: Any,
                                                  error: type[Exception]) -> None:
    assert db.approvals.request(pid, "plan")["gate_id"] == 1  # the id the calls name
    before = (db.approvals.list(pid), len(db.audit_log(pid)))
    with pytest.raises(error):
        call(db, pid)
    assert (db.approvals.list(pid), len(db.audit_log(pid))) == before


def test_the_database_itself_refuses_invalid_json(db: Ctxdb, pid: str) -> None:
    """The schema enforces JSON even for a writer that bypasses the service's checks."""

    def raw_insert(tx: Any) -> None:
        tx.execute("insert_approval_gate", project_id=pid, phase_id=None, instance_id=None,
                   gate_type="plan", title="", request="{not json", requested_by="x",
                   idempotency_key="k")

    with pytest.raises((ConflictError, StorageError)):
        db.storage.write(raw_insert)
    assert db.approvals.list(pid) == []
