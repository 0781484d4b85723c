"""Codex rollout transcripts: parsed with their own parser, selected by the client.

The fixture (tests/fixtures/codex, see README.md) was written by Codex 0.171.0 itself; the
expected values are read off its raw JSON lines.
"""

from __future__ import annotations

import json
from pathlib import Path

from ctxdb.service import Ctxdb
from ctxdb.transcripts import handoff_since_last_compaction, parse_transcript
from ctxdb.transcripts.tail import latest_context_tokens

FIXTURE = next((Path(__file__).parent / "fixtures" / "codex").glob("rollout-*.jsonl"))
SESSION = "01a24d5c-102c-7770-abc9-ed56a966d0b0"
# (response id, input tokens as reported, of which cached)
RESPONSES = [("resp_1", 4100, 50), ("resp_2", 4200, 100), ("resp_3", 4300, 150)]


def test_usage_prompts_answers_and_tool_calls() -> None:
    chunk = parse_transcript(FIXTURE, client="codex")
    assert (chunk.session_id, chunk.version) == (SESSION, "0.171.0")
    assert [(u.message_id, u.context_tokens, u.cache_read_input_tokens) for u in chunk.usage] \
        == RESPONSES
    assert chunk.context_tokens == 4300
    # Codex's <environment_context> and the developer messages are not typed prompts.
    assert [prompt.text for prompt in chunk.user_prompts] == ["TOOLME write notes"]
    assert [text.text for text in chunk.assistant_texts] == ["ANSWER codex mock"]
    assert [(use.name, use.id) for use in chunk.tool_uses] \
        == [("apply_patch", "call_patch"), ("update_plan", "call_plan")]
    assert chunk.tool_uses[0].input["files"] == ["notes.txt"]
    assert chunk.tool_uses[1].input["plan"][0]["step"] == "TODO-A write the ledger"
    # Both were refused ("unsupported call"): no file was changed.
    assert [result.is_error for result in chunk.tool_results] == [True, True]
    assert chunk.files_edited() == []
    assert chunk.malformed_lines == chunk.rejected_lines == 0


def test_the_claude_code_parser_finds_nothing_in_it() -> None:
    chunk = parse_transcript(FIXTURE)
    assert chunk.usage == [] and chunk.user_prompts == []


def test_the_tail_and_the_handoff() -> None:
    assert latest_context_tokens(FIXTURE, 1_024, client="codex") == 4300
    handoff = handoff_since_last_compaction(FIXTURE, client="codex")
    assert handoff.latest_request == "TOOLME write notes"
    assert handoff.last_assistant_text == "ANSWER codex mock"
    assert handoff.context_tokens == 4300


def test_ingestion_stores_each_response_once(db: Ctxdb, tmp_path: Path) -> None:
    path = tmp_path / FIXTURE.name
    path.write_bytes(FIXTURE.read_bytes())
    assert db.transcripts.ingest(path, client="codex")["usage_entries"] == 3
    assert db.transcripts.ingest(path, client="codex")["records"] == 0
    usage = db.transcripts.usage(SESSION)
    assert sorted((row["message_id"], row["input_tokens"] + row["cache_read_tokens"],
                   row["cache_read_tokens"]) for row in usage["responses"]) == RESPONSES


def test_the_ingest_transcript_command_reads_each_clients_format(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ctxdb.cli.main import cli

    gemini = next((Path(__file__).parent / "fixtures" / "gemini").glob("session-*.jsonl"))
    env = {"HOME": str(tmp_path), "CTXDB_URL": str(tmp_path / "ctxdb.db")}
    for client, fixture, responses in (("codex", FIXTURE, 3), ("gemini", gemini, 4)):
        done = CliRunner().invoke(cli, ["ingest-transcript", "--client", client, str(fixture),
                                        "--json"], env=env)
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)["usage_entries"] == responses
