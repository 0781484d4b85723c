"""The statements a hook event sends (issue 12: at a fleet's rate, the CPU per event is the
limit, and each statement costs both the server and the database).

Pinned per event and backend, so that a row read twice in one transaction cannot creep back:
a change that adds a statement to an event must change these numbers on purpose. The names
are those of the named queries (``queries/*.sql``); PostgreSQL's BEGIN, transaction id, the
look for unindexed documents and COMMIT travel in the same pipelines and are not counted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from ctxdb.domain.agents import RepoIdentity
from ctxdb.domain.hook_events import parse_event
from ctxdb.service import Ctxdb
from ctxdb.storage.pg_tx import PostgresTx
from ctxdb.storage.sqlite import SQLiteTx

REPO = RepoIdentity("github.com/acme/shop", "shop", "/work/shop", "main")

# Statements per event: the SessionStart of a new session (a sibling is live, one item is
# stored), a prompt that recalls an item stored since, the SessionEnd that makes the
# session's handoff (before issue 12's cut: 25, 15 and 12 on SQLite; then 22, 12, 12).
# SQLite's SessionEnd counts the look for unindexed documents, which PostgreSQL sends in the
# pipeline of the statement that wrote one.
# The start's 22 became 16: the pack's phase, CRITICAL items and tiers' first pages in one
# statement (five were), the look for sessions to settle by the repository's key (the
# project's own read was a second statement), the session's instance and the one of its
# default id in one. The prompt's 12 became 11: the recall's search takes the instance the
# prompt's heartbeat returned instead of reading it again. The start's 16 became 15: the
# content of the items the injection shows comes with the tiers' first pages. PostgreSQL's
# became 13: the injection and the start's audit row in one statement, sent with the COMMIT;
# the reap of silent instances and the count of live ones (make_room) in one; 12: the
# instance and its audit row in one. Both one fewer: the siblings' task leases come with
# the siblings (every lease of the project was read apart).
# SQLite's search index brought current in batches (schema version 27): the prompt's recall
# meets the two documents stored since the last search waiting for their terms, so its read
# gives up at its first search and runs again as a write that gives them their terms first
# (the search again, the look, the terms in one statement): 11 became 14. The SessionEnd's
# look for its document without terms and their terms became the count of the waiting
# documents (fewer than DEFER_LIMIT: they stay for a search): 12 became 11.
EXPECTED = {
    "sqlite": {"startup": 14, "prompt": 14, "end": 11},
    "postgres": {"startup": 11, "prompt": 11, "end": 11},
}
# Statements that an event may send more than once, and why.
REPEATS = {
    # instance.launch and session.startup; session.prompt and the recall's injection;
    # session.end and handoff.create.
    "insert_audit": 2,
    # The recall's read, then its write's look again (another injection may have come since).
    "injections_of_generation": 2,
    # SQLite: the recall's read that met documents waiting for their terms, then the same
    # search in the write that gave them their terms.
    "search_hits": 2,
}


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the statements sent, in order, on either backend."""
    sent: list[str] = []
    sqlite_run, pg_named, pg_lock = SQLiteTx._run, PostgresTx._named, PostgresTx.lock

    def run(self: SQLiteTx, query: str, params: dict[str, Any]) -> Any:
        sent.append(query)
        return sqlite_run(self, query, params)

    def named(self: PostgresTx, query: str) -> str:
        sent.append(query)
        return pg_named(self, query)

    def lock(self: PostgresTx, key: int) -> None:
        sent.append("advisory lock")
        pg_lock(self, key)

    monkeypatch.setattr(SQLiteTx, "_run", run)
    monkeypatch.setattr(PostgresTx, "_named", named)
    monkeypatch.setattr(PostgresTx, "lock", lock)
    yield sent


def _event(name: str, session_id: str, **fields: Any) -> Any:
    return parse_event("claude-code", json.dumps(
        {"session_id": session_id, "cwd": REPO.worktree, "hook_event_name": name, **fields}))


def test_each_hook_event_sends_its_pinned_statements(
        db: Ctxdb, backend: str, statements: list[str]) -> None:
    db.hook_events.handle(_event("SessionStart", "sibling", source="startup"), lambda: REPO)
    project_id = db.sessions.resolve_project(REPO)["project_id"]
    db.context.store(project_id, {"note": "the invoices are rendered by the billing worker"})
    events = {
        "startup": _event("SessionStart", "s1", source="startup"),
        "prompt": _event("UserPromptSubmit", "s1", prompt="how do payment retries work"),
        "end": _event("SessionEnd", "s1", reason="exit"),
    }
    sent: dict[str, list[str]] = {}
    answers: dict[str, str | None] = {}
    for label, event in events.items():
        if label == "prompt":  # stored after the start: the prompt recalls it
            db.context.store(project_id, {"note": "payment retries use exponential backoff"})
        statements.clear()
        answers[label] = db.hook_events.handle(event, lambda: REPO)
        sent[label] = list(statements)

    assert {label: len(names) for label, names in sent.items()} == EXPECTED[backend], sent
    for label, names in sent.items():
        repeated = {name: n for name, n in Counter(names).items() if n > 1}
        assert all(n <= REPEATS.get(name, 1) for name, n in repeated.items()), (label, repeated,
                                                                            " ".join(names))
    # The events did their work: registered, recalled, ended (with the cap's lock and count).
    assert {"count_live_instances", "reap_stale_and_count_live"} & set(sent["startup"])
    assert answers["startup"] and "billing worker" in answers["startup"]
    assert answers["prompt"] and "payment retries" in answers["prompt"]
    assert [row["status"] for row in db.instances.list(project_id)
            if row["session_id"] == "s1"] == ["completed"]


def test_a_start_within_its_tokens_project_reads_everything_in_its_first_trip(
        db: Ctxdb, backend: str, statements: list[str]) -> None:
    """With the project known before the start reads it (a project's token: ``within``), the
    pack's and the text's reads go with the opening ones (startup_reads_ahead): each is still
    sent once, and the text is the one a new session is given without it (the preview)."""
    db.hook_events.handle(_event("SessionStart", "sibling", source="startup"), lambda: REPO)
    project_id = db.sessions.resolve_project(REPO)["project_id"]
    db.context.store(project_id, {"note": "the invoices are rendered by the billing worker"})
    for session_id, within in (("s1", None), ("s2", project_id)):
        preview = db.continuity.new_session(project_id, "claude-code", REPO)["text"]
        statements.clear()
        text = db.hook_events.handle(_event("SessionStart", session_id, source="startup"),
                                     lambda: REPO, within=within)
        assert len(statements) == EXPECTED[backend]["startup"], statements
        assert text == preview and "billing worker" in text
    # A session that had an instance (revived): the guess was wrong, the reads go again.
    db.hook_events.handle(_event("SessionEnd", "s2", reason="exit"), lambda: REPO)
    preview = db.continuity.new_session(project_id, "claude-code", REPO)["text"]
    text = db.hook_events.handle(_event("SessionStart", "s2", source="startup"),
                                 lambda: REPO, within=project_id)
    assert text == preview
