"""The memory tools of ``ctxdb mcp`` (a real subprocess over stdio) on both backends."""

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


def test_put_get_and_list_memories(
    settings: Settings, tmp_path: Path, db: Ctxdb, project_id: str
) -> None:
    async def body(client: Client) -> None:
        stored = await client.text("memory_put", project_id=project_id, namespace="user:prefs",
                                   key="theme", value={"dark": True}, expected_version=0)
        assert stored.startswith("Stored memory user:prefs/theme v1 (semantic)")
        await client.text("memory_put", project_id=project_id, namespace="user:prefs",
                          key="theme", value={"dark": False}, expected_version=1,
                          memory_type="procedural")
        await client.text("memory_put", project_id=project_id, namespace="app", key="x",
                          value="plain", memory_type="episodic")
        got = await client.text("memory_get", project_id=project_id, namespace="user:prefs",
                                key="theme")
        assert got.startswith("Memory user:prefs/theme v2 (procedural), written by user:test")
        assert got.endswith('{"dark": false}')
        old = await client.text("memory_get", project_id=project_id, namespace="user:prefs",
                                key="theme", version=1)
        assert "version 1" in old and old.endswith('{"dark": true}')
        listing = (await client.text("memory_list", project_id=project_id)).splitlines()
        assert listing == [f"2 memories in project {project_id}:",
                           "- app/x v1 (episodic): plain",
                           '- user:prefs/theme v2 (procedural): {"dark": false}']
        page = (await client.text("memory_list", project_id=project_id, limit=1)).splitlines()
        assert page[-1] == ("More may follow: call again with after_namespace='app' and "
                            "after_key='x'.")
        rest = await client.text("memory_list", project_id=project_id, after_namespace="app",
                                  after_key="x")
        assert rest.splitlines()[1].startswith("- user:prefs/theme v2")
        assert "1 memories under 'user'" in await client.text(
            "memory_list", project_id=project_id, prefix="user")

    run_session(settings, tmp_path, body)
    memory = db.memories.get(project_id, "user:prefs", "theme")
    assert (memory["version"], memory["value"]) == (2, {"dark": False})
    assert db.memories.get(project_id, "app", "x")["expires_at"] is not None  # 90-day policy


def test_memory_tool_errors_change_nothing(
    settings: Settings, tmp_path: Path, db: Ctxdb, project_id: str
) -> None:
    db.memories.put(project_id, "user", "k", 1)
    db.memories.put(project_id, "user", "k", 2)

    async def body(client: Client) -> None:
        stale = await client.error("memory_put", project_id=project_id, namespace="user",
                                   key="k", value=3, expected_version=1)
        assert "is at version 2" in stale and "[version_conflict]" in stale
        exists = await client.error("memory_put", project_id=project_id, namespace="user",
                                    key="k", value=3, expected_version=0)
        assert "[version_conflict]" in exists
        bad = await client.error("memory_put", project_id=project_id, namespace="user prefs",
                                 key="k", value=1)
        assert "not a namespace path" in bad
        kind = await client.error("memory_put", project_id=project_id, namespace="user",
                                  key="k", value=1, memory_type="dream")
        assert "memory type must be one of" in kind
        missing = await client.error("memory_get", project_id=project_id, namespace="user",
                                     key="nope")
        assert "[memory_not_found]" in missing
        other = db.projects.create("other")["project_id"]
        assert "[memory_not_found]" in await client.error(
            "memory_get", project_id=other, namespace="user", key="k")
        assert "[project_not_found]" in await client.error("memory_list",
                                                          project_id="proj_nope")

    run_session(settings, tmp_path, body)
    assert db.memories.get(project_id, "user", "k")["value"] == 2
    assert len(db.memories.history(project_id, "user", "k")) == 2
