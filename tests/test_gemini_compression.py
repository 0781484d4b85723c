"""Gemini CLI compressing its chat: read from its transcript, answered on the next prompt.

The fixture ``session-2026-12-07T06-02-d31e5b86.jsonl`` (tests/fixtures/gemini, README.md) was
written by Gemini CLI 0.61.0 in tests/test_real_gemini.py's compression test: four prompts, a
compression before the second one's request. Cut at a line, it is the file as Gemini had
written it when a later hook ran. The hook scenarios run ``ctxdb hook --client gemini`` as
whole processes, on both backends.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import test_hooks
from ctxdb.service import Ctxdb
from ctxdb.transcripts import handoff_since_last_compaction, parse_transcript
from test_hooks import Hook, event, instance, project_of

hook, repo = test_hooks.hook, test_hooks.repo

FIXTURE = Path(__file__).parent / "fixtures" / "gemini" / "session-2026-12-07T06-02-d31e5b86.jsonl"
SESSION = "d31e5b86-4cb9-4b3d-a24b-878add16fa39"
SUMMARY_ID = "65746ede-8d4d-4ef3-868f-e59f5ea5f7d4"  # the summary message of the compression
SUMMARY = "<state_snapshot>SNAP-4e0c the user is planning the refund ledger</state_snapshot>"
PROMPTS = ["MARK-2c9d implement the refund ledger", "PROMPT-2 go on with the ledger",
           "PROMPT-3 add the reversal entry", "PROMPT-4 write its test"]
CRITICAL = "CRIT-9d41 a refund never exceeds the captured amount"
LINES = FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)
# The file when the first answer was written (before the compression) and when the second
# was (the compression and the second prompt's turn written, the third prompt's hook next).
BEFORE = next(n for n, line in enumerate(LINES) if '"type":"gemini"' in line) + 1
COMPRESSED = next(n for n, line in enumerate(LINES) if PROMPTS[1] in line) + 3


def test_a_compression_is_a_boundary_with_its_summary() -> None:
    chunk = parse_transcript(FIXTURE, client="gemini")
    [boundary] = chunk.compactions
    assert (boundary.uuid, boundary.trigger) == (SUMMARY_ID, None)
    assert boundary.pre_tokens == 600_000  # what the answer before it reported
    assert [(s.uuid, s.text) for s in chunk.compact_summaries] == [(SUMMARY_ID, SUMMARY)]
    # neither the summary nor Gemini's acknowledgement of it is a prompt or an answer
    assert [prompt.text for prompt in chunk.user_prompts] == PROMPTS
    assert len(chunk.assistant_texts) == 4
    assert not any("Got it" in text.text for text in chunk.assistant_texts)


def test_rewrites_of_the_message_list_count_the_boundary_once(tmp_path: Path) -> None:
    """Gemini rewrites the whole list (a resumed session, a changed history): the summary
    keeps its id, so it is the same boundary."""
    rewrite = next(line for line in LINES if SUMMARY_ID in line and '"$set"' in line)
    path = tmp_path / FIXTURE.name
    path.write_text("".join(LINES) + rewrite, encoding="utf-8")
    chunk = parse_transcript(path, client="gemini")
    assert [boundary.uuid for boundary in chunk.compactions] == [SUMMARY_ID]
    assert len(chunk.compact_summaries) == 1


def test_a_list_without_the_acknowledgement_is_no_compression(tmp_path: Path) -> None:
    path = tmp_path / FIXTURE.name
    path.write_text("".join(LINES).replace("Got it. Thanks", "Got it, thanks"), "utf-8")
    chunk = parse_transcript(path, client="gemini")
    assert chunk.compactions == []
    assert SUMMARY in [prompt.text for prompt in chunk.user_prompts]


def test_the_handoff_of_a_compression_read_after_it() -> None:
    """Made once the compression is in the file, the handoff covers the work before it."""
    after = handoff_since_last_compaction(FIXTURE, client="gemini")
    assert after.compaction is not None and after.compaction.uuid == SUMMARY_ID
    before = handoff_since_last_compaction(FIXTURE, client="gemini",
                                           before_latest_compaction=True)
    assert before.compaction is None
    assert before.earlier_requests[0] == PROMPTS[0]


def test_ingestion_stores_the_boundary_once_with_its_summary(db: Ctxdb, tmp_path: Path) -> None:
    path = cut(tmp_path, COMPRESSED)
    assert db.transcripts.ingest(path, client="gemini")["compactions"] == 1
    rewrite = next(line for line in LINES if SUMMARY_ID in line and '"$set"' in line)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(rewrite)
    assert db.transcripts.ingest(path, client="gemini")["compactions"] == 0
    [stored] = db.transcripts.compactions(SESSION)
    assert (stored["boundary_uuid"], stored["summary"]) == (SUMMARY_ID, SUMMARY)


def test_a_prompt_parses_the_tail_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The context in use and the compression come from one parse of the file's tail; a file
    that changed is parsed again."""
    from ctxdb.transcripts import parser, tail

    calls: list[object] = []

    def counted(*args: Any) -> Any:
        calls.append(args)
        return parse_transcript(*args)

    # tail imports the parser where it parses (a prompt of Claude Code needs none).
    monkeypatch.setattr(parser, "parse_transcript", counted)
    path = cut(tmp_path, COMPRESSED)
    assert tail.latest_context_tokens(path, client="gemini") == 901
    assert [c.uuid for c in tail.tail_chunk(path, "gemini").compactions] == [SUMMARY_ID]
    assert len(calls) == 1
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(LINES[COMPRESSED:COMPRESSED + 2])  # the third prompt
    assert len(tail.tail_chunk(path, "gemini").user_prompts) == 3
    assert len(calls) == 2


# --- the hooks ---------------------------------------------------------------------------


def cut(tmp_path: Path, lines: int, path: Path | None = None) -> Path:
    """The fixture's first ``lines`` lines, as Gemini had written them at some point."""
    path = path or tmp_path / "chats" / FIXTURE.name
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(LINES[:lines]), encoding="utf-8")
    return path


def gemini(hook: Hook, name: str, repo: Path, path: Path, **fields: object) -> str | None:
    return hook(event(name, repo, path, SESSION, **fields), client="gemini")


def reloads(db: Ctxdb) -> list[dict[str, object]]:
    return [injection for injection in db.sessions.injections(
        instance(db, SESSION, "gemini")["instance_id"]) if injection["source"] == "compact"]


def compact_handoffs(db: Ctxdb) -> list[int]:
    instance_id = instance(db, SESSION, "gemini")["instance_id"]
    return [h["handoff_id"] for h in db.tokens.handoffs(instance_id)
            if h["kind"] == "compact"]


@pytest.fixture
def started(hook: Hook, db: Ctxdb, repo: Path, tmp_path: Path) -> Path:
    """A Gemini session with a CRITICAL item, at its first answer: nothing compressed yet."""
    db.context.store(project_of(db, repo), CRITICAL, "CRITICAL")
    path = cut(tmp_path, BEFORE)
    text = gemini(hook, "SessionStart", repo, path, source="startup")
    assert text is not None and CRITICAL in text
    return path


def test_the_prompt_after_a_compression_gets_the_context_back_once(
    hook: Hook, db: Ctxdb, repo: Path, tmp_path: Path, started: Path
) -> None:
    for _ in range(3):  # turns that compress nothing: PreCompress fires, nothing is put back
        assert gemini(hook, "BeforeAgent", repo, started, prompt="go") is None
        assert gemini(hook, "PreCompress", repo, started, trigger="auto") is None
        gemini(hook, "AfterAgent", repo, started)
    assert reloads(db) == [] and compact_handoffs(db) == []
    cut(tmp_path, COMPRESSED, started)
    text = gemini(hook, "BeforeAgent", repo, started, prompt=PROMPTS[2])
    assert text is not None and CRITICAL in text
    assert PROMPTS[0] in text and PROMPTS[1] in text  # the handoff of the work compressed
    [reload] = reloads(db)
    assert (reload["hook_event"], reload["generation"]) == ("BeforeAgent", 1)
    assert [reload["handoff_id"]] == compact_handoffs(db)
    assert instance(db, SESSION, "gemini")["current_token_usage"] == 901  # the latest answer's
    # Once per compression: the next prompts (the file grown, rewritten) add nothing.
    cut(tmp_path, len(LINES), started)
    assert gemini(hook, "BeforeAgent", repo, started, prompt=PROMPTS[3]) is None
    assert len(reloads(db)) == 1 and len(compact_handoffs(db)) == 1


def test_a_manual_compress_is_answered_with_the_handoff_it_saved(
    hook: Hook, db: Ctxdb, repo: Path, tmp_path: Path, started: Path
) -> None:
    assert gemini(hook, "PreCompress", repo, started, trigger="manual") is None
    [saved] = compact_handoffs(db)
    cut(tmp_path, COMPRESSED, started)
    text = gemini(hook, "BeforeAgent", repo, started, prompt=PROMPTS[2])
    assert text is not None and CRITICAL in text
    assert [reload["handoff_id"] for reload in reloads(db)] == [saved]
    assert compact_handoffs(db) == [saved]


def test_a_resume_after_an_unanswered_compression_answers_it(
    hook: Hook, db: Ctxdb, repo: Path, tmp_path: Path, started: Path
) -> None:
    """Gemini quit right after compressing: the resume puts back the pack (as every Gemini
    resume does) with the compression's handoff, and the next prompt adds nothing."""
    cut(tmp_path, COMPRESSED, started)
    text = gemini(hook, "SessionStart", repo, started, source="resume")
    assert text is not None and CRITICAL in text and PROMPTS[1] in text
    assert [reload["hook_event"] for reload in reloads(db)] == ["SessionStart"]
    assert gemini(hook, "BeforeAgent", repo, started, prompt=PROMPTS[2]) is None
    # a later resume is an ordinary one: the pack again, no second reload
    text = gemini(hook, "SessionStart", repo, started, source="resume")
    assert text is not None and CRITICAL in text
    assert len(reloads(db)) == 1


def test_a_prompt_without_a_readable_transcript_puts_nothing_back(
    hook: Hook, db: Ctxdb, repo: Path, tmp_path: Path, started: Path
) -> None:
    started.write_text("not json\n" + json.dumps({"$set": {"messages": "none"}}) + "\n",
                       encoding="utf-8")
    assert gemini(hook, "BeforeAgent", repo, started, prompt="go") is None
    started.unlink()
    assert gemini(hook, "BeforeAgent", repo, started, prompt="go") is None
    assert reloads(db) == [] and hook.logged() == ""


@pytest.mark.parametrize("answered_by", ["BeforeAgent", "SessionStart"])
def test_through_a_server_the_compression_is_answered_alike(
    db: Ctxdb, repo: Path, tmp_path: Path, answered_by: str
) -> None:
    """A remote hook sends the file's tail with BeforeAgent and with a Gemini resume: the
    server reads the compression from those bytes (it never opens the path)."""
    from remote_server import served
    from test_remote_hooks import RemoteHook, fleet_token

    db.context.store(project_of(db, repo), CRITICAL, "CRITICAL")
    path = cut(tmp_path, BEFORE)
    fields = {"source": "resume"} if answered_by == "SessionStart" else {"prompt": PROMPTS[2]}
    with served(db) as base:
        remote = RemoteHook(base, tmp_path / "remote.log", tmp_path / "home", fleet_token(db))
        assert CRITICAL in (gemini(remote, "SessionStart", repo, path, source="startup") or "")
        assert gemini(remote, "BeforeAgent", repo, path, prompt=PROMPTS[0]) is None
        cut(tmp_path, COMPRESSED, path)
        text = gemini(remote, answered_by, repo, path, **fields)
        assert text is not None and CRITICAL in text and PROMPTS[1] in text
        assert gemini(remote, "BeforeAgent", repo, path, prompt=PROMPTS[3]) is None
    assert [reload["hook_event"] for reload in reloads(db)] == [answered_by]
    assert remote.logged() == ""
