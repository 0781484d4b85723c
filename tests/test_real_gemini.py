"""The real Gemini CLI, offline: the CRITICAL item at startup, after ``--resume`` and after
Gemini compresses its chat, token usage as the model reported it, a handoff for the next
session and one for the compression, no handoff per turn.

Gemini CLI runs with ctxdb installed in a scratch git repository (``ctxdb install gemini
--scope project``), the folder trusted (``GEMINI_CLI_TRUST_WORKSPACE``), against a mock of the
Gemini API on a loopback port (``GOOGLE_GEMINI_BASE_URL``) that records every request. Each
turn makes a routing call (``generateContent``, JSON asked for) and the turn's own streamed
call (``streamGenerateContent``); the mock reports a distinct prompt token count for each.

Startup and resume run headless (``gemini -p``). The compression runs in Gemini's interactive
UI on a pseudo-terminal (``interactive_client``), where several prompts share one chat: Gemini
compresses before a prompt's request when the previous answer reported more than half
(its default threshold) of the model's 1,048,576-token window, asking the model for a summary
(the mock writes one) and checking it; it fires PreCompress on every turn and no SessionStart
after compressing, so ctxdb reads the compression from Gemini's session file and puts the
context back on the next prompt (BeforeAgent; ``service.usecases.compression_reload``).

The CLI comes from ``CTXDB_TEST_GEMINI`` (the ``gemini`` program), else from PATH; without it
the test is skipped, unless ``CTXDB_REQUIRE_CLIENTS=1`` (CI: ``.ci/run`` installs the pinned
version), in which case it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from interactive_client import TerminalProgram
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

CRITICAL = "CRIT-5b1e amounts are integer cents, never floats"
MARKED_REQUEST = "MARK-2c9d implement the refund ledger"
ANSWER = "ANSWER-77a0 the refund ledger is planned."
# The prompt token count the mock reports for its n-th streamed answer (0, 1, ...).
CACHED_TOKENS = 700
# Gemini does not wait for its SessionEnd hook: on a loaded machine the session may not be
# marked ended, and is then noticed once silent past stale_after (short here).
STALE_AFTER = 2.0


# What Gemini's summarizer answers in the compression test: the CRITICAL item is not in it.
SUMMARY = "<state_snapshot>SNAP-4e0c the user is planning the refund ledger</state_snapshot>"


def prompt_tokens(n: int) -> int:
    return 5_000 + 123 * n


@pytest.fixture
def gemini() -> str:
    return client_program("CTXDB_TEST_GEMINI", "gemini", "Gemini CLI")


class GeminiMock:
    """Answers the routing call with a choice of model, the summarizer of a compression with
    ``SUMMARY`` and each streamed call with a text.

    With ``first_prompt_tokens``, the first streamed answer reports that many prompt tokens,
    the next ones few: enough, before the second prompt, for Gemini to compress its chat.
    """

    def __init__(self, first_prompt_tokens: int | None = None) -> None:
        self.turns = 0
        self.first_prompt_tokens = first_prompt_tokens
        self.server = MockServer(self.answer)

    def answer(self, request: Recorded) -> tuple[int, str, bytes] | None:
        path = urlsplit(request.target).path
        if request.method != "POST" or not path.startswith("/v1beta/models/") \
                or not isinstance(request.body, dict):
            return None
        config = request.body.get("generationConfig") or {}
        if config.get("responseMimeType") == "application/json":  # the router's question
            text = json.dumps({"reasoning": "simple", "model_choice": "flash",
                               "complexity_reasoning": "simple", "complexity_score": 1})
            usage = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}
        elif is_summarizer(request.body):
            text = SUMMARY
            usage = {"promptTokenCount": 40, "candidatesTokenCount": 9, "totalTokenCount": 49}
        else:
            text = ANSWER
            prompt = prompt_tokens(self.turns)
            if self.first_prompt_tokens is not None:
                prompt = self.first_prompt_tokens if self.turns == 0 else 900 + self.turns
            self.turns += 1
            usage = {"promptTokenCount": prompt, "cachedContentTokenCount": CACHED_TOKENS,
                     "candidatesTokenCount": 20, "totalTokenCount": prompt + 20}
        reply = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                 "finishReason": "STOP", "index": 0}],
                 "usageMetadata": usage, "modelVersion": "gemini-mock"}
        if ":streamGenerateContent" in path:
            return 200, "text/event-stream", f"data: {json.dumps(reply)}\r\n\r\n".encode()
        return 200, "application/json", json.dumps(reply).encode()

    def turn_requests(self) -> list[dict[str, Any]]:
        """The bodies of the streamed (turn) requests, in order."""
        return [r.body for r in self.server.recorded()
                if ":streamGenerateContent" in urlsplit(r.target).path]

    def summarizer_requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.server.recorded()
                if isinstance(r.body, dict) and is_summarizer(r.body)]


def is_summarizer(body: dict[str, Any]) -> bool:
    """A request of Gemini's chat compression (its instructions ask for a state snapshot)."""
    return "state_snapshot" in json.dumps(body.get("systemInstruction") or "")


@pytest.fixture
def mock() -> Iterator[GeminiMock]:
    mock = GeminiMock()
    with mock.server:
        yield mock


def client_env(tmp_path: Path, mock: GeminiMock) -> dict[str, str]:
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
    }), encoding="utf-8")
    keep = {name: os.environ[name] for name in ("PATH", "LANG", "TMPDIR") if name in os.environ}
    return {
        **keep,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GOOGLE_GEMINI_BASE_URL": mock.server.url,
        "GEMINI_API_KEY": "offline-test-key",
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
        "GEMINI_TELEMETRY_ENABLED": "false",
        **mock.server.proxy_env(),
        "CTXDB_URL": str(tmp_path / "ctxdb.db"),
        "CTXDB_HOOK_LOG": str(tmp_path / "hook.log"),
        "CTXDB_STALE_AFTER": str(STALE_AFTER),
    }


def run_turn(program: str, repo: Path, env: dict[str, str], prompt: str,
             resume: str | None = None) -> str:
    """One headless turn (of a new session, or of ``resume``); returns the session id."""
    done = subprocess.run([program, "-p", prompt, "-o", "json",
                           *(["--resume", resume] if resume else [])],
                          cwd=repo, env=env, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"gemini failed: {done.stdout}\n{done.stderr}"
    result = json.loads(done.stdout)
    assert result.get("response") == ANSWER, result
    return str(result["session_id"])


def test_critical_context_at_startup_and_after_resume_and_a_handoff_for_the_next_session(
    gemini: str, tmp_path: Path, mock: GeminiMock
) -> None:
    env = client_env(tmp_path, mock)
    repo = git_repository(tmp_path / "shop")
    ctxdb("install", "gemini", "--scope", "project", cwd=repo, env=env)
    store_critical(repo, env, CRITICAL)

    first = run_turn(gemini, repo, env, MARKED_REQUEST)
    [opening] = mock.turn_requests()
    assert CRITICAL in json.dumps(opening), diagnosis(env)
    # Token usage of the turn, as the model reported it (AfterAgent ingests the transcript).
    [(reported,)] = query(env, "SELECT input_tokens + cache_read_tokens FROM api_usage "
                               "WHERE session_id = ?", first)
    assert reported == prompt_tokens(0), diagnosis(env)

    resumed = run_turn(gemini, repo, env, "Carry on.", resume=first)
    assert resumed == first
    after_resume = mock.turn_requests()[-1]
    # Gemini rebuilt the history without the first <hook_context> message: only ctxdb's
    # SessionStart(resume) can have put the CRITICAL item back.
    assert CRITICAL in json.dumps(after_resume), diagnosis(env)
    [(usage,)] = query(env, "SELECT current_token_usage FROM instances WHERE session_id = ?",
                       first)
    assert usage == prompt_tokens(1), diagnosis(env)
    # PreCompress fired on each turn without a compression: no handoff was stored for it.
    assert query(env, "SELECT kind FROM handoffs WHERE kind = 'compact'") == []

    time.sleep(STALE_AFTER + 0.5)
    run_turn(gemini, repo, env, "What should I work on?")
    next_opening = json.dumps(mock.turn_requests()[-1])
    assert MARKED_REQUEST in next_opening, diagnosis(env)
    assert CRITICAL in next_opening
    assert mock.server.elsewhere() == []


# Over half (Gemini's default compression threshold) of the 1,048,576-token window of its
# models: the prompt after the answer that reported it starts with a compression.
COMPRESSING_PROMPT_TOKENS = 600_000
PROMPTS = ("MARK-2c9d implement the refund ledger", "PROMPT-2 go on with the ledger",
           "PROMPT-3 add the reversal entry", "PROMPT-4 write its test")


def test_critical_context_after_gemini_compresses_its_chat_and_a_handoff(
    gemini: str, tmp_path: Path
) -> None:
    """Interactive Gemini (its terminal UI on a pseudo-terminal): the answer to the first
    prompt reports a context past Gemini's threshold, so before the second prompt's request
    Gemini compresses its history (the mock writes the summary, without the CRITICAL item)
    and fires no SessionStart. The third prompt's request carries the CRITICAL item again,
    put back by ctxdb's BeforeAgent hook with the handoff it saved; the fourth adds nothing
    (once per compression)."""
    mock = GeminiMock(first_prompt_tokens=COMPRESSING_PROMPT_TOKENS)
    with mock.server:
        env = {**client_env(tmp_path, mock), "TERM": "xterm-256color"}
        repo = git_repository(tmp_path / "shop")
        ctxdb("install", "gemini", "--scope", "project", cwd=repo, env=env)
        store_critical(repo, env, CRITICAL)
        sessions = Path(env["HOME"]) / ".gemini" / "tmp"
        with TerminalProgram([gemini], repo, env) as ui:
            ui.wait_for(lambda: _startup_context_added(sessions), CLI_TIMEOUT,
                        "the SessionStart hook's context in the session file")
            for n, prompt in enumerate(PROMPTS):
                ui.submit(prompt, lambda n=n: len(mock.turn_requests()) > n, CLI_TIMEOUT)
                # AfterAgent ingested the turn's answer: the turn is over.
                ui.wait_for(lambda n=n: _answers_ingested(env) > n, CLI_TIMEOUT,
                            f"the answer to prompt {n + 1} in ctxdb")
        requests = [json.dumps(body) for body in mock.turn_requests()]
        assert CRITICAL in requests[0], diagnosis(env)
        # Compressed before the second prompt's request: the summary replaced the history
        # that held the CRITICAL item, and only ctxdb can put it back.
        assert len(mock.summarizer_requests()) == 2, mock.server.recorded()  # summary, check
        assert "SNAP-4e0c" in requests[1] and CRITICAL not in requests[1], diagnosis(env)
        assert CRITICAL in requests[2], diagnosis(env)
        assert PROMPTS[0] in requests[2]  # from the handoff: the history lost it too
        # One reload, by BeforeAgent, with the handoff saved for the compression, and none
        # for the turns that compressed nothing (PreCompress fired on each of them).
        reloads = query(env, "SELECT hook_event, handoff_id FROM injections "
                             "WHERE source = 'compact'")
        handoffs = query(env, "SELECT handoff_id FROM handoffs WHERE kind = 'compact'")
        assert [event for event, _ in reloads] == ["BeforeAgent"], diagnosis(env)
        assert [handoff for _, handoff in reloads] == [h for (h,) in handoffs], diagnosis(env)
        [(compactions,)] = query(env, "SELECT count(*) FROM compactions")
        assert compactions == 1
        assert mock.server.elsewhere() == []


def _startup_context_added(sessions: Path) -> bool:
    """Gemini has added the SessionStart hook's context to the new session's history."""
    return any("<hook_context>" in chat.read_text(encoding="utf-8", errors="replace")
               for chat in sessions.glob("*/chats/session-*.jsonl"))


def _answers_ingested(env: dict[str, str]) -> int:
    [(answers,)] = query(env, "SELECT count(*) FROM api_usage")
    return int(answers)
