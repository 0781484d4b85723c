"""``ctxdb install CLIENT --server URL``: the MCP server registered by URL (``ctxdb serve``'s
``/mcp``) with the token named by its environment variable, never written in clear."""

from __future__ import annotations

import json
import os
import tomllib
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ctxdb.cli.main import cli
from test_install import EXE, Setup, setup  # noqa: F401 - setup is the fixture

SERVER = "https://ctxdb.example:8080/"
MCP_URL = "https://ctxdb.example:8080/mcp"
SECRET = "ctxdb_the-secret-itself-never-written"


def install(setup: Setup, *args: str, token: str | None = SECRET) -> Result:  # noqa: F811
    return CliRunner().invoke(
        cli, ["--traceback", "install", *args, "--ctxdb-command", EXE],
        env={"HOME": str(setup.home), "CODEX_HOME": None, "CTXDB_TOKEN": token,
             "PATH": f"{setup.bin}{os.pathsep}/usr/bin:/bin"})


def server_entry(setup: Setup, client: str) -> dict[str, Any]:  # noqa: F811
    files = setup.files(client, "project")
    if client == "codex":
        return dict(tomllib.loads(files["config"].read_text())["mcp_servers"]["ctxdb"])
    path = files["mcp" if client == "claude-code" else "settings"]
    return dict(json.loads(path.read_text())["mcpServers"]["ctxdb"])


EXPECTED = {
    "claude-code": {"type": "http", "url": MCP_URL,
                    "headers": {"Authorization": "Bearer ${CTXDB_TOKEN}"}},
    "codex": {"url": MCP_URL, "bearer_token_env_var": "CTXDB_TOKEN"},
    "gemini": {"httpUrl": MCP_URL, "headers": {"Authorization": "Bearer ${CTXDB_TOKEN}"}},
}


@pytest.mark.parametrize("client", sorted(EXPECTED))
def test_the_server_is_registered_by_url_with_the_token_by_name(
    setup: Setup, client: str  # noqa: F811
) -> None:
    done = install(setup, client, "--server", SERVER)
    assert done.exit_code == 0, done.output
    assert server_entry(setup, client) == EXPECTED[client]
    written = "".join(path.read_text() for path in setup.tmp.rglob("*") if path.is_file())
    assert SECRET not in written
    # Back to a local `ctxdb mcp`: the URL's keys go, the process's come back.
    assert install(setup, client).exit_code == 0
    local = server_entry(setup, client)
    assert local["args"] == ["mcp"] and not {"url", "httpUrl", "headers"} & set(local)
    assert install(setup, client, "--server", SERVER).exit_code == 0
    assert server_entry(setup, client) == EXPECTED[client]


def test_keys_the_user_added_stay_and_a_missing_token_is_a_warning(
    setup: Setup  # noqa: F811
) -> None:
    mcp_file = setup.files("claude-code", "project")["mcp"]
    mcp_file.write_text(json.dumps({"mcpServers": {"ctxdb": {
        "type": "stdio", "command": "ctxdb", "args": ["mcp"], "timeout": 9}}}))
    done = install(setup, "claude-code", "--server", SERVER, token=None)
    assert done.exit_code == 0, done.output
    assert "warning: CTXDB_TOKEN is not set here" in done.stderr
    assert server_entry(setup, "claude-code") == {**EXPECTED["claude-code"], "timeout": 9}


@pytest.mark.parametrize("url", ["ctxdb.example:8080", "ftp://ctxdb.example", "https://"])
def test_a_url_that_is_not_http_is_refused_and_nothing_written(
    setup: Setup, url: str  # noqa: F811
) -> None:
    before = setup.snapshot()
    done = install(setup, "gemini", "--server", url)
    assert done.exit_code == 2 and "is not an http:// or https:// URL" in done.output
    assert setup.snapshot() == before


def test_the_endpoint_is_not_doubled(setup: Setup) -> None:  # noqa: F811
    assert install(setup, "codex", "--server", MCP_URL + "/").exit_code == 0
    assert server_entry(setup, "codex")["url"] == MCP_URL


def test_help_documents_it() -> None:
    assert "--server URL" in CliRunner().invoke(cli, ["install", "--help"]).stdout


@pytest.mark.parametrize(("given", "endpoint"), [
    ("http://127.0.0.1:8700", "http://127.0.0.1:8700/mcp"),
    ("https://ctxdb.example.com/base/", "https://ctxdb.example.com/base/mcp"),
    ("https://ctxdb.example.com/mcp", "https://ctxdb.example.com/mcp"),
    # Every tool listed by itself (docs/mcp.md): the query stays after the path.
    ("https://ctxdb.example.com?tools=all", "https://ctxdb.example.com/mcp?tools=all"),
    ("https://ctxdb.example.com/mcp/?tools=all", "https://ctxdb.example.com/mcp?tools=all"),
])
def test_the_server_url_becomes_its_mcp_endpoint(given: str, endpoint: str) -> None:
    from ctxdb.cli.install import mcp_endpoint

    assert mcp_endpoint(given) == endpoint
