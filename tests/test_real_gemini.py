"""The real Gemini CLI, offline: the CRITICAL item at startup and after ``--resume``, token
usage as the model reported it, a handoff for the next session, no handoff per turn.

Gemini CLI runs headless (``gemini -p``) with ctxdb installed in a scratch git repository
(``ctxdb install gemini --scope project``), the folder trusted (``GEMINI_CLI_TRUST_WORKSPACE``),
against a mock of the Gemini API on a loopback port (``GOOGLE_GEMINI_BASE_URL``) that records
every request. Each turn makes a routing call (``generateContent``, JSON asked for) and the
turn's own streamed call (``streamGenerateContent``); the mock reports a distinct prompt token
count for each.

Not covered: the CRITICAL item after Gemini compresses its chat. Gemini CLI 0.61 did not
compress offline here: with ``model.compressionThreshold`` at 0.001 and the mock reporting
5,000 prompt tokens, neither a tool call's continuation nor a resumed turn made it summarize
(its compression runs only outside its newer context management, which decides on its own).
ctxdb could not put the item back after a compression anyway: Gemini's PreCompress is advisory
(it cannot add context) and Gemini starts no SessionStart after compressing, so the item
survives only if Gemini's own summary keeps it (see docs/install.md).

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


def prompt_tokens(n: int) -> int:
    return 5_000 + 123 * n


@pytest.fixture
def gemini() -> str:
    return client_program("CTXDB_TEST_GEMINI", "gemini", "Gemini CLI")


class GeminiMock:
    """Answers the routing call with a choice of model and each streamed call with a text."""

    def __init__(self) -> None:
        self.turns = 0
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
        else:
            text = ANSWER
            prompt = prompt_tokens(self.turns)
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
