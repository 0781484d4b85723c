"""Gemini CLI transcripts: parsed with their own parser, selected by the client.

The fixture (tests/fixtures/gemini, see README.md) was written by Gemini CLI 0.61.0 itself;
the expected values are read off its raw JSON lines (the ``tokens`` of each ``gemini``
message, the typed prompts, the tool calls). The hook scenarios run ``ctxdb hook --client
gemini`` as whole processes on both backends: token usage after a turn is what the model
reported, and a Gemini session that stopped leaves a handoff with content.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import test_hooks
from ctxdb.service import Ctxdb
from ctxdb.transcripts import handoff_since_last_compaction, parse_transcript, render_handoff_text
from ctxdb.transcripts.tail import latest_context_tokens
from test_hooks import Hook, event, instance, project_of, wait_for_end

hook, repo = test_hooks.hook, test_hooks.repo

FIXTURE = Path(__file__).parent / "fixtures" / "gemini" / "session-2026-12-06T21-43-ea516583.jsonl"
SESSION = "ea516583-1a5c-41f6-8bd3-346f67911af7"
# (message id, input tokens as reported, of which cached), in file order
RESPONSES = [
    ("0e5d1e90-e83b-438d-9692-85866a4762ad", 3222, 500),
    ("8892ae6e-2271-4f4e-b12b-b48f7a3ee263", 3333, 500),
    ("0d046eb7-c740-4a42-a269-718eff987549", 3444, 500),
    ("e674d952-723f-47fe-94e2-5f0af9fb6dfe", 3666, 500),
]
PROMPTS = ["TOOLME write notes and plan", "PROMPT-C carry on"]
EDITED = "/home/dev/shop/notes.txt"
OPEN_TODOS = [("TODO-1 write the ledger", "in_progress"), ("TODO-3 test refunds", "pending")]
# The model of the fixture's session had no write_todos tool (Gemini CLI offers it to Gemini 2
# models): the call the mock made failed, so it changed no todo list.
TODOS_CALL = b'"status":"error"'


def test_usage_prompts_answers_and_tool_calls() -> None:
    chunk = parse_transcript(FIXTURE, client="gemini")
    assert chunk.session_id == SESSION
    assert [(u.message_id, u.context_tokens, u.cache_read_input_tokens) for u in chunk.usage] \
        == RESPONSES
    assert chunk.context_tokens == 3666
    # the SessionStart hook's <hook_context> block and the <session_context> are not typed
    assert [prompt.text for prompt in chunk.user_prompts] == PROMPTS
    assert [text.text for text in chunk.assistant_texts] == ["ANSWER from mock"] * 2
    assert [use.name for use in chunk.tool_uses] == ["write_file", "write_todos"]
    assert [result.is_error for result in chunk.tool_results] == [False, True]
    assert chunk.files_edited() == [EDITED]
    assert chunk.todos() is None


def test_a_successful_write_todos_call_gives_the_todo_list(tmp_path: Path) -> None:
    """The same transcript had the write_todos call succeeded."""
    path = tmp_path / FIXTURE.name
    path.write_bytes(FIXTURE.read_bytes().replace(TODOS_CALL, b'"status":"success"'))
    chunk = parse_transcript(path, client="gemini")
    assert [(todo.content, todo.status) for todo in chunk.todos() or [] if todo.is_open] \
        == OPEN_TODOS
    handoff = handoff_since_last_compaction(path, client="gemini")
    assert [(todo.content, todo.status) for todo in handoff.open_todos] == OPEN_TODOS
    assert chunk.malformed_lines == chunk.rejected_lines == 0


def test_the_claude_code_parser_finds_nothing_in_it() -> None:
    """Why the client selects the parser: read as Claude Code's, the file gives nothing."""
    chunk = parse_transcript(FIXTURE)
    assert chunk.usage == [] and chunk.user_prompts == []


def test_ingestion_is_incremental_across_the_resume(db: Ctxdb, tmp_path: Path) -> None:
    """Read up to the resumed session's header, then the rest: each response once, with the
    numbers it reported."""
    data = FIXTURE.read_bytes()
    cut = data.index(b'{"sessionId"', 1)
    path = tmp_path / FIXTURE.name
    path.write_bytes(data[:cut])
    first = db.transcripts.ingest(path, client="gemini")
    assert first["usage_entries"] == 3
    with path.open("ab") as handle:
        handle.write(data[cut:])
    second = db.transcripts.ingest(path, client="gemini")
    assert second["files"][0]["from_offset"] == cut and second["usage_entries"] == 1
    usage = db.transcripts.usage(SESSION)
    assert sorted((row["message_id"], row["input_tokens"] + row["cache_read_tokens"],
                   row["cache_read_tokens"]) for row in usage["responses"]) == sorted(RESPONSES)


@pytest.mark.parametrize("block", [64, 1_024, 256 * 1024])
def test_the_tail_gives_the_context_in_use(block: int) -> None:
    assert latest_context_tokens(FIXTURE, block, client="gemini") == 3666


def test_the_handoff_has_content() -> None:
    handoff = handoff_since_last_compaction(FIXTURE, client="gemini")
    assert handoff.latest_request == PROMPTS[-1]
    assert handoff.earlier_requests == PROMPTS[:-1]
    assert handoff.open_todos == []
    assert handoff.files_edited == [EDITED]
    assert handoff.last_assistant_text == "ANSWER from mock"
    assert handoff.context_tokens == 3666
    text = render_handoff_text(handoff, 2_000)
    assert PROMPTS[-1] in text and PROMPTS[0] in text and EDITED in text


@pytest.fixture
def transcript(tmp_path: Path) -> Path:
    folder = tmp_path / "home" / ".gemini" / "tmp" / "shop" / "chats"
    folder.mkdir(parents=True)
    return Path(shutil.copy(FIXTURE, folder / FIXTURE.name))


def test_token_usage_after_a_turn_is_what_the_model_reported(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path
) -> None:
    hook(event("SessionStart", repo, transcript, SESSION, source="startup"), client="gemini")
    hook(event("BeforeAgent", repo, transcript, SESSION, prompt="go"), client="gemini")
    assert instance(db, SESSION, "gemini")["current_token_usage"] == 3666
    hook(event("AfterAgent", repo, transcript, SESSION), client="gemini")  # ingests it
    usage = db.transcripts.usage(SESSION)
    assert usage["totals"]["responses"] == len(RESPONSES)
    assert max(row["input_tokens"] + row["cache_read_tokens"] for row in usage["responses"]) \
        == 3666


def test_a_stopped_gemini_session_leaves_a_handoff_with_content(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path
) -> None:
    hook(event("SessionStart", repo, transcript, SESSION, source="startup"), client="gemini")
    hook(event("AfterAgent", repo, transcript, SESSION), client="gemini")
    hook(event("SessionEnd", repo, transcript, SESSION, reason="exit"), client="gemini")
    wait_for_end(db, SESSION, "gemini")
    text = hook(event("SessionStart", repo, None, "next", source="startup"), client="gemini")
    assert text is not None
    for expected in (*PROMPTS, EDITED, "ANSWER from mock"):
        assert expected in text, text
    assert project_of(db, repo)
