"""Context items: store, load for an instance, full context, paging, supersede, delete, counts."""

from __future__ import annotations

from typing import Any

import pytest

from ctxdb.errors import (
    ContextItemNotFoundError,
    IdempotencyConflictError,
    InstanceNotFoundError,
    InvalidTransitionError,
    ProjectNotFoundError,
    ValidationError,
)
from ctxdb.service import Ctxdb
from item_numbers import check_increasing, check_numbers, gapless


def ids(items: list[dict[str, Any]]) -> list[int]:
    return [item["item_id"] for item in items]


def live_ids(db: Ctxdb, project_id: str) -> set[int]:
    return {item["item_id"] for group in db.context.full(project_id).values() for item in group}


# --- store --------------------------------------------------------------------------------


def test_store_returns_the_item(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    stored = db.context.store(project_id, {"file": "a.py", "lines": [1, 2]}, "critical",
                              "decision", metadata={"source": "review"})
    assert stored["project_id"] == project_id
    assert stored["priority"] == "CRITICAL"  # priorities are case-insensitive
    assert stored["content_type"] == "decision"
    assert stored["state"] == "active"
    item = db.context.get(stored["item_id"])
    assert item["content"] == {"file": "a.py", "lines": [1, 2]}
    assert item["metadata"] == {"source": "review"}
    assert item["sequence_number"] == stored["sequence_number"]
    assert item["token_count"] == stored["token_count"]
    assert (item["superseded_by"], item["deleted_at"], item["deleted_by"]) == (None, None, None)
    [row] = db.audit_log(entity_id=str(stored["item_id"]))
    assert row["action"] == "context.store"
    assert row["details"] == {"priority": "CRITICAL",
                              "sequence_number": stored["sequence_number"],
                              "token_count": stored["token_count"]}
    check_numbers(db, [stored["sequence_number"]])  # the project's first: 1 on SQLite


def test_sequence_numbers_are_per_project_and_monotonic(db: Ctxdb) -> None:
    alpha = db.projects.create("alpha")["project_id"]
    beta = db.projects.create("beta")["project_id"]
    sequences: dict[str, list[int]] = {alpha: [], beta: []}
    for n in range(6):
        project_id = alpha if n % 3 else beta
        sequences[project_id].append(db.context.store(project_id, n)["sequence_number"])
    check_increasing(db, sequences[alpha])  # 1, 2, 3, 4 on SQLite
    check_increasing(db, sequences[beta])
    if gapless(db):
        assert (sequences[alpha], sequences[beta]) == ([1, 2, 3, 4], [1, 2])
    deleted = db.context.store(alpha, "doomed")
    db.context.delete(deleted["item_id"])
    after = db.context.store(alpha, "after")["sequence_number"]
    check_increasing(db, [sequences[alpha][-1], deleted["sequence_number"], after])


def test_token_estimate_and_supplied_count(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    # "x" * 40 is 42 characters of JSON: 11 tokens at 4 ASCII characters per token.
    assert db.context.store(project_id, "x" * 40)["token_count"] == 11
    # Two quotes (1 token) and three CJK characters (1 token each).
    assert db.context.store(project_id, "日本語")["token_count"] == 4
    exact = db.context.store(project_id, "x" * 40, token_count=7)
    assert exact["token_count"] == 7
    assert db.context.get(exact["item_id"])["token_count"] == 7


def test_idempotency_key(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    first = db.context.store(project_id, {"v": 1}, "HIGH", idempotency_key="hook-42")
    audit_before = db.audit_log()
    again = db.context.store(project_id, {"v": 1}, "HIGH", idempotency_key="hook-42")
    assert again["item_id"] == first["item_id"]
    assert again["sequence_number"] == first["sequence_number"]
    assert db.context.counts(project_id)["HIGH"]["items"] == 1
    assert again == first  # the same summary, the first time and on a retry
    for changed in ({"content": {"v": 2}}, {"priority": "LOW"}, {"content_type": "diff"},
                    {"metadata": {"source": "elsewhere"}}):
        request = {"content": {"v": 1}, "priority": "HIGH", **changed}
        with pytest.raises(IdempotencyConflictError) as refused:
            db.context.store(project_id, idempotency_key="hook-42", **request)
        assert refused.value.details == {"idempotency_key": "hook-42", "fields": list(changed),
                                         "item_id": first["item_id"]}
    assert db.audit_log() == audit_before
    # The repeated and the refused stores consumed no sequence number either (where numbers
    # are gapless: on PostgreSQL a store draws before its key is found taken).
    check_increasing(db, [first["sequence_number"],
                          db.context.store(project_id, "next")["sequence_number"]])
    other = db.projects.create("other")["project_id"]  # keys are scoped to a project
    assert db.context.store(other, {"v": 1}, idempotency_key="hook-42")["item_id"] != \
        first["item_id"]


def test_created_by_must_be_an_instance_of_the_project(db: Ctxdb) -> None:
    alpha = db.projects.create("alpha")["project_id"]
    beta = db.projects.create("beta")["project_id"]
    writer = db.instances.launch(alpha)["instance_id"]
    stranger = db.instances.launch(beta)["instance_id"]
    stored = db.context.store(alpha, "by an agent", created_by=writer)
    assert db.context.get(stored["item_id"])["created_by"] == writer
    assert db.audit_log(entity_id=str(stored["item_id"]))[0]["actor"] == writer
    with pytest.raises(ValidationError, match=f"belongs to project {beta!r}"):
        db.context.store(alpha, "spoofed", created_by=stranger)
    with pytest.raises(InstanceNotFoundError, match="inst_ghost"):
        db.context.store(alpha, "ghost", created_by="inst_ghost")
    assert db.context.counts(alpha)["HIGH"]["items"] == 1


@pytest.mark.parametrize("content", [
    "plain text",
    r's.replace("\u0000", "")',  # a backslash followed by u0000 is not a NUL character
    "\\" * 3 + "u0000",
    "ünïcødé, 日本語 and emoji 🎉",
    {"nested": {"list": [1, 2.5, True, None, "x"]}, "empty": {}, "b": 1, "a": 2},
    [0.1 + 0.2, -0.0, 10**18, -(2**53)],
    "",
    None,
])
def test_content_round_trips(db: Ctxdb, project: dict[str, Any], content: Any) -> None:
    stored = db.context.store(project["project_id"], content, "LOW")
    assert db.context.get(stored["item_id"])["content"] == content
    [listed] = db.context.full(project["project_id"])["LOW"]
    assert listed["content"] == content


def test_store_in_unknown_project(db: Ctxdb) -> None:
    with pytest.raises(ProjectNotFoundError, match="proj_void"):
        db.context.store("proj_void", "x")


# --- load for an instance -----------------------------------------------------------------


def test_load_for_instance_returns_critical_in_sequence_order(
    db: Ctxdb, project: dict[str, Any]
) -> None:
    project_id = project["project_id"]
    critical = [db.context.store(project_id, f"rule {n}", "CRITICAL")["item_id"]
                for n in range(3)]
    db.context.store(project_id, "note", "HIGH")
    db.context.store(project_id, "trivia", "LOW")
    removed = db.context.store(project_id, "obsolete rule", "CRITICAL")
    db.context.delete(removed["item_id"])
    loaded = db.context.load_for_instance("inst_loader", project_id, client="codex",
                                          context_window=50_000)
    assert ids(loaded["critical_context"]) == critical
    assert [i["content"] for i in loaded["critical_context"]] == ["rule 0", "rule 1", "rule 2"]
    assert loaded["status"] == "ready"
    assert (loaded["instance_id"], loaded["project_id"]) == ("inst_loader", project_id)
    assert isinstance(loaded["load_time_ms"], float) and loaded["load_time_ms"] > 0
    instance = db.instances.get("inst_loader")  # loading registered the instance
    assert (instance["client"], instance["context_window"]) == ("codex", 50_000)
    assert instance["status"] == "active"
    assert db.audit_log(entity_id="inst_loader")[0]["action"] == "instance.launch"
    again = db.context.load_for_instance("inst_loader", project_id)  # a second load revives
    assert ids(again["critical_context"]) == critical
    assert len(db.instances.list(project_id)) == 1


def test_load_for_instance_with_a_phase(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    one = db.phases.create(project_id, 1, "One")["phase_id"]
    two = db.phases.create(project_id, 2, "Two")["phase_id"]
    general = db.context.store(project_id, "general", "CRITICAL")["item_id"]
    of_one = db.context.store(project_id, "phase one", "CRITICAL", phase_id=one)["item_id"]
    db.context.store(project_id, "phase two", "CRITICAL", phase_id=two)
    loaded = db.context.load_for_instance("inst_phase", project_id, one)
    assert ids(loaded["critical_context"]) == [general, of_one]
    assert db.instances.get("inst_phase")["phase_id"] == one


# --- full context and paging ---------------------------------------------------------------


def test_full_context_grouped_by_priority(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    stored: dict[str, list[int]] = {"CRITICAL": [], "HIGH": [], "MEDIUM": [], "LOW": []}
    for n, priority in enumerate(["LOW", "HIGH", "CRITICAL", "HIGH", "MEDIUM", "LOW", "HIGH"]):
        stored[priority].append(db.context.store(project_id, n, priority)["item_id"])
    full = db.context.full(project_id)
    assert list(full) == ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
    assert {priority: ids(items) for priority, items in full.items()} == stored
    assert [item["content"] for item in full["HIGH"]] == [1, 3, 6]


def test_full_context_phase_filter(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    one = db.phases.create(project_id, 1, "One")["phase_id"]
    two = db.phases.create(project_id, 2, "Two")["phase_id"]
    general = db.context.store(project_id, "general", "HIGH")["item_id"]
    of_one = db.context.store(project_id, "one", "HIGH", phase_id=one)["item_id"]
    of_two = db.context.store(project_id, "two", "LOW", phase_id=two)["item_id"]
    assert ids(db.context.full(project_id, one)["HIGH"]) == [general, of_one]
    assert db.context.full(project_id, one)["LOW"] == []
    assert ids(db.context.full(project_id, two)["LOW"]) == [of_two]
    assert ids(db.context.full(project_id, two)["HIGH"]) == [general]
    assert live_ids(db, project_id) == {general, of_one, of_two}


def test_full_context_of_unknown_project(db: Ctxdb) -> None:
    with pytest.raises(ProjectNotFoundError):
        db.context.full("proj_void")


def test_keyset_paging(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    medium = []
    for n in range(7):
        medium.append(db.context.store(project_id, n, "MEDIUM")["item_id"])
        db.context.store(project_id, n, "LOW")
    db.context.delete(medium[3])
    expected = medium[:3] + medium[4:]
    seen: list[int] = []
    pages = 0
    after = 0
    while True:
        page = db.context.page(project_id, "MEDIUM", after_sequence=after, limit=2)
        pages += 1
        seen += ids(page["items"])
        assert all(item["priority"] == "MEDIUM" for item in page["items"])
        if page["next_after_sequence"] is None:
            break
        assert page["next_after_sequence"] == page["items"][-1]["sequence_number"]
        after = page["next_after_sequence"]
    assert seen == expected
    assert pages == 4  # three full pages of 2; only the empty fourth one says "no more"
    exact = db.context.page(project_id, "MEDIUM", limit=6)
    assert ids(exact["items"]) == expected
    assert exact["next_after_sequence"] is not None
    tail = db.context.page(project_id, "MEDIUM", exact["next_after_sequence"], limit=6)
    assert tail == {"items": [], "next_after_sequence": None}


@pytest.mark.parametrize("limit", [0, 1001, -1])
def test_page_limit_bounds(db: Ctxdb, project: dict[str, Any], limit: int) -> None:
    with pytest.raises(ValidationError, match="limit"):
        db.context.page(project["project_id"], "HIGH", limit=limit)


# --- supersede and delete ------------------------------------------------------------------


def test_supersede(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    phase = db.phases.create(project_id, 1, "One")["phase_id"]
    old = db.context.store(project_id, {"v": 1}, "CRITICAL", "decision", phase,
                           metadata={"why": "first"})
    new = db.context.supersede(old["item_id"], {"v": 2})
    assert new["item_id"] != old["item_id"]
    check_increasing(db, [old["sequence_number"], new["sequence_number"]])
    assert (new["priority"], new["content_type"], new["phase_id"]) == (
        "CRITICAL", "decision", phase)  # inherited from the old item
    assert db.context.get(new["item_id"])["metadata"] == {"why": "first"}
    previous = db.context.get(old["item_id"])
    assert (previous["state"], previous["superseded_by"]) == ("superseded", new["item_id"])
    assert previous["content"] == {"v": 1}  # kept for history
    assert live_ids(db, project_id) == {new["item_id"]}
    loaded = db.context.load_for_instance("inst_s", project_id)
    assert ids(loaded["critical_context"]) == [new["item_id"]]
    assert ids(db.context.pack(project_id, 1_000).items) == [new["item_id"]]
    item_audit = [r["action"] for r in db.audit_log(entity_id=str(old["item_id"]))
                  if r["entity_type"] == "context_item"]
    assert item_audit == ["context.supersede", "context.store"]


def test_supersede_may_change_priority(db: Ctxdb, project: dict[str, Any]) -> None:
    old = db.context.store(project["project_id"], "x", "LOW")
    new = db.context.supersede(old["item_id"], "y", priority="HIGH", content_type="note")
    assert (new["priority"], new["content_type"]) == ("HIGH", "note")


def test_supersede_twice_is_refused(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    old = db.context.store(project_id, {"v": 1})
    new = db.context.supersede(old["item_id"], {"v": 2})
    audit_before = db.audit_log()
    with pytest.raises(InvalidTransitionError, match="superseded"):
        db.context.supersede(old["item_id"], {"v": 3})
    assert db.audit_log() == audit_before
    assert live_ids(db, project_id) == {new["item_id"]}
    assert db.context.get(new["item_id"])["content"] == {"v": 2}
    newest = db.context.supersede(new["item_id"], {"v": 3})  # the chain goes on from the new
    assert db.context.get(newest["item_id"])["content"] == {"v": 3}


def test_delete_is_a_tombstone(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    kept = db.context.store(project_id, "kept", "CRITICAL")
    doomed = db.context.store(project_id, "doomed", "CRITICAL")
    doomed_high = db.context.store(project_id, "doomed too", "HIGH")
    deleted = db.context.delete(doomed["item_id"], actor="user:dora")
    db.context.delete(doomed_high["item_id"])
    assert deleted["state"] == "deleted"
    assert deleted["deleted_by"] == "user:dora"
    assert deleted["deleted_at"] is not None
    assert db.context.get(doomed["item_id"])["content"] == "doomed"  # still readable
    assert live_ids(db, project_id) == {kept["item_id"]}
    loaded = db.context.load_for_instance("inst_d", project_id)
    assert ids(loaded["critical_context"]) == [kept["item_id"]]
    assert ids(db.context.pack(project_id, 1_000).items) == [kept["item_id"]]
    assert db.context.page(project_id, "HIGH")["items"] == []
    [row, _store] = db.audit_log(entity_id=str(doomed["item_id"]))
    assert (row["action"], row["actor"]) == ("context.delete", "user:dora")
    audit_before = db.audit_log()
    with pytest.raises(InvalidTransitionError, match="already deleted"):
        db.context.delete(doomed["item_id"])
    with pytest.raises(InvalidTransitionError, match="deleted"):
        db.context.supersede(doomed["item_id"], "revived?")
    assert db.audit_log() == audit_before


def test_unknown_item(db: Ctxdb) -> None:
    with pytest.raises(ContextItemNotFoundError, match="12345"):
        db.context.get(12345)
    with pytest.raises(ContextItemNotFoundError):
        db.context.delete(12345)
    with pytest.raises(ContextItemNotFoundError):
        db.context.supersede(12345, "x")


def test_counts_per_priority(db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    zero = {"items": 0, "tokens": 0}
    assert db.context.counts(project_id) == {"CRITICAL": zero, "HIGH": zero, "MEDIUM": zero,
                                             "LOW": zero}
    db.context.store(project_id, "a", "CRITICAL", token_count=10)
    db.context.store(project_id, "b", "CRITICAL", token_count=5)
    db.context.store(project_id, "c", "LOW", token_count=7)
    gone = db.context.store(project_id, "d", "LOW", token_count=100)
    db.context.delete(gone["item_id"])
    old = db.context.store(project_id, "e", "MEDIUM", token_count=3)
    db.context.supersede(old["item_id"], "f", token_count=4)
    assert db.context.counts(project_id) == {
        "CRITICAL": {"items": 2, "tokens": 15},
        "HIGH": zero,
        "MEDIUM": {"items": 1, "tokens": 4},
        "LOW": {"items": 1, "tokens": 7},
    }


def test_one_content_type_default_on_every_interface() -> None:
    """The seed's store_context defaults content_type to 'code': the library, the CLI, MCP,
    HTTP, the remote client and the JSON importer default to the same word."""
    import inspect

    from ctxdb.cli.context import store_command
    from ctxdb.client.records import RemoteContext
    from ctxdb.compat.async_loader import AsyncContextLoader
    from ctxdb.compat.loader import SQLiteContextLoader
    from ctxdb.compat.manager import MultiProjectManager
    from ctxdb.http.models import ContextIn
    from ctxdb.importers.json_items import parse_items
    from ctxdb.mcp.knowledge import store_context
    from ctxdb.service.usecases.context import ContextService

    def default(function: Any, name: str = "content_type") -> Any:
        return inspect.signature(function).parameters[name].default

    [cli_option] = [p for p in store_command.params if p.name == "content_type"]
    [imported] = parse_items("items.json", '[{"content": "x"}]')
    assert {default(ContextService.store), default(MultiProjectManager.store_context),
            default(SQLiteContextLoader.store_context),
            default(AsyncContextLoader.store_context), default(RemoteContext.store),
            default(store_context), cli_option.default,
            ContextIn.model_fields["content_type"].default, imported.content_type} == {"code"}
