"""The budgeted pack: the rules on examples, properties of the pure function, and the service.

The pure function ``pack_items`` gets many random examples (it is fast); the service gets a
few random projects per backend and is compared with a model of the documented order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ctxdb.domain.models import Priority
from ctxdb.domain.packing import CRITICAL_OVER_BUDGET, Pack, pack_items
from ctxdb.errors import BudgetExceededError, ProjectNotFoundError, ValidationError
from ctxdb.service import Ctxdb

TIERS = (Priority.HIGH, Priority.MEDIUM, Priority.LOW)


def ids(rows: list[Any]) -> list[int]:
    return [row["item_id"] for row in rows]


# --- the rules, through the service -------------------------------------------------------


def test_order_critical_then_tiers_current_phase_first_newest_first(
    db: Ctxdb, project: dict[str, Any]
) -> None:
    project_id = project["project_id"]
    current = db.phases.create(project_id, 2, "Current")["phase_id"]
    older = db.phases.create(project_id, 1, "Older")["phase_id"]
    db.phases.start(older)
    db.phases.start(current)  # the highest-numbered active phase is current

    def put(priority: str, phase: int | None = None) -> int:
        return int(db.context.store(project_id, priority, priority, phase_id=phase,
                                    token_count=10)["item_id"])

    low = put("LOW")
    c1 = put("CRITICAL", older)
    h_old_current = put("HIGH", current)
    h_none = put("HIGH")
    medium = put("MEDIUM", current)
    h_older = put("HIGH", older)
    c2 = put("CRITICAL")
    h_new_current = put("HIGH", current)
    pack = db.context.pack(project_id, 1_000)
    assert ids(pack.items) == [c1, c2, h_new_current, h_old_current, h_older, h_none,
                               medium, low]
    assert pack.manifest.used == 80
    assert pack.manifest.omitted == []
    assert pack.manifest.stopped is None
    assert pack.counts() == {"CRITICAL": 2, "HIGH": 4, "MEDIUM": 1, "LOW": 1}
    # Naming a phase ranks that phase first instead of the current one.
    named = db.context.pack(project_id, 1_000, phase_id=older)
    assert ids(named.items)[2:6] == [h_older, h_new_current, h_none, h_old_current]


def test_without_a_current_phase_newest_first(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    phase = db.phases.create(project_id, 1, "Pending")["phase_id"]  # not started
    made = [db.context.store(project_id, n, "HIGH", phase_id=phase if n % 2 else None,
                             token_count=1)["item_id"] for n in range(5)]
    assert ids(db.context.pack(project_id, 100).items) == made[::-1]


def test_items_that_do_not_fit_are_skipped_and_packing_goes_on(
    db: Ctxdb, project: dict[str, Any]
) -> None:
    project_id = project["project_id"]
    critical = db.context.store(project_id, "c", "CRITICAL", token_count=40)["item_id"]
    small_high = db.context.store(project_id, "h1", "HIGH", token_count=20)["item_id"]
    big_high = db.context.store(project_id, "h2", "HIGH", token_count=70)["item_id"]
    medium = db.context.store(project_id, "m", "MEDIUM", token_count=30)["item_id"]
    low = db.context.store(project_id, "l", "LOW", token_count=15)["item_id"]
    pack = db.context.pack(project_id, 100)
    assert ids(pack.items) == [critical, small_high, medium]
    manifest = pack.manifest.to_dict()
    assert manifest["budget"] == 100
    assert manifest["used"] == 90
    assert manifest["remaining"] == 10
    assert manifest["included"] == [
        {"item_id": critical, "priority": "CRITICAL", "token_count": 40},
        {"item_id": small_high, "priority": "HIGH", "token_count": 20},
        {"item_id": medium, "priority": "MEDIUM", "token_count": 30},
    ]
    assert manifest["omitted"] == [  # the newer HIGH item is examined first
        {"item_id": big_high, "priority": "HIGH", "token_count": 70,
         "reason": "exceeds_remaining_budget"},
        {"item_id": low, "priority": "LOW", "token_count": 15,
         "reason": "exceeds_remaining_budget"},
    ]
    assert manifest["stopped"] is None


def test_stops_when_the_budget_is_spent(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    db.context.store(project_id, "c", "CRITICAL", token_count=50)
    filler = db.context.store(project_id, "m", "MEDIUM", token_count=50)["item_id"]
    db.context.store(project_id, "l", "LOW", token_count=1)
    pack = db.context.pack(project_id, 100)
    assert ids(pack.items)[1:] == [filler]
    assert pack.manifest.used == 100
    assert pack.manifest.omitted == []  # the LOW item was never read
    assert pack.manifest.stopped == {"priority": "MEDIUM", "reason": "budget_spent",
                                     "note": "items after this point were not examined"}


def test_stops_after_too_many_misses(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    fits = db.context.store(project_id, "fits", "LOW", token_count=5)["item_id"]
    big = [db.context.store(project_id, n, "MEDIUM", token_count=500)["item_id"]
           for n in range(4)]
    pack = db.context.pack(project_id, 100, max_skips=3)
    assert pack.items == []
    assert ids(pack.manifest.omitted) == big[::-1][:3]
    assert pack.manifest.stopped is not None
    assert pack.manifest.stopped["priority"] == "MEDIUM"
    assert pack.manifest.stopped["reason"] == "too_many_misses"
    assert ids(db.context.pack(project_id, 100).items) == [fits]  # default: 64 misses


def test_critical_over_budget_is_an_error_and_changes_nothing(
    db: Ctxdb, project: dict[str, Any]
) -> None:
    project_id = project["project_id"]
    db.context.store(project_id, "a", "CRITICAL", token_count=60)
    db.context.store(project_id, "b", "CRITICAL", token_count=50)
    db.context.store(project_id, "h", "HIGH", token_count=1)
    audit_before = db.audit_log()
    full_before = db.context.full(project_id)
    with pytest.raises(BudgetExceededError, match="needs 110 tokens, over the budget of 100"):
        db.context.pack(project_id, 100)
    assert db.audit_log() == audit_before
    assert db.context.full(project_id) == full_before
    assert len(db.context.pack(project_id, 110).items) == 2  # exactly the budget is fine


def test_pack_of_an_empty_or_unknown_project(db: Ctxdb, project: dict[str, Any]) -> None:
    empty = db.context.pack(project["project_id"], 0)
    assert (empty.items, empty.manifest.used, empty.manifest.stopped) == ([], 0, None)
    with pytest.raises(ProjectNotFoundError):
        db.context.pack("proj_void", 10)
    with pytest.raises(ValidationError, match="budget_tokens"):
        db.context.pack(project["project_id"], -1)


def test_same_input_gives_the_same_pack(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    for n in range(30):
        db.context.store(project_id, {"n": n}, ("HIGH", "MEDIUM", "LOW", "CRITICAL")[n % 4],
                         token_count=(n * 7) % 23)
    first = db.context.pack(project_id, 150)
    second = db.context.pack(project_id, 150)
    assert first.items == second.items
    assert first.manifest.to_dict() == second.manifest.to_dict()


# --- properties of the pure function ------------------------------------------------------


class CountingStream:
    """Wraps rows so a test can see how many were read."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.read = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            self.read += 1
            yield row


def make_rows(priority: Priority, tokens: list[int], counter: itertools.count[int]
              ) -> list[dict[str, Any]]:
    rows = []
    for t in tokens:
        number = next(counter)
        rows.append({"item_id": number, "priority": priority.value, "token_count": t,
                     "sequence_number": number, "content_type": "note"})
    return rows


def check_pack(critical: list[dict[str, Any]], tiers: dict[Priority, list[dict[str, Any]]],
               budget: int, max_skips: int, pack: Pack, read: int) -> None:
    """Every property a pack of these inputs must have (``read``: tier rows consumed)."""
    manifest = pack.manifest
    # CRITICAL first, complete and in the given order.
    assert pack.items[:len(critical)] == critical
    assert manifest.used == sum(row["token_count"] for row in pack.items) <= budget
    assert [e["item_id"] for e in manifest.included] == ids(pack.items)
    assert {e["item_id"] for e in manifest.included}.isdisjoint(ids(manifest.omitted))
    assert all(e["reason"] == "exceeds_remaining_budget" for e in manifest.omitted)
    # Replay the decisions over the stream in preference order.
    stream = [row for priority in TIERS for row in tiers[priority]]
    included = set(ids(pack.items))
    omitted = set(ids(manifest.omitted))
    examined = [row for row in stream if row["item_id"] in included | omitted]
    assert examined == stream[:len(examined)], "only a prefix of the stream is examined"
    assert read == len(examined), "nothing is read past the point where packing stopped"
    used, misses = manifest.used - sum(row["token_count"] for row in stream
                                       if row["item_id"] in included), 0
    for position, row in enumerate(examined, 1):
        assert (row["item_id"] in included) == (row["token_count"] <= budget - used)
        if row["item_id"] in included:
            used, misses = used + row["token_count"], 0
        else:
            misses += 1
        if used >= budget or misses >= max_skips:  # a stop condition: nothing more is read
            assert position == len(examined)
            assert manifest.stopped is not None
    if manifest.stopped is None:
        assert len(examined) == len(stream)
    else:
        last = examined[-1]
        assert manifest.stopped["priority"] == last["priority"]
        expected = "budget_spent" if used >= budget else "too_many_misses"
        assert manifest.stopped["reason"] == expected
        assert used >= budget or misses == max_skips


token_lists = st.lists(st.integers(min_value=0, max_value=60), max_size=12)


@given(
    critical_tokens=st.lists(st.integers(min_value=0, max_value=60), max_size=5),
    tier_tokens=st.tuples(token_lists, token_lists, token_lists),
    budget=st.integers(min_value=0, max_value=400),
    max_skips=st.integers(min_value=1, max_value=6),
)
@hypothesis_settings(max_examples=300, deadline=None, database=None)
def test_pack_items_properties(
    critical_tokens: list[int], tier_tokens: tuple[list[int], list[int], list[int]],
    budget: int, max_skips: int,
) -> None:
    counter = itertools.count(1)
    critical = make_rows(Priority.CRITICAL, critical_tokens, counter)
    tiers = {p: make_rows(p, t, counter) for p, t in zip(TIERS, tier_tokens, strict=True)}

    def run() -> tuple[Pack, int]:
        streams = {p: CountingStream(rows) for p, rows in tiers.items()}
        pack = pack_items(iter(critical), ((p, streams[p]) for p in TIERS), budget, max_skips)
        return pack, sum(s.read for s in streams.values())

    needed = sum(critical_tokens)
    if needed > budget:
        with pytest.raises(BudgetExceededError) as raised:
            run()
        assert raised.value.details == {"needed": needed, "budget": budget}
        return
    pack, read = run()
    check_pack(critical, tiers, budget, max_skips, pack, read)
    again, _ = run()
    assert again.items == pack.items
    assert again.manifest.to_dict() == pack.manifest.to_dict()


@given(
    critical_tokens=st.lists(st.integers(min_value=0, max_value=60), max_size=8),
    tier_tokens=st.tuples(token_lists, token_lists, token_lists),
    budget=st.integers(min_value=0, max_value=200),
    max_skips=st.integers(min_value=1, max_value=6),
)
@hypothesis_settings(max_examples=300, deadline=None, database=None)
def test_partial_critical_pack_properties(
    critical_tokens: list[int], tier_tokens: tuple[list[int], list[int], list[int]],
    budget: int, max_skips: int,
) -> None:
    """A reload's pack never fails: within the budget it is the ordinary pack; over it, the
    CRITICAL items that fit in order (first fit), every other one named, no lower tier read."""
    counter = itertools.count(1)
    critical = make_rows(Priority.CRITICAL, critical_tokens, counter)
    tiers = {p: make_rows(p, t, counter) for p, t in zip(TIERS, tier_tokens, strict=True)}
    streams = {p: CountingStream(rows) for p, rows in tiers.items()}
    pack = pack_items(iter(critical), ((p, streams[p]) for p in TIERS), budget, max_skips,
                      partial_critical=True)
    read = sum(s.read for s in streams.values())
    if sum(critical_tokens) <= budget:
        check_pack(critical, tiers, budget, max_skips, pack, read)
        assert pack.critical_omitted == []
        return
    fits, left, used = [], [], 0
    for row in critical:
        if row["token_count"] <= budget - used:
            fits.append(row)
            used += row["token_count"]
        else:
            left.append(row)
    assert pack.items == fits and read == 0
    assert pack.manifest.used == used <= budget
    assert ids(pack.manifest.included) == ids(fits)
    assert ids(pack.manifest.omitted) == ids(pack.critical_omitted) == ids(left) != []
    assert all(e["reason"] == CRITICAL_OVER_BUDGET for e in pack.manifest.omitted)
    assert pack.critical_omitted == [
        {"item_id": r["item_id"], "sequence_number": r["sequence_number"],
         "content_type": "note", "token_count": r["token_count"]} for r in left]
    assert pack.manifest.stopped is not None
    assert pack.manifest.stopped["reason"] == CRITICAL_OVER_BUDGET
    assert pack.manifest.stopped["needed"] == sum(critical_tokens)
    # Every CRITICAL item is either carried or named: none is dropped silently.
    assert sorted(ids(pack.items) + ids(left)) == ids(critical)


# --- the same properties through the real service ------------------------------------------

stored_items = st.lists(
    st.tuples(
        st.sampled_from(["CRITICAL", "HIGH", "MEDIUM", "LOW"]),
        st.integers(min_value=0, max_value=40),
        st.sampled_from([None, "current", "other"]),
    ),
    max_size=14,
)


def expected_order(rows: list[dict[str, Any]], focus: int | None
                   ) -> tuple[list[dict[str, Any]], dict[Priority, list[dict[str, Any]]]]:
    """The documented preference order, computed in Python from the stored rows."""
    newest_first = sorted(rows, key=lambda r: -r["sequence_number"])
    critical = sorted((r for r in rows if r["priority"] == "CRITICAL"),
                      key=lambda r: r["sequence_number"])
    tiers = {}
    for priority in TIERS:
        same = [r for r in newest_first if r["priority"] == priority.value]
        in_phase = [r for r in same if focus is not None and r["phase_id"] == focus]
        tiers[priority] = in_phase + [r for r in same if r not in in_phase]
    return critical, tiers


@given(items=stored_items, budgets=st.lists(st.integers(min_value=0, max_value=300),
                                            min_size=1, max_size=3))
@hypothesis_settings(max_examples=15, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_service_pack_properties(
    db: Ctxdb, items: list[tuple[str, int, str | None]], budgets: list[int]
) -> None:
    # Each example gets its own project: the database fixture is shared by the examples.
    project_id = db.projects.create("property")["project_id"]
    current = db.phases.create(project_id, 2, "current")["phase_id"]
    other = db.phases.create(project_id, 1, "other")["phase_id"]
    db.phases.start(current)
    phases = {None: None, "current": current, "other": other}
    for n, (priority, tokens, phase) in enumerate(items):
        db.context.store(project_id, {"n": n}, priority, phase_id=phases[phase],
                         token_count=tokens)
    rows = [r for group in db.context.full(project_id).values() for r in group]
    critical, tiers = expected_order(rows, current)
    for budget in budgets:
        needed = sum(r["token_count"] for r in critical)
        if needed > budget:
            with pytest.raises(BudgetExceededError):
                db.context.pack(project_id, budget)
            continue
        pack = db.context.pack(project_id, budget)
        model = pack_items(critical, ((p, tiers[p]) for p in TIERS), budget)
        assert ids(pack.items) == ids(model.items)
        assert pack.manifest.to_dict() == model.manifest.to_dict()
        examined = len(pack.items) - len(critical) + len(pack.manifest.omitted)
        check_pack(critical, tiers, budget, 64, pack, examined)
        again = db.context.pack(project_id, budget)
        assert again.items == pack.items
