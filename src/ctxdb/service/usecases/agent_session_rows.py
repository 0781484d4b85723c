"""The rows the agent-session use cases read and write inside their transactions: the
injections recorded, the token usage read from a transcript, the handoff a compaction saved,
and the session a /clear replaced."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ctxdb.domain.agents import AgentSession, RepoIdentity
from ctxdb.domain.tokens import estimate_tokens
from ctxdb.errors import CtxdbError
from ctxdb.service.common import decode
from ctxdb.service.usecases.instances import instance_of_project, require_instance
from ctxdb.storage import Tx
from ctxdb.transcripts.reader import Source
from ctxdb.transcripts.tail import latest_context_tokens

SESSION_START = "SessionStart"


def record_injection(tx: Tx, instance: dict[str, Any], session: AgentSession, source: str,
                      text: str, item_ids: list[int], handoff: dict[str, Any] | None,
                      key: str, hook_event: str = SESSION_START) -> dict[str, Any]:
    """Store what was injected (which items, which handoff, the text) for audit."""
    row = injection_row(instance, session, source, text, item_ids, handoff, key, hook_event)
    row["injection_id"] = tx.value("insert_injection", **row)
    return injection_view(row)


def injection_row(instance: Mapping[str, Any], session: AgentSession, source: str, text: str,
                  item_ids: list[int], handoff: Mapping[str, Any] | None, key: str,
                  hook_event: str = SESSION_START) -> dict[str, Any]:
    """The parameters of ``insert_injection``."""
    return {
        "project_id": instance["project_id"], "instance_id": instance["instance_id"],
        "session_id": session.session_id, "generation": instance["generation"],
        "hook_event": hook_event, "source": source, "item_ids": json.dumps(item_ids),
        "handoff_id": handoff["handoff_id"] if handoff else None,
        "characters": len(text), "tokens": estimate_tokens(text),
        "injected_text": text, "idempotency_key": key,
    }


def context_tokens(path: Source | None, client: str) -> int | None:
    if not path:
        return None
    try:
        return latest_context_tokens(path, client=client)
    except (OSError, CtxdbError):
        return None  # no transcript (yet), or no readable one: usage stays as it is


def set_usage(tx: Tx, instance: dict[str, Any], tokens: int) -> None:
    tx.execute("set_token_usage", instance_id=instance["instance_id"],
               tokens=capped_usage(instance, tokens))


def capped_usage(instance: Mapping[str, Any], tokens: int) -> int:
    """The context in use as recorded: ``tokens`` within 0 and the instance's window."""
    return max(0, min(int(tokens), int(instance["context_window"])))


def injected_ids(tx: Tx, instance: dict[str, Any]) -> set[int]:
    seen: set[int] = set()
    for row in tx.all("injected_item_ids", instance_id=instance["instance_id"],
                      generation=instance["generation"]):
        ids = row["item_ids"]
        seen.update(json.loads(ids) if isinstance(ids, str) else ids)
    return seen


def fresh_compact_handoff(tx: Tx, session: AgentSession) -> dict[str, Any] | None:
    """The handoff the PreCompact hook saved in the instance's current generation, if any."""
    row = tx.one("session_instance", session_id=session.session_id, client=session.client)
    if row is None:
        return None
    instance = instance_of_project(row, row["instance_id"])
    handoff = tx.one("latest_handoff_of_instance", instance_id=instance["instance_id"])
    if handoff is None or handoff["kind"] != "compact" \
            or handoff["generation"] != instance["generation"]:
        return None
    return decode(handoff)


def previous_session(tx: Tx, session: AgentSession,
                      repo: RepoIdentity) -> dict[str, Any] | None:
    """The session a /clear replaced: the latest other one of the client in this worktree."""
    project = tx.one("project_by_repo_key", repo_key=repo.repo_key)
    if project is None or repo.worktree is None:
        return None
    row = tx.one("previous_instance_in_worktree", project_id=project["project_id"],
                 client=session.client, worktree=repo.worktree,
                 instance_id=own_instance_id(tx, session))
    if row is None:
        return None
    previous = require_instance(tx, row["instance_id"])
    handoff = tx.one("latest_handoff_of_instance", instance_id=previous["instance_id"])
    return {"instance_id": previous["instance_id"], "generation": previous["generation"],
            "transcript_path": previous["metadata"].get("transcript_path"),
            "handoff": decode(handoff) if handoff else None}


def own_instance_id(tx: Tx, session: AgentSession) -> str:
    row = tx.one("instance_of_session", session_id=session.session_id, client=session.client)
    return str(row["instance_id"]) if row else session.default_instance_id


def injection_view(row: dict[str, Any]) -> dict[str, Any]:
    ids = row["item_ids"]
    return {
        "injection_id": row["injection_id"], "project_id": row["project_id"],
        "instance_id": row["instance_id"], "session_id": row["session_id"],
        "generation": row["generation"], "hook_event": row["hook_event"],
        "source": row["source"], "item_ids": json.loads(ids) if isinstance(ids, str) else ids,
        "handoff_id": row["handoff_id"], "characters": row["characters"],
        "tokens": row["tokens"], "text": row["injected_text"],
        "created_at": row.get("created_at"),
    }
