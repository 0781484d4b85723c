"""Recording a handoff without clearing: TokenService.record_handoff on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from ctxdb.errors import InstanceNotFoundError, InvalidTransitionError, ValidationError
from ctxdb.service import Ctxdb


@pytest.fixture
def instance_id(db: Ctxdb, project: dict[str, Any]) -> str:
    return str(db.instances.launch(project["project_id"], context_window=1_000)["instance_id"])


def test_a_handoff_is_stored_and_usage_is_kept(db: Ctxdb, instance_id: str) -> None:
    db.tokens.update_usage(instance_id, 700)
    handoff = db.tokens.record_handoff(
        instance_id, summary="parser half done", next_steps=["finish lexer"],
        working_set={"files": ["lexer.py"]})
    assert (handoff["kind"], handoff["summary"]) == ("manual", "parser half done")
    assert handoff["next_steps"] == ["finish lexer"]
    assert handoff["working_set"] == {"files": ["lexer.py"]}
    assert (handoff["generation"], handoff["tokens_before"]) == (0, 700)
    assert db.tokens.latest_handoff(instance_id=instance_id) == handoff
    usage = db.tokens.check_usage(instance_id)
    assert (usage["current_token_usage"], usage["generation"]) == (700, 0)
    entry = db.audit_log(entity_id=instance_id, limit=1)[0]
    assert entry["action"] == "tokens.handoff"
    assert entry["details"] == {"handoff_id": handoff["handoff_id"], "kind": "manual",
                                "generation": 0}


def test_the_kind_and_actor_are_recorded(db: Ctxdb, instance_id: str) -> None:
    handoff = db.tokens.record_handoff(instance_id, next_steps=["x"], kind="compact",
                                       actor="user:alice")
    assert handoff["kind"] == "compact" and handoff["summary"] == ""
    assert db.audit_log(entity_id=instance_id, limit=1)[0]["actor"] == "user:alice"


@pytest.mark.parametrize(("arguments", "error", "message"), [
    ({}, ValidationError, "a handoff needs a summary, next steps or a working set"),
    ({"summary": "   "}, ValidationError, "a handoff needs a summary"),
    ({"summary": "s", "kind": "nap"}, ValidationError, "handoff kind must be one of"),
    ({"summary": "s", "next_steps": "do it"}, ValidationError, "next_steps must be a list"),
    ({"summary": "s", "working_set": ["a"]}, ValidationError,
     "working_set must be a JSON object"),
    ({"summary": "a\x00b"}, ValidationError, "summary contains a NUL byte"),
    ({"summary": "s", "next_steps": [object()]}, ValidationError, "not JSON-serializable"),
])
def test_bad_handoffs_are_refused_and_store_nothing(
    db: Ctxdb, instance_id: str, arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    before = db.audit_log(entity_id=instance_id)
    with pytest.raises(error, match=message):
        db.tokens.record_handoff(instance_id, **arguments)
    assert db.tokens.latest_handoff(instance_id=instance_id) is None
    assert db.audit_log(entity_id=instance_id) == before


def test_unknown_and_ended_instances_are_refused(db: Ctxdb, instance_id: str) -> None:
    with pytest.raises(InstanceNotFoundError, match="unknown instance 'inst_ghost'"):
        db.tokens.record_handoff("inst_ghost", summary="s")
    db.instances.end(instance_id)
    with pytest.raises(InvalidTransitionError, match="has ended"):
        db.tokens.record_handoff(instance_id, summary="s")
    assert db.tokens.latest_handoff(instance_id=instance_id) is None
