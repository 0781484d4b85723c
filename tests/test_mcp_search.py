"""The search tool of ``ctxdb mcp`` (a real subprocess over stdio) on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ctxdb.mcp import render
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from test_mcp import Client, run_session


@pytest.fixture
def project_id(db: Ctxdb, project: dict[str, Any]) -> str:
    pid = str(project["project_id"])
    db.context.store(pid, {"decision": "payments via Stripe"}, "CRITICAL", "decision")
    db.memories.put(pid, "billing:psp", "provider", "stripe")
    session = db.conversations.create(pid, "chat", "ana")
    db.conversations.append(session["session_id"], "user", "is stripe down?")
    return pid


def test_search_finds_every_kind_and_says_where_it_lives(
    settings: Settings, tmp_path: Path, db: Ctxdb, project_id: str
) -> None:
    async def body(client: Client) -> None:
        listed = {tool.name: tool for tool in (await client.session.list_tools()).tools}
        schema = listed["search"].input_schema
        assert schema["required"] == ["query"] and listed["search"].annotations.read_only_hint
        lines = (await client.text("search", project_id=project_id, query="STRIPE")).splitlines()
        assert lines[0] == (f"3 best matches for 'STRIPE' in project {project_id} (matching "
                            "words between **; whole records: get with the ids):")
        assert any(line.startswith("- item:1 (CRITICAL decision, seq 1) score ")
                   and line.endswith("decision payments via **Stripe**") for line in lines)
        assert any(line.startswith("- memory:billing:psp/provider (memory v1, semantic) ")
                   for line in lines)
        assert any(line.startswith("- event:sess_") and "/1 (user event)" in line
                   and line.endswith("is **stripe** down?") for line in lines)
        memories = await client.text("search", project_id=project_id, query="stripe",
                                     kinds=["memory"], namespace="billing", limit=1)
        assert memories.splitlines()[1].startswith("- memory:billing:psp/provider")
        assert memories.splitlines()[2] == "More may match: raise limit or narrow the search."
        none = await client.text("search", project_id=project_id, query="absent",
                                 since="1h")
        assert none == f"0 best matches for 'absent' in project {project_id} (matching " \
            "words between **; whole records: get with the ids):"
        refused = await client.error("search", project_id=project_id, query="?!")
        assert "no words to search for" in refused and "[invalid_search_query]" in refused
        other = db.projects.create("other")["project_id"]
        assert (await client.text("search", project_id=other, query="stripe")).startswith(
            "0 best matches")

    run_session(settings, tmp_path, body)


def test_hit_lines() -> None:
    hit = {"kind": "event", "id": 4, "sequence": 2, "session_id": "sess_x", "type": "tool",
           "time": "2025-01-01T00:00:00.000Z", "snippet": "ran **tests**", "score": 1.5}
    assert render.hit_line(hit) == ("- event:sess_x/2 (tool event) score 1.50, "
                                    "2025-01-01T00:00:00.000Z: ran **tests**")
