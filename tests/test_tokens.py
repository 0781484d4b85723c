"""Token usage and the clear-and-reload cycle with its handoff."""

from __future__ import annotations

from typing import Any

import pytest

from ctxdb.errors import (
    BudgetExceededError,
    InstanceNotFoundError,
    InvalidTransitionError,
    ProjectNotFoundError,
    TokenUsageOutOfRangeError,
    ValidationError,
)
from ctxdb.service import Ctxdb


def launch(db: Ctxdb, project_id: str, window: int = 1_000) -> str:
    return str(db.instances.launch(project_id, context_window=window)["instance_id"])


# --- usage ---------------------------------------------------------------------------------


def test_update_usage_within_the_instance_window(db: Ctxdb, project: dict[str, Any]) -> None:
    small = launch(db, project["project_id"], 1_000)
    large = launch(db, project["project_id"], 500_000)
    assert db.tokens.update_usage(small, 1_000)["current_token_usage"] == 1_000
    audit_before = db.audit_log()
    with pytest.raises(TokenUsageOutOfRangeError, match=r"1001 is outside 0\.\.1000"):
        db.tokens.update_usage(small, 1_001)
    with pytest.raises(TokenUsageOutOfRangeError):
        db.tokens.update_usage(small, -1)
    assert db.audit_log() == audit_before
    assert db.tokens.check_usage(small)["current_token_usage"] == 1_000
    # 200,000 is only a default: a larger window accepts more.
    assert db.tokens.update_usage(large, 350_000)["current_token_usage"] == 350_000


@pytest.mark.parametrize("bad", [1.5, "100", None, True])
def test_update_usage_needs_an_integer(db: Ctxdb, project: dict[str, Any], bad: Any) -> None:
    instance_id = launch(db, project["project_id"])
    with pytest.raises(TokenUsageOutOfRangeError, match="integer"):
        db.tokens.update_usage(instance_id, bad)


def test_update_usage_is_audited(db: Ctxdb, project: dict[str, Any]) -> None:
    instance_id = launch(db, project["project_id"])
    db.tokens.update_usage(instance_id, 100)
    db.tokens.update_usage(instance_id, 250)
    row = db.audit_log(entity_id=instance_id)[0]
    assert (row["action"], row["actor"]) == ("tokens.update", instance_id)
    assert row["details"] == {"previous": 100, "current": 250}


def test_check_usage(db: Ctxdb, project: dict[str, Any]) -> None:
    instance_id = launch(db, project["project_id"], 8_000)
    db.tokens.update_usage(instance_id, 2_000)
    usage = db.tokens.check_usage(instance_id)
    assert usage == {
        "instance_id": instance_id,
        "project_id": project["project_id"],
        "current_token_usage": 2_000,
        "context_window": 8_000,
        "percentage": 25.0,
        "tokens_remaining": 6_000,
        "generation": 0,
    }
    with pytest.raises(InstanceNotFoundError):
        db.tokens.check_usage("inst_ghost")


def test_all_usage_flags_warning_at_the_threshold(db: Ctxdb) -> None:
    alpha = db.projects.create("alpha")["project_id"]
    beta = db.projects.create("beta")["project_id"]
    below = launch(db, alpha, 1_000)
    at = launch(db, alpha, 1_000)
    above = launch(db, beta, 1_000)
    ended = launch(db, alpha, 1_000)
    db.tokens.update_usage(below, 849)
    db.tokens.update_usage(at, 850)  # the default threshold is 0.85
    db.tokens.update_usage(above, 990)
    db.tokens.update_usage(ended, 999)
    db.instances.end(ended)  # only live instances are reported
    report = db.tokens.all_usage()
    status = {i["instance_id"]: i["status"] for i in report["instances"]}
    assert status == {below: "healthy", at: "warning", above: "warning"}
    assert report["total_instances"] == 3
    assert report["total_tokens_used"] == 849 + 850 + 990
    assert report["average_usage"] == pytest.approx((849 + 850 + 990) / 3)
    assert {i["instance_status"] for i in report["instances"]} == {"active"}
    alpha_only = db.tokens.all_usage(alpha)
    assert {i["instance_id"] for i in alpha_only["instances"]} == {below, at}
    empty = db.tokens.all_usage(db.projects.create("empty")["project_id"])
    assert empty == {"instances": [], "total_instances": 0, "total_tokens_used": 0,
                     "average_usage": 0.0}


# --- clear and reload ------------------------------------------------------------------------


def seed_context(db: Ctxdb, project_id: str) -> dict[str, int]:
    """Items of every priority; returns how many of each are live."""
    for n in range(2):
        db.context.store(project_id, f"rule {n}", "CRITICAL", token_count=10)
    for n in range(3):
        db.context.store(project_id, f"note {n}", "HIGH", token_count=10)
    db.context.store(project_id, "medium", "MEDIUM", token_count=10)
    gone = db.context.store(project_id, "gone", "LOW", token_count=10)
    db.context.delete(gone["item_id"])
    for n in range(4):
        db.context.store(project_id, f"low {n}", "LOW", token_count=10)
    return {"CRITICAL": 2, "HIGH": 3, "MEDIUM": 1, "LOW": 4}


def test_clear_and_reload(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    live = seed_context(db, project_id)
    instance_id = launch(db, project_id, 1_000)
    db.tokens.update_usage(instance_id, 900)
    result = db.tokens.clear_and_reload(
        instance_id, summary="refactored the parser", next_steps=["write tests", "ship"],
        working_set={"files": ["parser.py"]},
    )
    assert result["instance_id"] == instance_id
    assert result["project_id"] == project_id
    assert (result["tokens_before"], result["tokens_after"]) == (900, 0)
    assert result["generation"] == 1
    assert result["status"] == "ready"
    # The default budget is a quarter of the 1,000-token window: 250 tokens, all 10 items fit.
    assert result["manifest"]["budget"] == 250
    assert result["context_items_loaded"] == sum(live.values()) == len(result["items"])
    assert result["critical_items"] == live["CRITICAL"]
    assert result["high_items"] == live["HIGH"]
    assert result["medium_items"] == live["MEDIUM"]
    assert result["low_items"] == live["LOW"]
    handoff = result["handoff"]
    assert handoff["summary"] == "refactored the parser"
    assert handoff["next_steps"] == ["write tests", "ship"]
    assert handoff["working_set"] == {"files": ["parser.py"]}
    assert (handoff["generation"], handoff["tokens_before"]) == (0, 900)
    assert (handoff["kind"], handoff["instance_id"]) == ("clear", instance_id)
    usage = db.tokens.check_usage(instance_id)
    assert (usage["current_token_usage"], usage["generation"]) == (0, 1)
    assert db.tokens.latest_handoff(instance_id=instance_id) == handoff
    row = db.audit_log(entity_id=instance_id)[0]
    assert row["action"] == "tokens.clear_and_reload"
    assert row["details"] == {"tokens_before": 900, "generation": 1,
                              "handoff_id": handoff["handoff_id"]}


def test_clear_and_reload_with_a_small_budget(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    seed_context(db, project_id)
    instance_id = launch(db, project_id)
    result = db.tokens.clear_and_reload(instance_id, budget_tokens=45, kind="compact")
    assert (result["critical_items"], result["high_items"]) == (2, 2)
    assert result["medium_items"] == result["low_items"] == 0
    assert result["manifest"]["used"] == 40
    assert result["handoff"]["kind"] == "compact"


def test_generations_count_up(db: Ctxdb, project: dict[str, Any]) -> None:
    instance_id = launch(db, project["project_id"])
    for generation in range(3):
        db.tokens.update_usage(instance_id, 100 * (generation + 1))
        result = db.tokens.clear_and_reload(instance_id, summary=f"gen {generation}")
        assert result["generation"] == generation + 1
        assert result["handoff"]["generation"] == generation
    latest = db.tokens.latest_handoff(instance_id=instance_id)
    assert latest is not None
    assert (latest["summary"], latest["tokens_before"]) == ("gen 2", 300)


def store_critical(db: Ctxdb, project_id: str, tokens: list[int]) -> list[int]:
    return [int(db.context.store(project_id, f"rule {n}", "CRITICAL", token_count=count)
                ["item_id"]) for n, count in enumerate(tokens)]


def test_clear_and_reload_carries_the_critical_items_that_fit(
    db: Ctxdb, project: dict[str, Any]
) -> None:
    """CRITICAL alone over the reload budget: the clear happens all the same; the reload
    carries, in sequence order, each CRITICAL item that fits what is left, and names the rest
    in the result and the manifest. Nothing of a lower priority takes the budget meanwhile."""
    project_id = project["project_id"]
    # The budget is 250 (a quarter of 1,000): 100 fits, 200 not, 100 fits, 60 not.
    first, big, third, last = store_critical(db, project_id, [100, 200, 100, 60])
    high = db.context.store(project_id, "tiny", "HIGH", token_count=1)["item_id"]
    instance_id = launch(db, project_id, 1_000)
    db.tokens.update_usage(instance_id, 700)
    result = db.tokens.clear_and_reload(instance_id, summary="still going")
    assert (result["tokens_before"], result["tokens_after"], result["generation"]) == (700, 0, 1)
    assert result["status"] == "ready"
    assert [item["item_id"] for item in result["items"]] == [first, third]
    assert (result["context_items_loaded"], result["critical_items"]) == (2, 2)
    assert result["high_items"] == 0
    numbers = {i["item_id"]: db.context.get(i["item_id"])["sequence_number"]
               for i in result["critical_omitted"]}
    assert [(i["item_id"], i["sequence_number"], i["token_count"])
            for i in result["critical_omitted"]] == [(big, numbers[big], 200),
                                                     (last, numbers[last], 60)]
    manifest = result["manifest"]
    assert (manifest["budget"], manifest["used"]) == (250, 200)
    assert manifest["omitted"] == [
        {"item_id": big, "priority": "CRITICAL", "token_count": 200,
         "reason": "critical_over_budget"},
        {"item_id": last, "priority": "CRITICAL", "token_count": 60,
         "reason": "critical_over_budget"},
    ]
    assert manifest["stopped"] is not None
    assert (manifest["stopped"]["priority"], manifest["stopped"]["reason"]) == (
        "CRITICAL", "critical_over_budget")
    assert manifest["stopped"]["needed"] == 460
    assert high not in {e["item_id"] for e in manifest["included"] + manifest["omitted"]}
    usage = db.tokens.check_usage(instance_id)
    assert (usage["current_token_usage"], usage["generation"]) == (0, 1)
    handoff = db.tokens.latest_handoff(instance_id=instance_id)
    assert handoff is not None and handoff == result["handoff"]
    assert (handoff["summary"], handoff["tokens_before"]) == ("still going", 700)
    assert db.audit_log(entity_id=instance_id)[0]["action"] == "tokens.clear_and_reload"
    # An explicit pack of that budget still refuses to cut CRITICAL short.
    with pytest.raises(BudgetExceededError, match="needs 460 tokens, over the budget of 250"):
        db.context.pack(project_id, 250)


def test_the_cycle_repeats_while_critical_exceeds_the_reload_budget(
    db: Ctxdb, project: dict[str, Any]
) -> None:
    """The seed's endless cycle: work to 95%, auto-manage, again and again."""
    project_id = project["project_id"]
    kept = store_critical(db, project_id, [30_000, 30_000, 15_000])  # 75,000 > 50,000
    instance_id = launch(db, project_id, 200_000)
    reloads = []
    for generation in range(1, 6):
        db.tokens.update_usage(instance_id, 190_000)
        result = db.tokens.auto_manage(instance_id, summary=f"round {generation}")
        assert result is not None
        assert (result["tokens_before"], result["tokens_after"]) == (190_000, 0)
        assert result["generation"] == generation
        assert result["handoff"]["summary"] == f"round {generation}"
        reloads.append(([i["item_id"] for i in result["items"]],
                        [i["item_id"] for i in result["critical_omitted"]]))
    assert reloads == [([kept[0], kept[2]], [kept[1]])] * 5
    assert db.tokens.check_usage(instance_id)["current_token_usage"] == 0


def test_clear_and_reload_names_nothing_when_everything_fits(
    db: Ctxdb, project: dict[str, Any]
) -> None:
    project_id = project["project_id"]
    store_critical(db, project_id, [100, 150])
    result = db.tokens.clear_and_reload(launch(db, project_id, 1_000))
    assert result["critical_omitted"] == []
    assert result["critical_items"] == 2 and result["manifest"]["stopped"] is None


def test_clear_and_reload_of_an_ended_instance(db: Ctxdb, project: dict[str, Any]) -> None:
    instance_id = launch(db, project["project_id"])
    db.instances.end(instance_id)
    with pytest.raises(InvalidTransitionError, match="has ended"):
        db.tokens.clear_and_reload(instance_id)
    assert db.tokens.latest_handoff(instance_id=instance_id) is None


def test_clear_and_reload_refuses_bad_arguments(db: Ctxdb, project: dict[str, Any]) -> None:
    instance_id = launch(db, project["project_id"])
    with pytest.raises(ValidationError, match="handoff kind"):
        db.tokens.clear_and_reload(instance_id, kind="nap")
    with pytest.raises(ValidationError, match="budget_tokens"):
        db.tokens.clear_and_reload(instance_id, budget_tokens=-5)
    with pytest.raises(InstanceNotFoundError):
        db.tokens.clear_and_reload("inst_ghost")
    assert db.tokens.check_usage(instance_id)["generation"] == 0


def test_auto_manage(db: Ctxdb, project: dict[str, Any]) -> None:
    instance_id = launch(db, project["project_id"], 1_000)
    db.tokens.update_usage(instance_id, 849)
    assert db.tokens.auto_manage(instance_id) is None
    assert db.tokens.check_usage(instance_id)["generation"] == 0
    db.tokens.update_usage(instance_id, 850)
    result = db.tokens.auto_manage(instance_id, summary="auto")
    assert result is not None
    assert (result["tokens_before"], result["generation"]) == (850, 1)
    assert result["handoff"]["summary"] == "auto"
    assert db.tokens.check_usage(instance_id)["current_token_usage"] == 0
    db.tokens.update_usage(instance_id, 500)
    assert db.tokens.auto_manage(instance_id, threshold=0.6) is None
    assert db.tokens.auto_manage(instance_id, threshold=0.5) is not None
    for bad in (0, 1.5, "0.5", True):
        with pytest.raises(ValidationError, match="threshold"):
            db.tokens.auto_manage(instance_id, threshold=bad)


def test_auto_manage_follows_the_configured_threshold(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(clear_threshold=0.5)) as db:
        project_id = db.projects.create("alpha")["project_id"]
        instance_id = launch(db, project_id, 1_000)
        db.tokens.update_usage(instance_id, 500)
        assert db.tokens.all_usage()["instances"][0]["status"] == "warning"
        assert db.tokens.auto_manage(instance_id) is not None


@pytest.mark.parametrize(("threshold", "window"), [(0.55, 200_000), (0.07, 100_000)])
def test_threshold_is_reached_exactly_where_written(
    make_settings: Any, threshold: float, window: int
) -> None:
    # In binary floating point threshold * window lands just above the exact product.
    at = round(threshold * 100) * window // 100
    with Ctxdb.open(make_settings(clear_threshold=threshold)) as db:
        project_id = db.projects.create("alpha")["project_id"]
        instance_id = launch(db, project_id, window)
        db.tokens.update_usage(instance_id, at - 1)
        assert db.tokens.all_usage()["instances"][0]["status"] == "healthy"
        assert db.tokens.auto_manage(instance_id) is None
        db.tokens.update_usage(instance_id, at)
        assert db.tokens.all_usage()["instances"][0]["status"] == "warning"
        result = db.tokens.auto_manage(instance_id)
        assert result is not None and result["tokens_before"] == at


def test_latest_handoff(db: Ctxdb) -> None:
    alpha = db.projects.create("alpha")["project_id"]
    first = launch(db, alpha)
    second = launch(db, alpha)
    assert db.tokens.latest_handoff(project_id=alpha) is None
    db.tokens.clear_and_reload(first, summary="one")
    db.tokens.clear_and_reload(second, summary="two")
    db.tokens.clear_and_reload(first, summary="three")
    by_project = db.tokens.latest_handoff(project_id=alpha)
    by_second = db.tokens.latest_handoff(instance_id=second)
    assert by_project is not None and by_project["summary"] == "three"
    assert by_second is not None and by_second["summary"] == "two"
    with pytest.raises(ValidationError, match="give instance_id or project_id"):
        db.tokens.latest_handoff()
    scoped = db.tokens.latest_handoff(instance_id=second, project_id=alpha)
    assert scoped is not None and scoped["summary"] == "two"
    beta = db.projects.create("beta")["project_id"]
    with pytest.raises(ValidationError, match=f"belongs to project {alpha!r}, not {beta!r}"):
        db.tokens.latest_handoff(instance_id=first, project_id=beta)
    with pytest.raises(InstanceNotFoundError):
        db.tokens.latest_handoff(instance_id="inst_ghost")
    with pytest.raises(ProjectNotFoundError, match="proj_void"):
        db.tokens.latest_handoff(project_id="proj_void")


def test_usage_of_an_unknown_project(db: Ctxdb) -> None:
    with pytest.raises(ProjectNotFoundError, match="proj_void"):
        db.tokens.all_usage("proj_void")
