"""Phases: numbering per project, status transitions, the current phase, project isolation."""

from __future__ import annotations

from typing import Any

import pytest

from ctxdb.errors import (
    ConflictError,
    InvalidTransitionError,
    PhaseNotFoundError,
    ProjectNotFoundError,
)
from ctxdb.service import Ctxdb


def test_create_and_list_phases(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    second = db.phases.create(project_id, 2, "Build", story_points=8, description="code it",
                              metadata={"owner": "team-a"})
    first = db.phases.create(project_id, 1, "Design", story_points=3)
    assert second["project_id"] == project_id
    assert (second["phase_number"], second["name"], second["story_points"]) == (2, "Build", 8)
    assert second["description"] == "code it"
    assert second["metadata"] == {"owner": "team-a"}
    assert second["status"] == "pending"
    assert second["started_at"] is None and second["completed_at"] is None
    assert [p["phase_id"] for p in db.phases.list(project_id)] == [
        first["phase_id"], second["phase_id"]]  # ordered by number, not creation
    assert db.phases.get(first["phase_id"]) == first
    assert db.projects.get(project_id)["total_phases"] == 2


def test_phase_numbers_are_per_project(db: Ctxdb) -> None:
    alpha = db.projects.create("alpha")["project_id"]
    beta = db.projects.create("beta")["project_id"]
    a1 = db.phases.create(alpha, 1, "One")
    b1 = db.phases.create(beta, 1, "One")
    assert a1["phase_id"] != b1["phase_id"]
    assert [p["phase_id"] for p in db.phases.list(alpha)] == [a1["phase_id"]]
    assert [p["phase_id"] for p in db.phases.list(beta)] == [b1["phase_id"]]


def test_duplicate_phase_number_is_a_conflict(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    db.phases.create(project_id, 1, "Design")
    audit_before = db.audit_log(project_id=project_id)
    with pytest.raises(ConflictError, match="phase number 1"):
        db.phases.create(project_id, 1, "Design again")
    assert len(db.phases.list(project_id)) == 1
    assert db.audit_log(project_id=project_id) == audit_before


def test_phase_in_unknown_project(db: Ctxdb) -> None:
    with pytest.raises(ProjectNotFoundError, match="proj_nowhere"):
        db.phases.create("proj_nowhere", 1, "x")
    with pytest.raises(ProjectNotFoundError):
        db.phases.list("proj_nowhere")


def test_start_complete_and_block(db: Ctxdb, project: dict[str, Any]) -> None:
    phase_id = db.phases.create(project["project_id"], 1, "Design")["phase_id"]
    started = db.phases.start(phase_id)
    assert started["status"] == "active"
    assert started["started_at"] is not None
    blocked = db.phases.block(phase_id, "waiting for review")
    assert (blocked["status"], blocked["blocked_reason"]) == ("blocked", "waiting for review")
    resumed = db.phases.start(phase_id)
    assert resumed["status"] == "active"
    assert resumed["blocked_reason"] is None
    assert resumed["started_at"] == started["started_at"]  # the first start is kept
    completed = db.phases.complete(phase_id)
    assert completed["status"] == "completed"
    assert completed["completed_at"] is not None
    actions = [row["action"] for row in reversed(db.audit_log(entity_id=str(phase_id)))]
    assert actions == ["phase.create", "phase.active", "phase.blocked", "phase.active",
                       "phase.completed"]


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], "complete"),  # pending cannot complete
        (["start"], "start"),  # already active
        (["start", "complete"], "start"),  # completed is final
        (["start", "complete"], "block"),
        (["start", "complete"], "complete"),
        (["block"], "block"),
    ],
)
def test_invalid_transitions_are_refused(
    db: Ctxdb, project: dict[str, Any], path: list[str], refused: str
) -> None:
    phase_id = db.phases.create(project["project_id"], 1, "Design")["phase_id"]
    for step in path:
        getattr(db.phases, step)(phase_id)
    before = db.phases.get(phase_id)
    audit_before = db.audit_log()
    with pytest.raises(InvalidTransitionError, match=f"phase {phase_id} is {before['status']}"):
        getattr(db.phases, refused)(phase_id)
    assert db.phases.get(phase_id) == before
    assert db.audit_log() == audit_before


def test_blocked_phase_may_complete(db: Ctxdb, project: dict[str, Any]) -> None:
    phase_id = db.phases.create(project["project_id"], 1, "Design")["phase_id"]
    db.phases.block(phase_id)
    assert db.phases.complete(phase_id)["status"] == "completed"


def test_transition_of_unknown_phase(db: Ctxdb) -> None:
    with pytest.raises(PhaseNotFoundError, match="unknown phase 999"):
        db.phases.start(999)


def test_current_phase_is_the_highest_numbered_active_one(
    db: Ctxdb, project: dict[str, Any]
) -> None:
    project_id = project["project_id"]
    assert db.phases.current(project_id) is None
    ids = {n: db.phases.create(project_id, n, f"Phase {n}")["phase_id"] for n in (1, 2, 3, 4)}
    assert db.phases.current(project_id) is None  # pending phases are not current
    db.phases.start(ids[1])
    db.phases.start(ids[3])
    db.phases.block(ids[4])
    assert db.phases.current(project_id)["phase_id"] == ids[3]
    db.phases.complete(ids[3])
    assert db.phases.current(project_id)["phase_id"] == ids[1]
    db.phases.start(ids[4])
    assert db.phases.current(project_id)["phase_id"] == ids[4]


def test_current_phase_ignores_other_projects(db: Ctxdb) -> None:
    alpha = db.projects.create("alpha")["project_id"]
    beta = db.projects.create("beta")["project_id"]
    db.phases.start(db.phases.create(beta, 9, "Beta's")["phase_id"])
    assert db.phases.current(alpha) is None


def test_phase_of_another_project_is_refused_as_unknown(db: Ctxdb) -> None:
    alpha = db.projects.create("alpha")["project_id"]
    beta = db.projects.create("beta")["project_id"]
    beta_phase = db.phases.create(beta, 1, "Beta's")["phase_id"]
    instance = db.instances.launch(alpha)["instance_id"]
    attempts = [
        lambda: db.context.store(alpha, "x", "HIGH", phase_id=beta_phase),
        lambda: db.instances.launch(alpha, beta_phase),
        lambda: db.instances.heartbeat(instance, phase_id=beta_phase),
        lambda: db.context.load_for_instance("inst_new", alpha, beta_phase),
        lambda: db.context.full(alpha, beta_phase),
        lambda: db.context.pack(alpha, 100, beta_phase),
    ]
    audit_before = db.audit_log()
    for attempt in attempts:
        with pytest.raises(PhaseNotFoundError, match=f"unknown phase {beta_phase} in project"):
            attempt()
    assert db.audit_log() == audit_before
    assert db.context.counts(alpha)["HIGH"]["items"] == 0
    assert len(db.instances.list(alpha)) == 1
