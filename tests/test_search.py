"""ContextService.search: structured filters and words looked up in the full-text index."""

from __future__ import annotations

from typing import Any

import pytest

from ctxdb.errors import (
    InvalidPriorityError,
    InvalidSearchQueryError,
    PhaseNotFoundError,
    ProjectNotFoundError,
    ValidationError,
)
from ctxdb.service import Ctxdb


@pytest.fixture
def seeded(db: Ctxdb, project: dict[str, Any]) -> dict[str, Any]:
    project_id = project["project_id"]
    phase = db.phases.create(project_id, 1, "Build")["phase_id"]
    store = db.context.store
    ids = {
        "stripe": store(project_id, {"decision": "Payments via STRIPE", "why": "fees"},
                        "CRITICAL", "decision")["item_id"],
        "schema": store(project_id, "orders table has a stripe_id column", "HIGH", "note",
                        phase)["item_id"],
        "quote": store(project_id, {"said": 'he wrote "ship it"\nthen left'}, "LOW",
                       "note")["item_id"],
        "other": store(project_id, {"todo": ["write tests", 3, True]}, "HIGH", "todo",
                       phase)["item_id"],
    }
    return {"project_id": project_id, "phase": phase, "ids": ids}


def found(result: dict[str, Any]) -> list[int]:
    return [item["item_id"] for item in result["items"]]


def test_without_filters_every_live_item_comes_newest_first(
    db: Ctxdb, seeded: dict[str, Any]
) -> None:
    ids = seeded["ids"]
    db.context.delete(ids["quote"])
    result = db.context.search(seeded["project_id"])
    assert found(result) == [ids["other"], ids["schema"], ids["stripe"]]
    assert result["has_more"] is False
    assert result["items"][-1]["content"] == {"decision": "Payments via STRIPE", "why": "fees"}


def test_the_text_filter_finds_words_in_any_case(db: Ctxdb, seeded: dict[str, Any]) -> None:
    project_id, ids = seeded["project_id"], seeded["ids"]
    assert found(db.context.search(project_id, "Stripe")) == [ids["schema"], ids["stripe"]]
    assert found(db.context.search(project_id, '"ship it then"')) == [ids["quote"]]
    assert found(db.context.search(project_id, 'ship it"\nthen')) == [ids["quote"]]
    assert found(db.context.search(project_id, "decision")) == [ids["stripe"]]  # a key
    assert found(db.context.search(project_id, "true")) == [ids["other"]]
    assert found(db.context.search(project_id, "stripe -column")) == [ids["stripe"]]
    assert found(db.context.search(project_id, "strip")) == []  # words, not substrings
    assert found(db.context.search(project_id, "strip*")) == [ids["schema"], ids["stripe"]]
    assert found(db.context.search(project_id, "no such words")) == []
    assert len(found(db.context.search(project_id, "   "))) == 4  # blank: no text filter


def test_structured_filters_combine_with_the_text(db: Ctxdb, seeded: dict[str, Any]) -> None:
    project_id, ids, phase = seeded["project_id"], seeded["ids"], seeded["phase"]
    search = db.context.search
    assert found(search(project_id, "stripe", priority="critical")) == [ids["stripe"]]
    assert found(search(project_id, priority="HIGH")) == [ids["other"], ids["schema"]]
    assert found(search(project_id, content_type="note")) == [ids["quote"], ids["schema"]]
    assert found(search(project_id, phase_id=phase)) == [ids["other"], ids["schema"]]
    assert found(search(project_id, "stripe", phase_id=phase)) == [ids["schema"]]


def test_limit_and_every_match_found_however_old(db: Ctxdb, seeded: dict[str, Any]) -> None:
    project_id, ids = seeded["project_id"], seeded["ids"]
    first = db.context.search(project_id, limit=2)
    assert found(first) == [ids["other"], ids["quote"]] and first["has_more"]
    exact = db.context.search(project_id, "stripe", limit=2)
    assert len(exact["items"]) == 2 and not exact["has_more"]
    for number in range(30):  # newer items that do not match are not in the way
        db.context.store(project_id, f"unrelated note {number}", "LOW", "note")
    assert found(db.context.search(project_id, "stripe", limit=1)) == [ids["schema"]]
    assert found(db.context.search(project_id, "fees")) == [ids["stripe"]]


def test_the_newest_matches_are_the_same_whether_found_among_the_newest_items_or_through_all(
        db: Ctxdb, pid: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search for a common word looks among the newest SEARCH_WINDOW items first and
    through every match only when those hold too few: both ways give the newest matches, in
    order."""
    from ctxdb.service.usecases import search

    monkeypatch.setattr(search, "SEARCH_WINDOW", 6)
    monkeypatch.setattr(search, "COMMON_MATCHES", 2)
    stored = [db.context.store(pid, f"{'common' if n % 2 else 'common rare'} {n}", "LOW",
                               "note")["item_id"] for n in range(20)]
    newest_first = stored[::-1]
    common = db.context.search(pid, "common", limit=2)  # enough among the newest 6
    assert found(common) == newest_first[:2] and common["has_more"]
    rare = db.context.search(pid, "rare", limit=4)  # 3 among the newest 6: all are read
    assert found(rare) == newest_first[1::2][:4] and rare["has_more"]
    every = db.context.search(pid, "rare", limit=10)
    assert found(every) == newest_first[1::2] and not every["has_more"]
    assert found(db.context.search(pid, "common", limit=3, priority="HIGH")) == []


@pytest.mark.parametrize(("arguments", "error", "message"), [
    ({"priority": "URGENT"}, InvalidPriorityError, "invalid priority 'URGENT'"),
    ({"limit": 0}, ValidationError, "limit must be between 1 and 200"),
    ({"limit": 201}, ValidationError, "limit must be between 1 and 200"),
    ({"query": "!!!"}, InvalidSearchQueryError, "has no words to search for"),
    ({"query": "-stripe"}, InvalidSearchQueryError, "only excludes words"),
    ({"query": "x" * 1_001}, ValidationError, "query is longer than 1000 characters"),
    ({"query": 5}, ValidationError, "query must be a string"),
    ({"content_type": ""}, ValidationError, "content_type must not be empty"),
    ({"phase_id": 999_999}, PhaseNotFoundError, "999999"),
])
def test_bad_searches_are_refused(
    db: Ctxdb, seeded: dict[str, Any], arguments: dict[str, Any], error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        db.context.search(seeded["project_id"], **arguments)


def test_an_unknown_project_is_refused(db: Ctxdb) -> None:
    with pytest.raises(ProjectNotFoundError, match="proj_void"):
        db.context.search("proj_void", "x")


def test_hostile_text_is_searched_as_words(db: Ctxdb, seeded: dict[str, Any]) -> None:
    project_id, ids = seeded["project_id"], seeded["ids"]
    for query in ('"stripe', "(stripe", "stripe*)", "'stripe'", "stripe;--", "^stripe:"):
        assert ids["schema"] in found(db.context.search(project_id, query))
