"""MCP over streamable HTTP at ``/mcp``: the SDK's own client against ``ctxdb serve``'s app on
a real uvicorn server (in a thread), on both backends. The token is the session: its project,
its scope (a read token gets no writing tools) and nothing of another project."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from ctxdb.service import Ctxdb
from remote_server import served
from test_mcp import Client

WRITING = {"store_context"}


@pytest.fixture
def base_url(db: Ctxdb) -> Iterator[str]:
    with served(db) as url:
        yield url


@asynccontextmanager
async def connect(url: str, secret: str | None, path: str = "/mcp") -> AsyncIterator[Client]:
    headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http, \
            streamable_http_client(f"{url}{path}", http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield Client(session)


def run(body: Any) -> None:
    async def main() -> None:
        with anyio.fail_after(60):
            await body()

    anyio.run(main)


@pytest.fixture
def projects(db: Ctxdb) -> dict[str, str]:
    a, b = (db.projects.create(name)["project_id"] for name in ("a", "b"))
    return {"a": a, "b": b}


def test_tools_store_and_get_over_http(base_url: str, db: Ctxdb,
                                       projects: dict[str, str]) -> None:
    a = projects["a"]
    token = db.access_tokens.create(a, "write")
    stored: list[str] = []

    async def body() -> None:
        async with connect(base_url, token["secret"]) as client:
            names = {tool.name for tool in (await client.session.list_tools()).tools}
            assert names == {"search", "timeline", "get", "get_context", "store_context",
                             "call"}
            answer = await client.text("store_context", content="deploys need a green CI",
                                       priority="CRITICAL")
            item_id = answer.split()[3]
            stored.append(item_id)
            whole = await client.text("get", ids=[f"item:{item_id}"])
            assert whole.startswith(f"item:{item_id}: item {item_id} (seq 1, CRITICAL code")
            assert "deploys need a green CI" in whole
            assert "deploys need a green CI" in await client.text("get_context")

    run(body)
    item = db.context.get(int(stored[0]), project_id=a)
    assert item["content"] == "deploys need a green CI"
    audit = db.audit_log(entity_id=stored[0])
    assert audit and audit[0]["actor"] == f"token:{token['token_id']}"


def test_another_project_is_unreachable(base_url: str, db: Ctxdb,
                                        projects: dict[str, str]) -> None:
    a, b = projects["a"], projects["b"]
    secret_of_b = db.context.store(b, "the secret of b", "HIGH", "note")
    db.memories.put(b, "plans", "b", "b's plan")
    token = db.access_tokens.create(a, "admin")["secret"]

    async def body() -> None:
        async with connect(base_url, token) as client:
            for name, arguments in (
                ("get_context", {"project_id": b}),
                ("get", {"ids": [f"item:{secret_of_b['item_id']}"]}),
                ("get", {"ids": ["memory:plans/b"], "project_id": b}),
                ("search", {"query": "secret", "project_id": b}),
                ("call", {"tool": "memory_get", "arguments": {
                    "namespace": "plans", "key": "b", "project_id": b}}),
            ):
                error = await client.error(name, **arguments)
                assert "not_found]" in error and "secret of b" not in error, (name, error)
            hits = await client.text("search", query="secret")
            assert hits.startswith("0 best matches")

    run(body)


def test_a_read_token_gets_no_writing_tools(base_url: str, db: Ctxdb,
                                            projects: dict[str, str]) -> None:
    a = projects["a"]
    token = db.access_tokens.create(a, "read")["secret"]
    before = len(db.audit_log(limit=1_000))

    async def body() -> None:
        async with connect(base_url, token) as client:
            tools = {tool.name: tool for tool in (await client.session.list_tools()).tools}
            assert not WRITING & set(tools)
            callable_ = set(tools["call"].input_schema["properties"]["tool"]["enum"])
            assert "memory_get" in callable_ and "memory_put" not in callable_
            assert "Unknown tool" in await client.error("store_context", content="x")
            assert "unknown tool 'memory_put'" in await client.error(
                "call", tool="memory_put",
                arguments={"namespace": "n", "key": "k", "value": 1})
            assert (await client.text("get_context")).startswith("ctxdb context for project")

    run(body)
    assert len(db.audit_log(limit=1_000)) == before


@pytest.mark.parametrize("secret", [None, "ctxdb_" + "x" * 43])
def test_refused_without_a_valid_token(base_url: str, secret: str | None) -> None:
    async def body() -> None:
        # The SDK's client cannot even initialize (it reports the HTTP error as an MCP error).
        with pytest.raises(Exception) as refused:
            async with connect(base_url, secret):
                pass
        assert "Server returned an error response" in repr(refused.value)

    run(body)
    answer = httpx2.post(f"{base_url}/mcp", json={"jsonrpc": "2.0", "id": 1,
                                                  "method": "tools/list"},
                         headers={} if secret is None else
                         {"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthenticated"


def test_the_url_chooses_every_tool_as_mcp_tools_all_does(base_url: str, db: Ctxdb,
                                                          projects: dict[str, str]) -> None:
    from ctxdb.mcp.server import TOOLS

    a = projects["a"]
    writer, reader = (db.access_tokens.create(a, scope)["secret"] for scope in ("write", "read"))
    every_tool = {declared.tool_name for declared in TOOLS}
    read_only = {declared.tool_name for declared in TOOLS if not declared.writes}

    async def body() -> None:
        async with connect(base_url, writer, "/mcp?tools=all") as client:
            listed = {tool.name for tool in (await client.session.list_tools()).tools}
            assert listed == every_tool and "call" not in listed and "memory_put" in listed
            await client.text("memory_put", namespace="n", key="k", value={"v": 1})
        async with connect(base_url, reader, "/mcp?tools=all") as client:
            listed = {tool.name for tool in (await client.session.list_tools()).tools}
            assert listed == read_only and "memory_get" in listed and "memory_put" not in listed
        async with connect(base_url, writer) as client:  # the default set, unchanged
            listed = {tool.name for tool in (await client.session.list_tools()).tools}
            assert "call" in listed and len(listed) < len(every_tool)

    run(body)
    assert db.memories.get(a, "n", "k")["value"] == {"v": 1}
    wrong = httpx.post(f"{base_url}/mcp?tools=some", headers={
        "Authorization": f"Bearer {writer}", "Accept": "application/json, text/event-stream"},
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_input")
    assert "tools must be one of default, all" in wrong.json()["detail"]
