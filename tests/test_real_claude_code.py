"""The real Claude Code CLI, offline: the CRITICAL item at startup and after compaction and
resume, and a new session picking up where the last one stopped.

Claude Code runs non-interactively (``claude -p``) with ctxdb's hooks installed in a scratch
git repository (``ctxdb install claude-code``) and talks to a mock of the Messages API on a
loopback port (``ANTHROPIC_BASE_URL``) that records every request. Session 1 gets a marked
request; the mock model writes a todo list with one of the CLI's two sets of todo tools
(TodoWrite, or the default task tools TaskCreate and TaskUpdate; loaded through ToolSearch
first, as a real model does, since the CLI defers them), then gives a last answer; the
session ends (SessionEnd fires as ``claude -p`` exits). Session 2 is a fresh session, no
``--resume``: its first request to the model must carry the marked request and the open
todos, which only ctxdb's SessionStart hook can have put there. Then session 2 is compacted
(``claude -p /compact --resume``, the mock writing the summary) and resumed; the resumed turn's
request must carry the CRITICAL item again.

Every proxy variable points at the mock, which records and refuses anything addressed to
another host: the test asserts that nothing was.

The CLI comes from ``CTXDB_TEST_CLAUDE`` (the path of the ``claude`` program), else from
``PATH``. Without it the test is skipped, unless ``CTXDB_REQUIRE_CLIENTS=1`` (set by CI,
which installs the pinned version: see ``.ci/run``), in which case it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from real_clients import (
    CLI_TIMEOUT,
    MockServer,
    Recorded,
    client_program,
    ctxdb,
    diagnosis,
    git_repository,
    query,
    store_critical,
)

MARKED_REQUEST = "MARK-7f3a implement the refund flow"
OPEN_TODOS = ("TODO-91c2 write the refund ledger entry", "TODO-4d7e test partial refunds")
DONE_TODO = "TODO-0b55 read the payment model"
CRITICAL = "CRIT-3a71 a refund never exceeds the captured amount"
LAST_ANSWER = "ANSWER-5e18 the refund flow is planned; the ledger entry is next."


@pytest.fixture
def claude() -> str:
    return client_program("CTXDB_TEST_CLAUDE", "claude", "Claude Code")


class MockModel:
    """A loopback stand-in for the Messages API that records every request.

    The session of the marked request plays the script of ``todo_tool`` (``SCRIPTS``), one
    turn per request; any other request gets a short text.
    """

    def __init__(self, todo_tool: str) -> None:
        self.todo_tool = todo_tool
        self.server = MockServer(self.answer)

    def answer(self, request: Recorded) -> tuple[int, str, bytes] | None:
        if request.method != "POST" or urlsplit(request.target).path != "/v1/messages" \
                or not isinstance(request.body, dict):
            return None
        message = _message(request.body, _reply(request.body, self.todo_tool))
        if request.body.get("stream"):
            return 200, "text/event-stream", _stream(message)
        return 200, "application/json", json.dumps(message).encode()

    def model_requests(self, session_id: str) -> list[dict[str, Any]]:
        """The bodies of the Messages API requests of one Claude Code session, in order."""
        bodies = [r.body for r in self.server.recorded()
                  if r.method == "POST" and urlsplit(r.target).path == "/v1/messages"]
        return [body for body in bodies if _session_of(body) == session_id]


def _session_of(body: Any) -> str | None:
    """The Claude Code session of a request (``metadata.user_id`` is a JSON object)."""
    if not isinstance(body, dict):
        return None
    user = (body.get("metadata") or {}).get("user_id")
    try:
        session = json.loads(user).get("session_id") if isinstance(user, str) else None
    except (ValueError, AttributeError):
        return None
    return session if isinstance(session, str) else None


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content or [] if isinstance(block, dict)]


def _tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results of the request's last user turn."""
    users = [m for m in request.get("messages", []) if m.get("role") == "user"]
    return [b for b in _blocks(users[-1]) if b.get("type") == "tool_result"] if users else []


def _typed_prompts(request: dict[str, Any]) -> list[str]:
    """The texts of the request's user turns (those Claude Code adds are system reminders)."""
    return [str(block.get("text", "")).strip() for message in request.get("messages", [])
            if message.get("role") == "user" for block in _blocks(message)
            if block.get("type") == "text"]


def _tool_result_texts(request: dict[str, Any]) -> list[str]:
    texts = []
    for result in _tool_results(request):
        content = result.get("content")
        texts += [content] if isinstance(content, str) else \
            [str(block.get("text", "")) for block in _blocks({"content": content})]
    return texts


def _todo_write_turns(request: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Load TodoWrite, write the list (one todo done, two open), answer."""
    todos = [{"content": content, "status": status, "activeForm": content}
             for content, status in ((DONE_TODO, "completed"), (OPEN_TODOS[0], "in_progress"),
                                     (OPEN_TODOS[1], "pending"))]
    return [
        [_tool_use("search", "ToolSearch", {"query": "select:TodoWrite"})],
        [_tool_use("todos", "TodoWrite", {"todos": todos})],
        [{"type": "text", "text": LAST_ANSWER}],
    ]


def _task_turns(request: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Load the task tools, create three tasks, complete one and start another (by the ids
    the CLI reported), answer."""
    created = dict(match.groups()[::-1] for text in _tool_result_texts(request)
                   for match in [CREATED_TASK.match(text)] if match)
    updates = [(DONE_TODO, "completed"), (OPEN_TODOS[0], "in_progress")]
    return [
        [_tool_use("search", "ToolSearch", {"query": "select:TaskCreate,TaskUpdate"})],
        [_tool_use(f"create{i}", "TaskCreate",
                   {"subject": subject, "description": f"{subject} (details)",
                    "activeForm": subject})
         for i, subject in enumerate((DONE_TODO, *OPEN_TODOS))],
        [_tool_use(f"update{i}", "TaskUpdate",
                   {"taskId": created.get(subject, "?"), "status": status})
         for i, (subject, status) in enumerate(updates)],
        [{"type": "text", "text": LAST_ANSWER}],
    ]


SCRIPTS = {"TodoWrite": _todo_write_turns, "TaskCreate": _task_turns}
CREATED_TASK = re.compile(r"Task #(\w+) created successfully: (.*)")


def _tool_use(name: str, tool: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_mock_{name}", "name": tool, "input": tool_input}


def _reply(request: dict[str, Any], todo_tool: str) -> list[dict[str, Any]]:
    """The content of the mock model's answer to ``request``: the marked request's session
    plays its script, one turn per answer; anything else gets a short text."""
    if MARKED_REQUEST not in _typed_prompts(request) or not request.get("tools"):
        return [{"type": "text", "text": "OK."}]
    turns = SCRIPTS[todo_tool](request)
    answered = sum(1 for message in request.get("messages", [])
                   if message.get("role") == "assistant")
    return turns[min(answered, len(turns) - 1)]


def _message(request: dict[str, Any], content: list[dict[str, Any]]) -> dict[str, Any]:
    tool_use = any(block["type"] == "tool_use" for block in content)
    return {"id": f"msg_mock_{uuid.uuid4().hex}", "type": "message", "role": "assistant",
            "model": request.get("model", "mock"), "content": content,
            "stop_reason": "tool_use" if tool_use else "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 1_000, "output_tokens": 20,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}


def _stream(message: dict[str, Any]) -> bytes:
    """``message`` as the Messages API streams it (server-sent events)."""
    start = {**message, "content": [], "stop_reason": None,
             "usage": {**message["usage"], "output_tokens": 1}}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events += [
                {"type": "content_block_start", "index": index,
                 "content_block": {"type": "text", "text": ""}},
                {"type": "content_block_delta", "index": index,
                 "delta": {"type": "text_delta", "text": block["text"]}}]
        else:
            events += [
                {"type": "content_block_start", "index": index,
                 "content_block": {**block, "input": {}}},
                {"type": "content_block_delta", "index": index,
                 "delta": {"type": "input_json_delta",
                           "partial_json": json.dumps(block["input"])}}]
        events.append({"type": "content_block_stop", "index": index})
    events += [{"type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": message["usage"]["output_tokens"]}},
               {"type": "message_stop"}]
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


@pytest.fixture(params=sorted(SCRIPTS))
def mock_model(request: pytest.FixtureRequest) -> Iterator[MockModel]:
    """The mock model, its todo list written with one tool or the other."""
    mock = MockModel(str(request.param))
    with mock.server:
        yield mock


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repository with one commit and ctxdb's Claude Code hooks installed."""
    repo = git_repository(tmp_path / "shop")
    ctxdb("install", "claude-code", "--scope", "project", cwd=repo, env=dict(os.environ))
    return repo


def client_env(tmp_path: Path, mock: MockModel) -> dict[str, str]:
    """Claude Code offline against the mock, ctxdb's hooks on a scratch SQLite database."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    keep = {name: os.environ[name] for name in ("PATH", "LANG", "TMPDIR")
            if name in os.environ}
    return {
        **keep,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "ANTHROPIC_BASE_URL": mock.server.url,
        "ANTHROPIC_API_KEY": "sk-ant-offline-test",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        # The CLI offers no todo tool with its newest default model: ask for them. The task
        # tools (TaskCreate, TaskUpdate) are the default; CLAUDE_CODE_ENABLE_TASKS=0 gives
        # the older TodoWrite list.
        "CLAUDE_CODE_ENABLE_TODO_TOOLS": "1",
        **({"CLAUDE_CODE_ENABLE_TASKS": "0"} if mock.todo_tool == "TodoWrite" else {}),
        # Anything addressed elsewhere lands on the mock, which records and refuses it.
        **mock.server.proxy_env(),
        "CTXDB_URL": str(tmp_path / "ctxdb.db"),
        "CTXDB_HOOK_LOG": str(tmp_path / "hook.log"),
    }


def run_session(program: str, repo: Path, env: dict[str, str], prompt: str,
                resume: str | None = None) -> str:
    """Run one non-interactive session (or a turn of ``resume``) to its end; returns its
    session id."""
    done = subprocess.run([program, "-p", prompt, "--output-format", "json",
                           "--strict-mcp-config", *(["--resume", resume] if resume else [])],
                          cwd=repo, env=env, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"claude failed: {done.stdout}\n{done.stderr}"
    result = json.loads(done.stdout)
    assert result.get("is_error") is False, result
    return str(result["session_id"])


def test_a_fresh_session_is_given_the_marked_request_and_open_todos_of_the_last(
    claude: str, tmp_path: Path, project: Path, mock_model: MockModel
) -> None:
    env = client_env(tmp_path, mock_model)
    store_critical(project, env, CRITICAL)

    first = run_session(claude, project, env, MARKED_REQUEST)
    first_requests = mock_model.model_requests(first)
    assert CRITICAL in json.dumps(first_requests[0]), diagnosis(env)  # at startup
    # The whole script was played and every tool call succeeded: the todo list is written.
    assert len(first_requests) == len(SCRIPTS[mock_model.todo_tool](first_requests[-1]))
    results = [result for body in first_requests for result in _tool_results(body)]
    assert results and not [result for result in results if result.get("is_error")], results

    second = run_session(claude, project, env, "What should I work on?")
    assert second != first
    second_requests = mock_model.model_requests(second)
    assert second_requests, "session 2 sent no request to the model"
    opening = json.dumps(second_requests[0])
    context = diagnosis(env)
    assert MARKED_REQUEST in opening, context
    for todo in OPEN_TODOS:
        assert todo in opening, context
    assert DONE_TODO not in opening
    assert CRITICAL in opening
    assert mock_model.server.elsewhere() == []
    if mock_model.todo_tool == "TodoWrite":  # compaction does not depend on the todo tool
        compacted_and_resumed(claude, project, env, mock_model, second)


def compacted_and_resumed(claude: str, project: Path, env: dict[str, str], mock: MockModel,
                          session: str) -> None:
    """``/compact`` the session, then resume it: the request after the compaction carries the
    CRITICAL item, which only ctxdb can have put back (the summary the mock wrote is "OK.")."""
    assert run_session(claude, project, env, "/compact", resume=session) == session
    assert run_session(claude, project, env, "Carry on.", resume=session) == session
    sources = [source for (source,) in query(
        env, "SELECT source FROM injections WHERE session_id = ? ORDER BY created_at", session)]
    assert "compact" in sources and sources[-1] == "resume", diagnosis(env)
    after = json.dumps(mock.model_requests(session)[-1])
    assert "Carry on." in after and CRITICAL in after, diagnosis(env)
