"""Projects: creation, listing, updates, archiving, the project limit, the summary, the audit."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ctxdb.errors import (
    ConflictError,
    InvalidTransitionError,
    ProjectNotFoundError,
    TooManyProjectsError,
)
from ctxdb.service import Ctxdb

PROJECT_ID = re.compile(r"^proj_\d{8}_\d{6}_[0-9a-f]{12}$")


def actions(db: Ctxdb, project_id: str) -> list[str]:
    """The audit actions of a project, oldest first."""
    return [row["action"] for row in reversed(db.audit_log(project_id=project_id))]


def test_create_and_get_project(db: Ctxdb) -> None:
    created = db.projects.create("Alpha", "first", 300, metadata={"team": "core"},
                                 repo_key="github.com/acme/alpha")
    assert PROJECT_ID.match(created["project_id"]), created["project_id"]
    fetched = db.projects.get(created["project_id"])
    assert fetched == created
    assert fetched["name"] == "Alpha"
    assert fetched["description"] == "first"
    assert fetched["total_story_points"] == 300
    assert fetched["completed_story_points"] == 0
    assert fetched["total_phases"] == 0
    assert fetched["status"] == "active"
    assert fetched["metadata"] == {"team": "core"}
    assert fetched["repo_key"] == "github.com/acme/alpha"
    assert fetched["archived_at"] is None
    assert fetched["created_at"].endswith("Z")


def test_timestamps_have_one_format_on_both_backends(db: Ctxdb) -> None:
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    project_id = db.projects.create("Stamped")["project_id"]
    archived = db.projects.archive(project_id)
    instance = db.instances.launch(db.projects.create("Other")["project_id"])
    for value in (archived["created_at"], archived["updated_at"], archived["archived_at"],
                  instance["started_at"], instance["last_heartbeat"],
                  db.audit_log()[0]["occurred_at"]):
        assert stamp.match(value), value


def test_project_ids_are_unique(db: Ctxdb) -> None:
    ids = {db.projects.create(f"p{n}")["project_id"] for n in range(5)}
    assert len(ids) == 5
    assert all(PROJECT_ID.match(project_id) for project_id in ids)


def test_caller_chosen_project_id_is_kept(db: Ctxdb) -> None:
    created = db.projects.create("Imported", project_id="proj_imported_1")
    assert created["project_id"] == "proj_imported_1"
    assert db.projects.get("proj_imported_1")["name"] == "Imported"


def test_a_taken_project_id_is_a_conflict(db: Ctxdb) -> None:
    first = db.projects.create("First", project_id="proj_fixed")
    audit_before = db.audit_log()
    with pytest.raises(ConflictError, match="project id 'proj_fixed' is already taken"):
        db.projects.create("Second", project_id="proj_fixed")
    assert db.projects.get("proj_fixed") == first
    # The same request again (as a retry would make) returns the project, writing nothing.
    assert db.projects.create("First", project_id="proj_fixed") == first
    assert db.audit_log() == audit_before
    assert len(db.projects.list()) == 1


def test_a_taken_repo_key_is_a_conflict(db: Ctxdb) -> None:
    db.projects.create("One", repo_key="github.com/acme/app")
    audit_before = db.audit_log()
    with pytest.raises(ConflictError):
        db.projects.create("Two", repo_key="github.com/acme/app")
    assert [p["name"] for p in db.projects.list()] == ["One"]
    assert db.audit_log() == audit_before


def test_unknown_project_is_a_typed_error(db: Ctxdb) -> None:
    with pytest.raises(ProjectNotFoundError, match="proj_nope"):
        db.projects.get("proj_nope")


def test_list_is_ordered_by_creation_time_then_id(db: Ctxdb) -> None:
    made = {db.projects.create(name)["project_id"] for name in ("a", "b", "c")}
    listed = db.projects.list()
    assert {p["project_id"] for p in listed} == made
    # Projects made in the same millisecond are ordered by id, so the order is stable.
    keys = [(p["created_at"], p["project_id"]) for p in listed]
    assert keys == sorted(keys)


def test_update_changes_only_the_given_fields(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    updated = db.projects.update(project_id, completed_story_points=40,
                                 metadata={"stage": "beta"})
    assert updated["completed_story_points"] == 40
    assert updated["metadata"] == {"stage": "beta"}
    assert updated["name"] == project["name"]
    assert updated["description"] == project["description"]
    assert updated["total_story_points"] == project["total_story_points"]
    assert updated["updated_at"] >= project["updated_at"]
    renamed = db.projects.update(project_id, name="Renamed", description="new text")
    assert (renamed["name"], renamed["description"]) == ("Renamed", "new text")
    assert renamed["completed_story_points"] == 40
    assert db.projects.get(project_id) == renamed


def test_update_unknown_project(db: Ctxdb) -> None:
    with pytest.raises(ProjectNotFoundError, match="proj_missing"):
        db.projects.update("proj_missing", name="x")


def test_archived_project_hidden_from_list_unless_asked(db: Ctxdb) -> None:
    keep = db.projects.create("keep")["project_id"]
    gone = db.projects.create("gone")["project_id"]
    archived = db.projects.archive(gone)
    assert archived["status"] == "archived"
    assert archived["archived_at"] is not None
    assert [p["project_id"] for p in db.projects.list()] == [keep]
    everything = db.projects.list(include_archived=True)
    assert {p["project_id"]: p["status"] for p in everything} == {
        keep: "active", gone: "archived"}
    assert db.projects.get(gone)["status"] == "archived"  # still readable


def test_archived_project_refuses_writes(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    phase_id = db.phases.create(project_id, 1, "Design")["phase_id"]
    item_id = db.context.store(project_id, {"k": "v"}, "HIGH")["item_id"]
    db.projects.archive(project_id)
    writes = [
        lambda: db.projects.update(project_id, name="x"),
        lambda: db.projects.archive(project_id),
        lambda: db.phases.create(project_id, 2, "Build"),
        lambda: db.phases.start(phase_id),
        lambda: db.phases.block(phase_id, "why"),
        lambda: db.instances.launch(project_id),
        lambda: db.context.store(project_id, {"k": "v"}, "HIGH"),
        lambda: db.context.delete(item_id),
        lambda: db.context.supersede(item_id, {"k": "w"}),
    ]
    audit_before = db.audit_log(project_id=project_id)
    for write in writes:
        with pytest.raises(InvalidTransitionError, match="archived"):
            write()
    assert db.audit_log(project_id=project_id) == audit_before
    assert db.projects.get(project_id)["name"] == project["name"]
    assert db.phases.get(phase_id)["status"] == "pending"
    assert db.context.get(item_id)["state"] == "active"


def test_project_limit(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(max_projects=2)) as db:
        db.projects.create("a")
        db.projects.create("b")
        with pytest.raises(TooManyProjectsError, match="max_projects"):
            db.projects.create("c")
        assert len(db.projects.list(include_archived=True)) == 2


def test_archived_projects_do_not_count_against_the_limit(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(max_projects=2)) as db:
        first = db.projects.create("a")["project_id"]
        db.projects.create("b")
        db.projects.archive(first)
        third = db.projects.create("c")
        assert third["status"] == "active"
        with pytest.raises(TooManyProjectsError):
            db.projects.create("d")
        assert len(db.projects.list()) == 2
        assert len(db.projects.list(include_archived=True)) == 3


def test_summary_after_a_scripted_scenario(db: Ctxdb) -> None:
    alpha = db.projects.create("Alpha", total_story_points=50)["project_id"]
    beta = db.projects.create("Beta")["project_id"]
    archived = db.projects.create("Old")["project_id"]
    db.projects.update(alpha, completed_story_points=20)

    working = db.instances.launch(alpha, context_window=10_000)["instance_id"]
    waiting = db.instances.launch(alpha, context_window=10_000)["instance_id"]
    idle = db.instances.launch(alpha, context_window=10_000)["instance_id"]
    done = db.instances.launch(alpha, context_window=10_000)["instance_id"]
    db.tokens.update_usage(working, 1_200)
    db.tokens.update_usage(waiting, 300)
    db.tokens.update_usage(idle, 5_000)  # idle: not an active instance
    db.tokens.update_usage(done, 7_000)  # ended: not counted either
    db.instances.set_status(idle, "idle")
    db.instances.end(done)

    kept = db.context.store(alpha, "keep 1", "HIGH")
    db.context.store(alpha, "keep 2", "LOW")
    deleted = db.context.store(alpha, "deleted", "MEDIUM")
    db.context.delete(deleted["item_id"])
    db.context.supersede(kept["item_id"], "keep 1, revised")  # old leaves, new counts
    db.context.store(beta, "beta item", "CRITICAL")
    db.projects.archive(archived)

    summary = {row["project_id"]: row for row in db.projects.summary()}
    assert set(summary) == {alpha, beta}
    expected_keys = {"project_id", "name", "total_story_points", "completed_story_points",
                     "active_instances", "context_items", "total_snapshots", "total_tokens",
                     "created_at", "updated_at"}
    assert set(summary[alpha]) == expected_keys
    assert summary[alpha]["name"] == "Alpha"
    assert summary[alpha]["total_story_points"] == 50
    assert summary[alpha]["completed_story_points"] == 20
    assert summary[alpha]["active_instances"] == 2
    assert summary[alpha]["context_items"] == summary[alpha]["total_snapshots"] == 2
    assert summary[alpha]["total_tokens"] == 1_500
    assert summary[beta]["active_instances"] == 0
    assert summary[beta]["total_snapshots"] == 1
    assert summary[beta]["total_tokens"] == 0


def test_every_project_mutation_is_audited(db: Ctxdb) -> None:
    project_id = db.projects.create("Audited", actor="user:alice")["project_id"]
    db.projects.update(project_id, name="Audited 2", completed_story_points=3)
    db.projects.archive(project_id, actor="user:bob")
    rows = list(reversed(db.audit_log(project_id=project_id)))
    assert [row["action"] for row in rows] == [
        "project.create", "project.update", "project.archive",
    ]
    assert all(row["entity_type"] == "project" and row["entity_id"] == project_id
               for row in rows)
    assert [row["actor"] for row in rows] == ["user:alice", "user:test", "user:bob"]
    assert rows[0]["details"] == {"name": "Audited"}
    assert rows[1]["details"] == {"changes": ["completed_story_points", "name"]}
    assert all(row["occurred_at"].endswith("Z") for row in rows)


def test_failed_creation_leaves_no_audit_row(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(max_projects=1)) as db:
        db.projects.create("only")
        before = db.audit_log()
        with pytest.raises(TooManyProjectsError):
            db.projects.create("one too many")
        assert db.audit_log() == before
