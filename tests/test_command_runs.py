"""CommandService on both backends: queue, start, finish, cancel, record; status only moves
forward; refusals; audit rows."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ctxdb.errors import (
    CommandRunNotFoundError,
    ConflictError,
    ContentTooLargeError,
    IdempotencyConflictError,
    InstanceNotFoundError,
    InvalidContentError,
    InvalidStatusError,
    InvalidTransitionError,
    ProjectNotFoundError,
    StorageError,
    ValidationError,
)
from ctxdb.service import Ctxdb


@pytest.fixture
def agent(db: Ctxdb, pid: str) -> str:
    return str(db.instances.launch(pid, instance_id="builder-1")["instance_id"])


def actions(db: Ctxdb, run_id: int) -> list[str]:
    return [row["action"] for row in reversed(db.audit_log(entity_id=str(run_id)))
            if row["entity_type"] == "command_run"]


def test_queue_start_finish(db: Ctxdb, pid: str, agent: str) -> None:
    run = db.commands.queue(pid, "pytest", ["-q", "tests/"], cwd="/src/shop",
                            instance_id=agent)
    assert (run["status"], run["command"], run["arguments"], run["cwd"]) == (
        "queued", "pytest", ["-q", "tests/"], "/src/shop")
    assert (run["instance_id"], run["created_by"], run["output"], run["exit_code"]) == (
        agent, agent, "", None)
    assert run["queued_at"] and run["started_at"] is None and run["finished_at"] is None
    running = db.commands.start(run["run_id"])
    assert running["status"] == "running" and running["started_at"] >= running["queued_at"]
    time.sleep(0.05)
    done = db.commands.finish(run["run_id"], exit_code=0, output="3 passed\n")
    assert (done["status"], done["exit_code"], done["output"], done["error"]) == (
        "success", 0, "3 passed\n", None)
    assert done["finished_at"] >= done["started_at"]
    assert done["duration_ms"] is not None and done["duration_ms"] >= 40
    assert db.commands.get(run["run_id"], project_id=pid) == done
    assert actions(db, run["run_id"]) == ["command.queue", "command.start", "command.finish"]


def test_exit_code_decides_the_status_unless_given(db: Ctxdb, pid: str) -> None:
    failed = db.commands.finish(db.commands.queue(pid, "make")["run_id"], exit_code=2,
                                error="exit status 2", duration_ms=1234)
    assert (failed["status"], failed["exit_code"], failed["error"], failed["duration_ms"]) == (
        "failed", 2, "exit status 2", 1234)
    assert failed["started_at"] is None  # finished straight from the queue: it never ran
    forced = db.commands.finish(db.commands.queue(pid, "lint")["run_id"], exit_code=1,
                                status="success")
    assert (forced["status"], forced["duration_ms"]) == ("success", None)
    no_code = db.commands.finish(db.commands.queue(pid, "x")["run_id"], status="failed",
                                 error="command not found")
    assert (no_code["status"], no_code["exit_code"]) == ("failed", None)


def test_cancel_keeps_the_output(db: Ctxdb, pid: str) -> None:
    queued = db.commands.cancel(db.commands.queue(pid, "deploy")["run_id"], error="superseded")
    assert (queued["status"], queued["error"], queued["duration_ms"]) == (
        "cancelled", "superseded", None)
    run_id = db.commands.queue(pid, "serve")["run_id"]
    db.commands.start(run_id)
    cancelled = db.commands.cancel(run_id)
    assert cancelled["status"] == "cancelled" and cancelled["duration_ms"] is not None
    assert actions(db, run_id) == ["command.queue", "command.start", "command.cancel"]


@pytest.mark.parametrize("final", ["success", "failed", "cancelled"])
def test_a_finished_run_never_changes(db: Ctxdb, pid: str, final: str) -> None:
    run_id = db.commands.queue(pid, "pytest")["run_id"]
    db.commands.start(run_id)
    if final == "cancelled":
        ended = db.commands.cancel(run_id)
    else:
        ended = db.commands.finish(run_id, exit_code=0 if final == "success" else 1)
    for again in (lambda: db.commands.start(run_id),
                  lambda: db.commands.finish(run_id, exit_code=0),
                  lambda: db.commands.finish(run_id, status="failed"),
                  lambda: db.commands.cancel(run_id)):
        with pytest.raises(InvalidTransitionError, match=f"already ended \\({final}\\)|not "
                                                         "queued"):
            again()
    assert db.commands.get(run_id) == ended
    assert len(actions(db, run_id)) == 3


def test_a_running_run_cannot_start_again(db: Ctxdb, pid: str) -> None:
    run_id = db.commands.queue(pid, "pytest")["run_id"]
    db.commands.start(run_id)
    with pytest.raises(InvalidTransitionError, match="is running, not queued"):
        db.commands.start(run_id)
    assert db.commands.get(run_id)["status"] == "running"


def test_record_a_finished_run_in_one_step(db: Ctxdb, pid: str, agent: str) -> None:
    run = db.commands.record(pid, "npm", ["test"], exit_code=1, output="1 failing",
                             error="exit status 1", duration_ms=2500, instance_id=agent)
    assert (run["status"], run["exit_code"], run["duration_ms"], run["output"]) == (
        "failed", 1, 2500, "1 failing")
    assert run["started_at"] < run["finished_at"] and run["queued_at"] == run["started_at"]
    unknown_time = db.commands.record(pid, "true", exit_code=0)
    assert (unknown_time["status"], unknown_time["started_at"],
            unknown_time["duration_ms"]) == ("success", None, None)
    assert unknown_time["finished_at"] is not None
    assert actions(db, run["run_id"]) == ["command.record"]
    with pytest.raises(InvalidTransitionError):
        db.commands.finish(run["run_id"], exit_code=0)


def test_creating_is_idempotent_by_key(db: Ctxdb, pid: str) -> None:
    first = db.commands.queue(pid, "pytest", ["-q"], idempotency_key="ci-42")
    assert db.commands.queue(pid, "pytest", ["-q"], idempotency_key="ci-42") == first
    # The retry of a queued run that has started since finds it as it is now.
    started = db.commands.start(first["run_id"])
    assert db.commands.queue(pid, "pytest", ["-q"], idempotency_key="ci-42") == started
    for other in (("other", ["-q"]), ("pytest", ["-x"])):
        with pytest.raises(IdempotencyConflictError) as refused:
            db.commands.record(pid, *other, exit_code=0, idempotency_key="ci-42")
        assert refused.value.details["run_id"] == first["run_id"]
    assert refused.value.details["fields"] == ["arguments"]
    assert [r["run_id"] for r in db.commands.list(pid)] == [first["run_id"]]


def test_list_filters_and_pages_without_output(db: Ctxdb, pid: str, agent: str) -> None:
    a = db.commands.record(pid, "pytest", exit_code=0, output="big", instance_id=agent)
    b = db.commands.queue(pid, "ruff")
    c = db.commands.record(pid, "pytest", exit_code=1)
    listed = db.commands.list(pid)
    assert [r["run_id"] for r in listed] == [a["run_id"], b["run_id"], c["run_id"]]
    assert "output" not in listed[0]
    assert [r["run_id"] for r in db.commands.list(pid, command="pytest")] == [
        a["run_id"], c["run_id"]]
    assert [r["run_id"] for r in db.commands.list(pid, status="queued")] == [b["run_id"]]
    assert [r["run_id"] for r in db.commands.list(pid, instance_id=agent)] == [a["run_id"]]
    assert [r["run_id"] for r in db.commands.list(pid, after=a["run_id"], limit=1)] == [
        b["run_id"]]


def test_unknown_and_cross_project_ids_are_refused(db: Ctxdb, pid: str) -> None:
    other = db.projects.create("Other")["project_id"]
    foreign = db.commands.queue(other, "make")["run_id"]
    stranger = db.instances.launch(other, instance_id="stranger")["instance_id"]
    with pytest.raises(CommandRunNotFoundError):
        db.commands.get(999_999)
    with pytest.raises(CommandRunNotFoundError):
        db.commands.get(foreign, project_id=pid)
    with pytest.raises(CommandRunNotFoundError):
        db.commands.start(foreign, project_id=pid)
    with pytest.raises(CommandRunNotFoundError):
        db.commands.finish(foreign, exit_code=0, project_id=pid)
    with pytest.raises(CommandRunNotFoundError):
        db.commands.cancel(999_999)
    with pytest.raises(ProjectNotFoundError):
        db.commands.queue("proj_unknown", "make")
    with pytest.raises(ProjectNotFoundError):
        db.commands.list("proj_unknown")
    with pytest.raises(InstanceNotFoundError):
        db.commands.record(pid, "make", exit_code=0, instance_id="nobody")
    with pytest.raises(ValidationError, match="belongs to project"):
        db.commands.queue(pid, "make", instance_id=stranger)
    assert db.commands.list(pid) == []
    assert db.commands.get(foreign)["status"] == "queued"


def test_an_archived_project_refuses_writes(db: Ctxdb, pid: str) -> None:
    run_id = db.commands.queue(pid, "make")["run_id"]
    db.projects.archive(pid)
    with pytest.raises(InvalidTransitionError, match="archived"):
        db.commands.queue(pid, "make")
    with pytest.raises(InvalidTransitionError, match="archived"):
        db.commands.start(run_id)
    with pytest.raises(InvalidTransitionError, match="archived"):
        db.commands.record(pid, "make", exit_code=0)
    assert [r["status"] for r in db.commands.list(pid)] == ["queued"]


@pytest.mark.parametrize("call, error", [
    (lambda db, pid: db.commands.queue(pid, ""), ValidationError),
    (lambda db, pid: db.commands.queue(pid, "make", "all"), ValidationError),
    (lambda db, pid: db.commands.queue(pid, "make", {"a": 1}), ValidationError),
    (lambda db, pid: db.commands.queue(pid, "make", [object()]), InvalidContentError),
    (lambda db, pid: db.commands.queue(pid, "make", ["\x00"]), InvalidContentError),
    (lambda db, pid: db.commands.queue(pid, "make", cwd=3), ValidationError),
    (lambda db, pid: db.commands.record(pid, "make"), ValidationError),
    (lambda db, pid: db.commands.record(pid, "make", status="running"), InvalidStatusError),
    (lambda db, pid: db.commands.record(pid, "make", exit_code="0"), ValidationError),
    (lambda db, pid: db.commands.record(pid, "make", exit_code=2**40), ValidationError),
    (lambda db, pid: db.commands.record(pid, "make", exit_code=0, duration_ms=-1),
     ValidationError),
    (lambda db, pid: db.commands.record(pid, "make", exit_code=0, output="a\x00b"),
     ValidationError),
    (lambda db, pid: db.commands.finish(1), ValidationError),
    (lambda db, pid: db.commands.finish(1, status="queued"), InvalidStatusError),
    (lambda db, pid: db.commands.finish(1, exit_code=True), ValidationError),
    (lambda db, pid: db.commands.finish(1, exit_code=0, error=5), ValidationError),
    (lambda db, pid: db.commands.start(0), ValidationError),
    (lambda db, pid: db.commands.list(pid, status="done"), InvalidStatusError),
    (lambda db, pid: db.commands.list(pid, limit=1001), ValidationError),
])
def test_bad_input_is_refused_and_changes_nothing(db: Ctxdb, pid: str, call: Any,
                                                  error: type[Exception]) -> None:
    assert db.commands.queue(pid, "make")["run_id"] == 1  # the id the calls name
    before = (db.commands.list(pid), len(db.audit_log(pid)))
    with pytest.raises(error):
        call(db, pid)
    assert (db.commands.list(pid), len(db.audit_log(pid))) == before


def test_output_over_the_limit_is_refused(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(max_content_bytes=1000)) as db:
        pid = db.projects.create("Small")["project_id"]
        run_id = db.commands.queue(pid, "make")["run_id"]
        with pytest.raises(ValidationError, match="longer than 1000"):
            db.commands.finish(run_id, exit_code=0, output="x" * 1001)
        with pytest.raises(ContentTooLargeError):
            db.commands.queue(pid, "make", ["x" * 2000])
        assert db.commands.get(run_id)["status"] == "queued"


@pytest.mark.parametrize("arguments", ["{not json", '{"a": 1}', '"text"'])
def test_the_database_itself_refuses_arguments_that_are_not_a_json_array(
    db: Ctxdb, pid: str, arguments: str
) -> None:
    def raw_insert(tx: Any) -> None:
        tx.execute("insert_command_run", project_id=pid, instance_id=None, command="make",
                   arguments=arguments, cwd=None, status="queued", exit_code=None, output="",
                   error=None, duration_ms=None, created_by="x", idempotency_key="k",
                   duration_seconds=None)

    with pytest.raises((ConflictError, StorageError)):
        db.storage.write(raw_insert)
    assert db.commands.list(pid) == []
