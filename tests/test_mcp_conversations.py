"""The session tools of ``ctxdb mcp`` (a real subprocess over stdio) on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from test_mcp import Client, run_session


@pytest.fixture
def project_id(db: Ctxdb, project: dict[str, Any]) -> str:
    return str(project["project_id"])


def test_append_and_read_events(
    settings: Settings, tmp_path: Path, db: Ctxdb, project_id: str
) -> None:
    sid = db.conversations.create(project_id, "shop-bot", "u1")["session_id"]

    async def body(client: Client) -> None:
        first = await client.text("session_append", session_id=sid, role="user",
                                  content="hello", idempotency_key="m1")
        assert first.startswith(f"Appended event #1 (user) to session {sid} at ")
        assert "'m1'" in first
        assert await client.text("session_append", session_id=sid, role="user",
                                 content="hello", idempotency_key="m1") == first
        await client.text("session_append", session_id=sid, role="assistant",
                          content={"text": "hi"}, metadata={"model": "m"})
        await client.text("session_append", session_id=sid, role="tool", content=42)
        listing = (await client.text("session_events", session_id=sid)).splitlines()
        assert listing == [f"3 events of session {sid}:", "#1 [user] hello",
                           '#2 [assistant] {"text": "hi"}', "#3 [tool] 42"]
        page = (await client.text("session_events", session_id=sid, limit=2)).splitlines()
        assert page[-1] == "More may follow: call again with after_sequence=2."
        rest = (await client.text("session_events", session_id=sid,
                                  after_sequence=2)).splitlines()
        assert rest == [f"1 events of session {sid} after #2:", "#3 [tool] 42"]

    run_session(settings, tmp_path, body, "--project", project_id)
    events = db.conversations.events(sid)
    assert [(e["sequence"], e["role"]) for e in events] == [
        (1, "user"), (2, "assistant"), (3, "tool")]
    assert events[1]["metadata"] == {"model": "m"}


def test_session_tool_errors_change_nothing(
    settings: Settings, tmp_path: Path, db: Ctxdb, project_id: str
) -> None:
    sid = db.conversations.create(project_id, "shop-bot", "u1")["session_id"]
    closed = db.conversations.create(project_id, "shop-bot", "u2")["session_id"]
    db.conversations.close(closed)
    other = db.projects.create("other")["project_id"]

    async def body(client: Client) -> None:
        unknown = await client.error("session_append", session_id="sess_unknown", role="user",
                                     content="x")
        assert "[session_not_found]" in unknown
        assert "[invalid_input]" in await client.error(
            "session_append", session_id=sid, role="robot", content="x")
        assert "[invalid_transition]" in await client.error(
            "session_append", session_id=closed, role="user", content="x")
        assert "[session_not_found]" in await client.error(
            "session_events", session_id=sid, project_id=other)
        assert "[session_not_found]" in await client.error(
            "session_append", session_id=sid, role="user", content="x", project_id=other)

    run_session(settings, tmp_path, body)
    assert db.conversations.events(sid) == db.conversations.events(closed) == []
