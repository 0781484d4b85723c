"""``POST /v1/hooks`` in process, on both backends: what a token may reach through a hook
event. (The auth matrix of tests/test_server_api.py covers the route with every other one:
no, malformed, wrong, revoked, expired or read-only tokens are refused.)

The isolation matrix here: project A's token with project B's repository, or B's session,
for every event the hooks handle → exactly the answer for a repository nobody knows, not one
byte of B's, and nothing of B's changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ctxdb.domain.agents import AgentSession, RepoIdentity
from ctxdb.http.app import create_app
from ctxdb.service import Ctxdb

SECRET_OF_B = "the-secret-of-project-b"
REPO_A = {"repo_key": "git:example.com/acme/a@aaaaaaaaaaaa", "name": "a",
          "worktree": "/src/a", "branch": "main"}
REPO_B = {**REPO_A, "repo_key": "git:example.com/acme/b@bbbbbbbbbbbb", "name": "b"}
UNKNOWN = {**REPO_A, "repo_key": "git:example.com/acme/nobody@cccccccccccc", "name": "c"}
EVENTS = {
    "SessionStart": {"source": "startup"},
    "UserPromptSubmit": {"prompt": "go"},
    "PreCompact": {"trigger": "manual", "custom_instructions": None},
    "PostCompact": {"compact_summary": "s"},
    "Stop": {},
    "SessionEnd": {"reason": "logout"},
}


@pytest.fixture
def client(db: Ctxdb) -> Iterator[TestClient]:
    with TestClient(create_app(db)) as test_client:
        yield test_client


@pytest.fixture
def world(db: Ctxdb) -> dict[str, str]:
    """Projects A and B of two repositories; B has a live session and a secret."""
    a = db.sessions.resolve_project(RepoIdentity(**REPO_A))["project_id"]
    b = db.sessions.resolve_project(RepoIdentity(**REPO_B))["project_id"]
    db.context.store(b, {"note": SECRET_OF_B}, "CRITICAL")
    db.sessions.start(AgentSession("claude-code", "b-session"), "startup",
                      RepoIdentity(**REPO_B))
    return {"a": a, "b": b}


def body(name: str, session_id: str, repo: dict[str, Any] | None,
         client: str = "claude-code") -> dict[str, Any]:
    payload = {"hook_event_name": name, "session_id": session_id, "cwd": "/src/x",
               "transcript_path": None, **EVENTS.get(name, {})}
    return {"client": client, "event": payload, "repo": repo, "host": "agent-box-7"}


def bearer(db: Ctxdb, project_id: str | None, scope: str = "write") -> dict[str, str]:
    return {"Authorization": f"Bearer {db.access_tokens.create(project_id, scope)['secret']}"}


def b_state(db: Ctxdb, world: dict[str, str]) -> Any:
    return (db.instances.list(world["b"]), db.tokens.latest_handoff(project_id=world["b"]),
            db.sessions.instance_of(AgentSession("claude-code", "b-session")))


def test_a_projects_token_reaches_nothing_of_another_project(
        db: Ctxdb, client: TestClient, world: dict[str, str]) -> None:
    headers = bearer(db, world["a"])
    before = b_state(db, world)
    tried = 0
    for name in EVENTS:
        unknown = client.post("/v1/hooks", json=body(name, "new-session", UNKNOWN),
                              headers=headers)
        assert unknown.status_code == 404 and unknown.json()["code"] == "project_not_found"
        for foreign in (body(name, "new-session", REPO_B), body(name, "b-session", REPO_A),
                        body(name, "b-session", REPO_B), body(name, "b-session", None)):
            answer = client.post("/v1/hooks", json=foreign, headers=headers)
            assert (answer.status_code, answer.json()) == (404, unknown.json()), (name, foreign)
            assert SECRET_OF_B not in answer.text and world["b"] not in answer.text
            tried += 1
    assert tried == 4 * len(EVENTS)
    assert b_state(db, world) == before
    assert len(db.projects.list()) == 2


def test_a_projects_token_runs_its_own_sessions(
        db: Ctxdb, client: TestClient, world: dict[str, str]) -> None:
    db.context.store(world["a"], "a's own rule", "CRITICAL")
    headers = bearer(db, world["a"])
    started = client.post("/v1/hooks", json=body("SessionStart", "a-session", REPO_A),
                          headers=headers)
    assert started.status_code == 200, started.text
    output = started.json()["output"]["hookSpecificOutput"]
    assert output["hookEventName"] == "SessionStart"
    assert "a's own rule" in output["additionalContext"]
    assert SECRET_OF_B not in started.text
    for name in ("UserPromptSubmit", "PreCompact", "SessionEnd"):
        answer = client.post("/v1/hooks", json=body(name, "a-session", REPO_A),
                             headers=headers)
        assert answer.json() == {"output": None}, name
    agent = db.sessions.instance_of(AgentSession("claude-code", "a-session"))
    assert agent is not None and agent["project_id"] == world["a"]
    assert agent["status"] == "completed"
    assert agent["hostname"] == "agent-box-7"  # the agent's machine, not the server's


def test_a_fleet_token_registers_a_repositorys_project(
        db: Ctxdb, client: TestClient, world: dict[str, str]) -> None:
    answer = client.post("/v1/hooks", json=body("SessionStart", "n-1", UNKNOWN),
                         headers=bearer(db, None))
    assert answer.status_code == 200 and answer.json() == {"output": None}  # nothing to say
    project = db.sessions.find_project(UNKNOWN["repo_key"])
    assert project is not None and project["name"] == "c"
    # A read-only fleet token may not: a hook event writes.
    refused = client.post("/v1/hooks", json=body("SessionStart", "n-2", REPO_B),
                          headers=bearer(db, None, "read"))
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


@pytest.mark.parametrize(("request_body", "expected"), [
    (body("SessionStart", "s", REPO_A, client="vim"), "unknown client 'vim'"),
    (body("SessionStart", "", REPO_A), "has no session_id"),
    (body("SessionStart", "s", None), "needs the repository identity"),
    (body("SessionStart", "s", {**REPO_A, "repo_key": ""}), "repo_key"),
    ({**body("SessionStart", "s", REPO_A), "event": [1]}, "event"),
    ({**body("SessionStart", "s", REPO_A), "extra": 1}, "extra"),
    ({**body("SessionStart", "s", REPO_A), "host": "h" * 256}, "hostname"),
])
def test_a_malformed_hook_request_is_a_problem_that_changes_nothing(
        db: Ctxdb, client: TestClient, request_body: dict[str, Any], expected: str) -> None:
    answer = client.post("/v1/hooks", json=request_body, headers=bearer(db, None))
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert expected in answer.text
    assert db.projects.list() == []


def test_an_event_ctxdb_does_not_handle_answers_nothing(
        db: Ctxdb, client: TestClient) -> None:
    answer = client.post("/v1/hooks", json=body("Notification", "s", REPO_A),
                         headers=bearer(db, None))
    assert answer.json() == {"output": None} and db.projects.list() == []
