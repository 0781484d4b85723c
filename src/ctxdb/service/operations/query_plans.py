"""The hot queries and the index each must use: the one list ``ctxdb doctor`` checks.

A query that loses its index still returns the right rows, only slower as the table grows, so
no other test notices: the doctor asks the planner (``Health.query_plan``) and fails when the
expected index is not in the plan. An index is named as every backend's schema knows it
(``storage.health.IndexRef``): by its name, since named indexes are called the same on both
backends (tests/test_migrations.py keeps them in step); as the index behind a UNIQUE
constraint, which each database names itself; or as the full-text engine's index. The
backend's ``Health`` says what its database calls it. Parameters are sample values: nothing
runs, only the plan is asked for. A query whose tables come with a later migration than the
database has (``since``) is not checked there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ctxdb.storage.health import IndexRef

_PROJECT = "proj_doctor"
_INSTANCE = "inst_doctor"


@dataclass(frozen=True)
class HotQuery:
    label: str  # what the query serves, as a person would say it
    query: str  # its name in storage/queries/*.sql
    index: IndexRef  # the index it must use
    params: dict[str, Any] = field(default_factory=dict)
    since: int = 1  # the schema version whose migration made the query possible


def _named(name: str) -> IndexRef:
    return IndexRef(name=name)


HOT_QUERIES: tuple[HotQuery, ...] = (
    HotQuery("live context items by priority", "items_of_priority", _named("idx_items_live"),
             {"project_id": _PROJECT, "priority": "HIGH", "phase_id": None}),
    HotQuery("a page of live context items", "items_page", _named("idx_items_live"),
             {"project_id": _PROJECT, "priority": "HIGH", "after_sequence": 0, "limit": 100}),
    HotQuery("the pack's items of the current phase", "pack_tier_in_phase",
             _named("idx_items_live_phase"),
             {"project_id": _PROJECT, "phase_id": 1, "priority": "HIGH"}),
    HotQuery("a session start's pack, a page of item sizes", "pack_tier_sizes_in_phase",
             _named("idx_items_live_phase"),
             {"project_id": _PROJECT, "phase_id": 1, "priority": "HIGH",
              "before": 2**63 - 1, "limit": 256}),
    HotQuery("a memory by key", "get_memory",
             IndexRef(unique=("memories", "project_id", "namespace", "key")),
             {"project_id": _PROJECT, "namespace": "user:prefs", "key": "theme"}, since=3),
    HotQuery("the next task to claim", "next_claimable_task", _named("idx_tasks_claim"),
             {"project_id": _PROJECT}, since=5),
    HotQuery("an instance's inbox", "visible_messages", _named("idx_messages_inbox"),
             {"project_id": _PROJECT, "instance_id": _INSTANCE, "role": "reviewer",
              "limit": 10}, since=6),
    HotQuery("a page of session events", "list_session_events",
             IndexRef(unique=("session_events", "session_id", "sequence")),
             {"session_id": "sess_doctor", "after_sequence": 0, "limit": 100}, since=4),
    HotQuery("an agent session's instance (every hook)", "instance_of_session",
             _named("idx_instances_session"), {"session_id": "doctor", "client": "claude-code"}),
    HotQuery("what a project's token reaches (every hook through a server)", "projects_reached",
             _named("idx_instances_session"),
             {"session_id": "doctor", "client": "claude-code", "repo_key": "doctor"}),
    HotQuery("an agent session's instance row (a prompt, a start)", "session_instance",
             _named("idx_instances_session"), {"session_id": "doctor", "client": "claude-code"}),
    HotQuery("crash detection (stale heartbeats)", "reap_stale_instances",
             _named("idx_instances_heartbeat"), {"stale_after": 600, "project_id": ""}),
    HotQuery("an instance's latest handoff (reload)", "latest_handoff_of_instance",
             _named("idx_handoffs_instance"), {"instance_id": _INSTANCE}),
    # gc forgetting an ended instance, and finding what points at items it would archive:
    # without these foreign key indexes each batch scans context_items (docs/retention.md).
    HotQuery("gc: the items an ended instance wrote", "forget_instance_in_context_items",
             _named("idx_items_created_by"), {"instance_id": _INSTANCE, "limit": 500}, since=12),
    HotQuery("gc: the items superseded by archive candidates", "archive_candidate_referrers",
             _named("idx_items_superseded_by"), {"after_item_id": 0, "last_item_id": 500},
             since=12),
    HotQuery("sessions that stopped without a handoff (every hook)",
             "sessions_needing_handoff", _named("idx_instances_project"),
             {"project_id": _PROJECT, "repo_key": None, "stale_after": 600,
              "lookback": 86_400, "limit": 5}),
    HotQuery("… and the probe for a handoff since the last heartbeat",
             "sessions_needing_handoff", _named("idx_handoffs_instance"),
             {"project_id": _PROJECT, "repo_key": None, "stale_after": 600,
              "lookback": 86_400, "limit": 5}),
    HotQuery("… of a repository's project (a session start)",
             "sessions_needing_handoff", _named("idx_instances_project"),
             {"project_id": None, "repo_key": "doctor", "stale_after": 600,
              "lookback": 86_400, "limit": 5}),
    HotQuery("a session start's live siblings", "live_siblings",
             _named("idx_instances_project"),
             {"project_id": _PROJECT, "instance_id": _INSTANCE, "stale_after": 600,
              "limit": 20}, since=22),
    HotQuery("a session start's pack, its first pages", "startup_pack_first_pages",
             _named("idx_items_live_phase"),
             {"project_id": _PROJECT, "phase_id": 1, "limit": 256, "content_rows": 64}),
    # SQLite's FTS5 index is a virtual table the plan names; PostgreSQL's is a GIN index.
    HotQuery("full-text search", "search_hits", IndexRef(full_text=True),
             {"project_id": _PROJECT, "match": "doctor", "rank": "doctor",
              "kind_1": "context", "kind_2": "memory", "kind_3": "event",
              "kind_4": "observation", "content_type": "",
              "priority": "", "namespace": "", "since": "0001-01-01T00:00:00.000Z",
              "until": "9999-12-31T23:59:59.999Z", "limit": 20}, since=8),
)


def plan_uses_index(plan: list[str], index: str) -> bool:
    """Whether any step of the plan reads ``index`` (a whole word: not a longer name)."""
    pattern = re.compile(rf"(?<!\w){re.escape(index)}(?!\w)")
    return any(pattern.search(step) for step in plan)
