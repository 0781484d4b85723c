"""Agent instances: launch, heartbeat, end, status, listing, limits, revival, stale detection."""

from __future__ import annotations

import os
import re
import socket
import time
from typing import Any

import pytest

from ctxdb.errors import (
    InstanceNotFoundError,
    InvalidStatusError,
    InvalidTransitionError,
    TooManyInstancesError,
    ValidationError,
)
from ctxdb.service import Ctxdb

INSTANCE_ID = re.compile(r"^inst_\d{8}_\d{6}_[0-9a-f]{12}$")
STALE = 0.05  # seconds; tests sleep a few times this long
NAP = 0.2


def instance_actions(db: Ctxdb, instance_id: str) -> list[str]:
    return [row["action"] for row in reversed(db.audit_log(entity_id=instance_id))]


def test_launch_defaults(db: Ctxdb, project: dict[str, Any]) -> None:
    launched = db.instances.launch(project["project_id"])
    assert INSTANCE_ID.match(launched["instance_id"]), launched["instance_id"]
    assert launched["project_id"] == project["project_id"]
    assert launched["status"] == "active"
    assert launched["client"] == "api"
    assert launched["hostname"] == socket.gethostname()
    assert launched["process_id"] == os.getpid()
    assert launched["context_window"] == db.settings.context_window == 200_000
    assert (launched["current_token_usage"], launched["generation"]) == (0, 0)
    assert launched["phase_id"] is None
    assert launched["ended_at"] is None
    assert launched["started_at"] == launched["last_heartbeat"]
    assert db.instances.get(launched["instance_id"]) == launched
    assert instance_actions(db, launched["instance_id"]) == ["instance.launch"]


def test_launch_with_fields(db: Ctxdb, project: dict[str, Any]) -> None:
    phase_id = db.phases.create(project["project_id"], 1, "Build")["phase_id"]
    launched = db.instances.launch(
        project["project_id"], phase_id, instance_id="inst_chosen", client="claude-code",
        session_id="sess-42", worktree="/src/app", branch="feature/x", model="opus",
        context_window=1_000, hostname="box", process_id=7, metadata={"role": "reviewer"},
        actor="user:carol",
    )
    assert launched["instance_id"] == "inst_chosen"
    assert launched["phase_id"] == phase_id
    assert launched["client"] == "claude-code"
    assert launched["session_id"] == "sess-42"
    assert launched["worktree"] == "/src/app"
    assert launched["branch"] == "feature/x"
    assert launched["model"] == "opus"
    assert launched["context_window"] == 1_000
    assert (launched["hostname"], launched["process_id"]) == ("box", 7)
    assert launched["metadata"] == {"role": "reviewer"}
    [row] = db.audit_log(entity_id="inst_chosen")
    assert row["actor"] == "user:carol"
    assert row["details"]["session_id"] == "sess-42"


def test_heartbeat_updates_time_and_phase(db: Ctxdb, project: dict[str, Any]) -> None:
    phase_id = db.phases.create(project["project_id"], 1, "Build")["phase_id"]
    launched = db.instances.launch(project["project_id"])
    time.sleep(0.01)
    beat = db.instances.heartbeat(launched["instance_id"], phase_id=phase_id)
    assert beat["last_heartbeat"] > launched["last_heartbeat"]
    assert beat["phase_id"] == phase_id
    again = db.instances.heartbeat(launched["instance_id"])
    assert again["phase_id"] == phase_id  # no phase given: the phase is kept
    assert instance_actions(db, launched["instance_id"]) == [
        "instance.launch", "instance.heartbeat", "instance.heartbeat"]


def test_end_marks_completed_and_refuses_heartbeats(db: Ctxdb, project: dict[str, Any]) -> None:
    instance_id = db.instances.launch(project["project_id"])["instance_id"]
    ended = db.instances.end(instance_id)
    assert ended["status"] == "completed"
    assert ended["ended_at"] is not None
    with pytest.raises(InvalidTransitionError, match="has ended"):
        db.instances.heartbeat(instance_id)
    with pytest.raises(InvalidTransitionError, match="cannot become active"):
        db.instances.set_status(instance_id, "active")
    assert db.instances.get(instance_id) == ended
    assert instance_actions(db, instance_id) == ["instance.launch", "instance.completed"]


def test_set_status(db: Ctxdb, project: dict[str, Any]) -> None:
    instance_id = db.instances.launch(project["project_id"])["instance_id"]
    idle = db.instances.set_status(instance_id, "IDLE")
    assert (idle["status"], idle["ended_at"]) == ("idle", None)
    crashed = db.instances.set_status(instance_id, "crashed")
    assert crashed["status"] == "crashed" and crashed["ended_at"] is not None
    revived = db.instances.heartbeat(instance_id)  # a crashed instance that beats lives again
    assert (revived["status"], revived["ended_at"]) == ("active", None)
    with pytest.raises(InvalidStatusError, match="sleeping"):
        db.instances.set_status(instance_id, "sleeping")
    assert db.instances.get(instance_id)["status"] == "active"


def test_unknown_instance(db: Ctxdb) -> None:
    for call in (db.instances.get, db.instances.heartbeat, db.instances.end):
        with pytest.raises(InstanceNotFoundError, match="inst_ghost"):
            call("inst_ghost")


def test_list_filters(db: Ctxdb) -> None:
    alpha = db.projects.create("alpha")["project_id"]
    beta = db.projects.create("beta")["project_id"]
    a1 = db.instances.launch(alpha)["instance_id"]
    a2 = db.instances.launch(alpha)["instance_id"]
    b1 = db.instances.launch(beta)["instance_id"]
    db.instances.end(a2)
    assert {i["instance_id"] for i in db.instances.list()} == {a1, a2, b1}
    assert {i["instance_id"] for i in db.instances.list(alpha)} == {a1, a2}
    assert [i["instance_id"] for i in db.instances.list(alpha, "completed")] == [a2]
    assert [i["instance_id"] for i in db.instances.list(status="active")] in ([a1, b1],
                                                                             [b1, a1])
    assert db.instances.list(beta, "idle") == []
    with pytest.raises(InvalidStatusError):
        db.instances.list(alpha, "zombie")


def test_instance_limit_per_project(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(max_instances_per_project=2)) as db:
        alpha = db.projects.create("alpha")["project_id"]
        beta = db.projects.create("beta")["project_id"]
        first = db.instances.launch(alpha)["instance_id"]
        db.instances.launch(alpha)
        audit_before = db.audit_log()
        with pytest.raises(TooManyInstancesError, match="max_instances_per_project"):
            db.instances.launch(alpha)
        assert db.audit_log() == audit_before
        assert len(db.instances.list(alpha)) == 2
        db.instances.launch(beta)  # the limit is per project
        db.instances.set_status(first, "idle")  # idle instances still count
        with pytest.raises(TooManyInstancesError):
            db.instances.launch(alpha)


@pytest.mark.parametrize("finish", ["crashed", "completed"])
def test_finished_instances_do_not_count(make_settings: Any, finish: str) -> None:
    with Ctxdb.open(make_settings(max_instances_per_project=1)) as db:
        project_id = db.projects.create("alpha")["project_id"]
        first = db.instances.launch(project_id)["instance_id"]
        db.instances.set_status(first, finish)
        second = db.instances.launch(project_id)
        assert second["status"] == "active"


def test_reregistering_revives_the_instance(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    instance_id = db.instances.launch(project_id, instance_id="inst_again")["instance_id"]
    db.tokens.update_usage(instance_id, 1234)
    db.instances.set_status(instance_id, "crashed")
    revived = db.instances.launch(project_id, instance_id=instance_id)
    assert (revived["status"], revived["ended_at"]) == ("active", None)
    assert revived["current_token_usage"] == 1234  # the same instance, not a new one
    assert len(db.instances.list(project_id)) == 1
    assert instance_actions(db, instance_id)[-1] == "instance.register"
    assert db.audit_log(entity_id=instance_id)[0]["details"] == {"previous_status": "crashed"}


def test_reregistering_an_ended_instance_revives_it(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    instance_id = db.instances.launch(project_id)["instance_id"]
    db.instances.end(instance_id)
    revived = db.instances.launch(project_id, instance_id=instance_id)
    assert (revived["status"], revived["ended_at"]) == ("active", None)
    assert db.instances.heartbeat(instance_id)["status"] == "active"


def test_reviving_respects_the_limit(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(max_instances_per_project=1)) as db:
        project_id = db.projects.create("alpha")["project_id"]
        old = db.instances.launch(project_id)["instance_id"]
        db.instances.set_status(old, "crashed")
        db.instances.launch(project_id)
        with pytest.raises(TooManyInstancesError):
            db.instances.launch(project_id, instance_id=old)
        assert db.instances.get(old)["status"] == "crashed"
        # Nor does a heartbeat or a status change bring it back over the limit.
        with pytest.raises(TooManyInstancesError):
            db.instances.heartbeat(old)
        for status in ("active", "idle"):
            with pytest.raises(TooManyInstancesError):
                db.instances.set_status(old, status)
        assert db.instances.get(old)["status"] == "crashed"
        assert db.instances.set_status(old, "completed")["status"] == "completed"


def test_instance_id_of_another_project_is_refused(db: Ctxdb) -> None:
    alpha = db.projects.create("alpha")["project_id"]
    beta = db.projects.create("beta")["project_id"]
    instance_id = db.instances.launch(alpha)["instance_id"]
    audit_before = db.audit_log()
    with pytest.raises(ValidationError, match=f"belongs to project {alpha!r}"):
        db.instances.launch(beta, instance_id=instance_id)
    assert db.instances.get(instance_id)["project_id"] == alpha
    assert db.instances.list(beta) == []
    assert db.audit_log() == audit_before


def test_reap_stale_marks_crashed_and_audits(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(stale_after=STALE)) as db:
        alpha = db.projects.create("alpha")["project_id"]
        beta = db.projects.create("beta")["project_id"]
        silent = db.instances.launch(alpha)["instance_id"]
        other = db.instances.launch(beta)["instance_id"]
        finished = db.instances.launch(alpha)["instance_id"]
        db.instances.end(finished)
        time.sleep(NAP)
        fresh = db.instances.launch(alpha)["instance_id"]  # launching reaps alpha's silent one
        assert db.instances.get(silent)["status"] == "crashed"
        assert db.instances.get(other)["status"] == "active"  # other projects are left alone
        reaped = {row["instance_id"] for row in db.instances.reap_stale()}
        # On a slow machine the fresh instance may have gone stale too by now.
        assert reaped - {fresh} == {other}
        assert db.instances.get(other)["status"] == "crashed"
        assert db.instances.get(other)["ended_at"] is not None
        assert db.instances.get(finished)["status"] == "completed"  # ended stays ended
        for instance_id in (silent, other):
            [row] = [r for r in db.audit_log(entity_id=instance_id)
                     if r["action"] == "instance.crashed"]
            assert row["actor"] == "user:test"
            assert row["details"]["stale_after"] == STALE
        if fresh not in reaped:
            db.instances.end(fresh)
        assert db.instances.reap_stale() == []  # nothing left to reap


def test_reap_stale_of_one_project(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(stale_after=STALE)) as db:
        alpha = db.projects.create("alpha")["project_id"]
        beta = db.projects.create("beta")["project_id"]
        a = db.instances.launch(alpha)["instance_id"]
        b = db.instances.launch(beta)["instance_id"]
        time.sleep(NAP)
        assert [row["instance_id"] for row in db.instances.reap_stale(alpha)] == [a]
        assert db.instances.get(b)["status"] == "active"


def test_heartbeats_keep_an_instance_alive(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(stale_after=0.5)) as db:
        project_id = db.projects.create("alpha")["project_id"]
        instance_id = db.instances.launch(project_id)["instance_id"]
        for _ in range(3):
            time.sleep(0.2)
            db.instances.heartbeat(instance_id)
        assert db.instances.reap_stale() == []
        assert db.instances.get(instance_id)["status"] == "active"


def test_launch_reaps_stale_instances_before_the_limit(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(stale_after=STALE, max_instances_per_project=1)) as db:
        project_id = db.projects.create("alpha")["project_id"]
        gone = db.instances.launch(project_id)["instance_id"]
        time.sleep(NAP)
        replacement = db.instances.launch(project_id)
        assert replacement["status"] == "active"
        assert db.instances.get(gone)["status"] == "crashed"
        assert "instance.crashed" in instance_actions(db, gone)


def test_largest_storable_context_window(db: Ctxdb, project: dict[str, Any]) -> None:
    largest = 2**31 - 1  # PostgreSQL's INTEGER; one more is refused before any SQL runs
    instance_id = db.instances.launch(project["project_id"],
                                      context_window=largest)["instance_id"]
    assert db.tokens.update_usage(instance_id, largest)["tokens_remaining"] == 0


def test_reviving_reaps_stale_instances_before_the_limit(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(stale_after=STALE, max_instances_per_project=1)) as db:
        project_id = db.projects.create("alpha")["project_id"]
        returning = db.instances.launch(project_id)["instance_id"]
        db.instances.end(returning)
        silent = db.instances.launch(project_id)["instance_id"]
        time.sleep(NAP)
        revived = db.instances.launch(project_id, instance_id=returning)
        assert revived["status"] == "active"
        assert db.instances.get(silent)["status"] == "crashed"


def test_a_launch_that_reaps_releases_the_leases(make_settings: Any) -> None:
    """The registration's reap (in one statement with the count on PostgreSQL: make_room)
    releases the silent instance's task lease and audits both; the reaped hold no room."""
    with Ctxdb.open(make_settings(stale_after=STALE, max_instances_per_project=2)) as db:
        project_id = db.projects.create("alpha")["project_id"]
        silent = [db.instances.launch(project_id)["instance_id"] for _ in range(2)]
        task_id = db.tasks.create(project_id, "lost")["task_id"]
        epoch = db.tasks.claim(project_id, silent[0], 600)["epoch"]  # type: ignore[index]
        time.sleep(NAP)
        db.instances.launch(project_id)  # room: both silent ones are reaped first
        assert [db.instances.get(i)["status"] for i in silent] == ["crashed", "crashed"]
        task = db.tasks.get(task_id)
        assert (task["status"], task["lease_owner"], task["epoch"]) == ("ready", None, epoch + 1)
        assert db.audit_log(entity_id=str(task_id))[0]["action"] == "task.release"
        assert all("instance.crashed" in instance_actions(db, i) for i in silent)
