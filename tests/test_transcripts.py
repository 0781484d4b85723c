"""Transcript parsing on real Claude Code transcripts (tests/fixtures/claude-code, see README.md).

Expected numbers were established from the raw JSONL independently of the parser (counting
distinct ``message.id`` values per ``isSidechain``, reading the compact_boundary record, listing
Edit/Write/MultiEdit inputs with their tool_result ``is_error``) and are recorded here as facts
about the data.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from ctxdb.errors import ValidationError
from ctxdb.transcripts import (
    MAX_LIST_ITEMS,
    MAX_TEXT_CHARS,
    Handoff,
    InvalidTranscriptOffsetError,
    Todo,
    TranscriptChunk,
    TranscriptNotFoundError,
    handoff_from_chunk,
    handoff_since_last_compaction,
    parse_transcript,
    reader,
    render_handoff_text,
    subagent_files,
)
from ctxdb.transcripts.tail import latest_context_tokens

FIXTURES = Path(__file__).parent / "fixtures" / "claude-code"
SPOTTER_ID = "4d5611e5-241a-462a-8d15-5122611a9569"
SPOTTER = FIXTURES / "spotter" / f"{SPOTTER_ID}.jsonl"
SUBAGENTS = FIXTURES / "spotter" / SPOTTER_ID / "subagents"
TOOL_HEAVY = FIXTURES / "spotter" / "tool_heavy.jsonl"
VIEWER_BIG = FIXTURES / "claude-code-viewer" / "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl"
VIEWER_SMALL = FIXTURES / "claude-code-viewer" / "5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl"
SPOTTER_DIR = "/home/USER/projects/spotter-worktrees/spotter-dov/"

# path, records, version, main responses, sidechain responses, max main context, last context
Facts = tuple[Path, int, str, int, int, int | None, int | None]
FIXTURE_FACTS: list[Facts] = [
    (SPOTTER, 1512, "2.1.39", 139, 0, 164_831, 106_060),
    (SUBAGENTS / "agent-a2898e3.jsonl", 144, "2.1.39", 0, 12, None, None),
    (SUBAGENTS / "agent-acompact-e1f845.jsonl", 5, "2.1.39", 0, 1, None, None),
    (TOOL_HEAVY, 39, "2.1.38", 4, 0, 27_666, 27_666),
    (VIEWER_BIG, 438, "1.0.98", 9, 161, 21_552, 21_552),
    (VIEWER_SMALL, 53, "1.0.108", 10, 10, 26_080, 26_080),
]
ALL_FIXTURES = [facts[0] for facts in FIXTURE_FACTS]


def fixture_id(path: Path) -> str:
    return path.name[:24]


def test_fixtures_are_the_unedited_upstream_files() -> None:
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    listed = dict(
        (name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)
    )
    assert len(listed) == 6
    for name, digest in listed.items():
        assert hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest() == digest, name
    for kept in ("spotter/LICENSE", "claude-code-viewer/LICENSE", "spotter/UPSTREAM_README.md"):
        assert (FIXTURES / kept).is_file()


@pytest.mark.parametrize("facts", FIXTURE_FACTS, ids=lambda facts: fixture_id(facts[0]))
def test_each_fixture_counts_and_token_usage(facts: Facts) -> None:
    path, records, version, main, side, max_context, last_context = facts
    chunk = parse_transcript(path)
    assert chunk.records == records
    assert chunk.malformed_lines == 0
    assert chunk.end_offset == path.stat().st_size
    assert chunk.version == version
    ids = [entry.message_id for entry in chunk.usage]
    assert len(ids) == len(set(ids)) == main + side
    assert sum(not entry.sidechain for entry in chunk.usage) == main
    main_contexts = [entry.context_tokens for entry in chunk.usage if not entry.sidechain]
    assert max(main_contexts, default=None) == max_context
    assert chunk.context_tokens == last_context


def test_one_response_over_several_records_keeps_the_final_usage() -> None:
    # msg_01Aci2WjhVxhEoZK5GJvwVrD is written as 5 records (thinking, text, 3 tool_use);
    # output_tokens grows from 10 to 299 on the last one.
    chunk = parse_transcript(SPOTTER)
    entry = next(e for e in chunk.usage if e.message_id == "msg_01Aci2WjhVxhEoZK5GJvwVrD")
    assert (entry.input_tokens, entry.cache_creation_input_tokens) == (1, 5601)
    assert (entry.cache_read_input_tokens, entry.output_tokens) == (29509, 299)
    assert entry.model == "claude-opus-4-6"
    assert sum(e.output_tokens for e in chunk.usage) > 0


def test_spotter_compaction_boundary_and_summary() -> None:
    chunk = parse_transcript(SPOTTER)
    assert chunk.session_id == SPOTTER_ID
    [boundary] = chunk.compactions
    assert boundary.trigger == "auto"
    assert boundary.pre_tokens == 170_251
    assert boundary.uuid == "dd3cc2e6-a191-4331-a0f0-2473e6d7692d"
    assert boundary.timestamp == "2026-02-12T20:30:28.504Z"
    [summary] = chunk.compact_summaries
    assert summary.offset > boundary.offset
    assert summary.text.startswith("This session is being continued from a previous conversation")
    assert all(not p.text.startswith("This session is being") for p in chunk.user_prompts)
    # The compaction freed context: the last response used far less than preTokens.
    assert chunk.context_tokens is not None and chunk.context_tokens < boundary.pre_tokens


def test_unknown_and_uninterpreted_record_types_are_skipped() -> None:
    chunk = parse_transcript(SPOTTER)
    assert chunk.record_types["progress"] == 1083
    assert chunk.record_types["file-history-snapshot"] == 14
    assert chunk.record_types["system/stop_hook_summary"] == 3
    assert chunk.skipped_records == 1083 + 14 + 1 + 3 + 2  # progress, snapshots, queue, system


def test_an_invented_record_type_changes_nothing_but_the_counts(tmp_path: Path) -> None:
    copy = tmp_path / "t.jsonl"
    lines = TOOL_HEAVY.read_bytes().splitlines(keepends=True)
    invented = json.dumps({"type": "hologram", "message": {"role": "user", "content": "x"}})
    copy.write_bytes(b"".join(lines[:10]) + invented.encode() + b"\n" + b"".join(lines[10:]))
    original, changed = parse_transcript(TOOL_HEAVY), parse_transcript(copy)
    assert changed.records == original.records + 1
    assert changed.skipped_records == original.skipped_records + 1
    assert changed.record_types["hologram"] == 1
    assert [p.text for p in changed.user_prompts] == [p.text for p in original.user_prompts]
    assert [(u.message_id, u.context_tokens) for u in changed.usage] == [
        (u.message_id, u.context_tokens) for u in original.usage
    ]


def test_subagent_files_of_the_spotter_session_are_found_and_are_sidechains() -> None:
    found = subagent_files(SPOTTER)
    assert [p.name for p in found] == ["agent-a2898e3.jsonl", "agent-acompact-e1f845.jsonl"]
    explore, compact = (parse_transcript(p) for p in found)
    assert explore.agent_id == "a2898e3" and compact.agent_id == "acompact-e1f845"
    assert explore.session_id == compact.session_id == SPOTTER_ID
    assert {e.model for e in explore.usage} == {"claude-sonnet-4-5-20250929"}
    assert all(e.sidechain for e in explore.usage + compact.usage)
    assert all(t.sidechain for t in explore.assistant_texts + compact.assistant_texts)
    assert explore.user_prompts == compact.user_prompts == []  # written by the main agent
    assert len(explore.tool_uses) == 33
    assert subagent_files(TOOL_HEAVY) == subagent_files(VIEWER_BIG) == []
    # The main file embeds the Explore agent's messages (with usage) in 33 progress records;
    # they are not counted again there.
    assert {e.model for e in parse_transcript(SPOTTER).usage} == {"claude-opus-4-6"}


def test_old_format_summary_record_and_inline_sidechains() -> None:
    chunk = parse_transcript(VIEWER_BIG)
    [summary] = chunk.summaries
    assert summary.summary == "Empty Repo Setup: CLAUDE.md Foundation Created"
    assert summary.leaf_uuid == "549b3502-6e30-4fa5-869f-c998df26c3f0"
    assert summary.offset == 0
    assert chunk.compactions == [] and chunk.compact_summaries == []
    # Subagent prompts (sidechain user records) are not the user's requests.
    assert [p.text for p in chunk.user_prompts] == [
        "/orchestrator create TODO app by Next.js",
        "Thanks! Please update CLAUDE.md for current changes",
    ]
    assert sum(t.sidechain for t in chunk.tool_uses) == 167 - 11  # 11 main-chain tool uses
    assert chunk.latest_main_usage is not None and not chunk.latest_main_usage.sidechain


def test_user_prompt_rules_on_the_2_1_transcripts() -> None:
    # Left out: the /mcp command without arguments, its <local-command-stdout> and caveat,
    # "[Request interrupted by user]", the <task-notification> and the compact summary.
    assert [p.text for p in parse_transcript(TOOL_HEAVY).user_prompts] == [
        "start phoenix in background",
        "scrolling back in xterm.js still does not work (maybe because outer web catches it)? "
        "websearch xterm.js tmux interactions",
    ]
    spotter = [p.text for p in parse_transcript(SPOTTER).user_prompts]
    assert len(spotter) == 2 and spotter[0].startswith("Work on bead spotter-dov.")
    assert spotter[1] == "continue"


def test_tool_uses_results_and_user_answers() -> None:
    chunk = parse_transcript(SPOTTER)
    assert len(chunk.tool_uses) == len(chunk.tool_results) == 150
    assert {u.id for u in chunk.tool_uses} == {r.tool_use_id for r in chunk.tool_results}
    names = [u.name for u in chunk.tool_uses]
    assert (names.count("Bash"), names.count("Edit"), names.count("Write")) == (67, 32, 7)
    [answer] = chunk.user_answers
    assert answer.answer == "main was clean; fix the issues"
    assert answer.question.startswith("Pre-commit hook blocks")


def test_files_edited_leave_out_failed_edits() -> None:
    # The Edit of CLAUDE.md failed (is_error), the MultiEdit after it succeeded.
    small = parse_transcript(VIEWER_SMALL)
    assert small.files_edited() == ["/path/to/Demo/CLAUDE.md"]
    big = parse_transcript(VIEWER_BIG)
    # Written by subagents (inline sidechains) except CLAUDE.md, written last by the main chain.
    assert big.files_edited(include_sidechains=False) == ["/path/to/Demo/CLAUDE.md"]
    edited = big.files_edited()
    assert len(edited) == 26 and edited[-1] == "/path/to/Demo/CLAUDE.md"
    # types/state.ts: Written once successfully, then two failed Writes.
    assert "/path/to/Demo/types/state.ts" in edited


def test_todos_come_from_the_latest_main_chain_todowrite(tmp_path: Path) -> None:
    todos = parse_transcript(VIEWER_BIG).todos()
    assert todos is not None and [t.status for t in todos] == ["completed"] * 5
    assert todos[0].content == "Set up Next.js project structure and dependencies"
    assert parse_transcript(TOOL_HEAVY).todos() is None
    # Cut the session right after its first TodoWrite: five open todos.
    lines = VIEWER_BIG.read_bytes().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if b'"name":"TodoWrite"' in line)
    prefix = tmp_path / "prefix.jsonl"
    prefix.write_bytes(b"".join(lines[: first + 1]))
    handoff = handoff_since_last_compaction(prefix)
    assert [t.status for t in handoff.open_todos] == ["pending"] * 5
    last = Todo("Create main page layout and integrate components", "pending")
    assert handoff.open_todos[4] == last


def _task_records(*calls: tuple[str, dict[str, object], dict[str, object] | None],
                  sidechain: bool = False) -> list[dict[str, object]]:
    """Tool calls and their results as Claude Code 2.1.x writes them: one assistant record per
    tool_use, one user record per tool_result with the tool's own result in toolUseResult
    (``None``: an error result). Shapes taken from transcripts written by Claude Code 2.1.332.
    """
    base = {"isSidechain": sidechain, "sessionId": "s-tasks", "version": "2.1.332",
            "timestamp": "2026-12-06T21:25:00.000Z"}
    records: list[dict[str, object]] = []
    for number, (tool, tool_input, outcome) in enumerate(calls):
        use_id = f"toolu_t{number}"
        records.append({**base, "type": "assistant", "uuid": f"a{number}", "message": {
            "id": f"msg_t{number}", "role": "assistant", "model": "claude-x",
            "content": [{"type": "tool_use", "id": use_id, "name": tool, "input": tool_input}]}})
        result: dict[str, object] = {"type": "tool_result", "tool_use_id": use_id,
                                     "content": "ok" if outcome is not None else "error"}
        if outcome is None:
            result["is_error"] = True
        records.append({**base, "type": "user", "uuid": f"u{number}",
                        "message": {"role": "user", "content": [result]},
                        "toolUseResult": outcome if outcome is not None else "Error: failed"})
    return records


def _create(task_id: str, subject: str) -> tuple[str, dict[str, object], dict[str, object]]:
    return ("TaskCreate", {"subject": subject, "description": f"{subject} in detail",
                           "activeForm": subject},
            {"task": {"id": task_id, "subject": subject, "description": "…"}})


def _update(task_id: str, **fields: str) -> tuple[str, dict[str, object], dict[str, object]]:
    return ("TaskUpdate", {"taskId": task_id, **fields},
            {"success": True, "taskId": task_id, "updatedFields": list(fields)})


def _write(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def test_todos_come_from_the_task_tools(tmp_path: Path) -> None:
    # Claude Code 2.1.x keeps its todo list with TaskCreate and TaskUpdate (by the id the
    # TaskCreate result reported) unless its task tools are turned off.
    records = _task_records(
        _create("1", "read the payment model"), _create("2", "write the ledger entry"),
        _create("3", "test partial refunds"), _create("4", "drop the old exporter"),
        _update("1", status="completed"), _update("2", status="in_progress"),
        _update("3", subject="test partial and full refunds"),
        _update("4", status="deleted"),
        ("TaskUpdate", {"taskId": "3", "status": "completed"}, None),  # failed: changed nothing
        ("TaskCreate", {"subject": "refused", "description": "x"}, None),
        _update("9", status="completed"),  # a task this transcript never created
    )
    todos = parse_transcript(_write(tmp_path / "tasks.jsonl", records)).todos()
    assert todos == [Todo("read the payment model", "completed"),
                     Todo("write the ledger entry", "in_progress"),
                     Todo("test partial and full refunds", "pending")]
    handoff = handoff_since_last_compaction(tmp_path / "tasks.jsonl")
    assert [todo.content for todo in handoff.open_todos] == [
        "write the ledger entry", "test partial and full refunds"]


def test_a_task_created_without_a_result_yet_is_open(tmp_path: Path) -> None:
    records = _task_records(_create("1", "stream the export"))[:1]  # the session died there
    todos = parse_transcript(_write(tmp_path / "died.jsonl", records)).todos()
    assert todos == [Todo("stream the export", "pending")]


def test_the_todo_tool_called_last_gives_the_list(tmp_path: Path) -> None:
    todo_write = ("TodoWrite", {"todos": [{"content": "old list", "status": "pending"}]},
                  {"oldTodos": [], "newTodos": []})
    tasks_last = _task_records(todo_write, _create("1", "new task"))
    assert parse_transcript(_write(tmp_path / "a.jsonl", tasks_last)).todos() == [
        Todo("new task", "pending")]
    list_last = _task_records(_create("1", "new task"), todo_write)
    assert parse_transcript(_write(tmp_path / "b.jsonl", list_last)).todos() == [
        Todo("old list", "pending")]


def test_tasks_of_subagents_are_not_the_sessions(tmp_path: Path) -> None:
    records = [*_task_records(_create("1", "main task")),
               *_task_records(_create("2", "subagent task"), _update("1", status="completed"),
                              sidechain=True)]
    todos = parse_transcript(_write(tmp_path / "side.jsonl", records)).todos()
    assert todos == [Todo("main task", "pending")]


def test_a_result_record_with_several_results_names_no_task(tmp_path: Path) -> None:
    # toolUseResult belongs to a record; with two tool results in it, it says nothing about
    # which call created which task.
    records = _task_records(_create("1", "first"), _create("2", "second"))
    merged = {**records[1], "message": {"role": "user", "content": [
        records[1]["message"]["content"][0],  # type: ignore[index]
        records[3]["message"]["content"][0]]}}  # type: ignore[index]
    both = [records[0], records[2], merged, *_task_records(_update("2", status="completed"))]
    todos = parse_transcript(_write(tmp_path / "merged.jsonl", both)).todos()
    assert todos == [Todo("first", "pending"), Todo("second", "pending")]


def _comparable(chunk: TranscriptChunk) -> TranscriptChunk:
    return chunk.__class__(**{**chunk.__dict__, "path": "", "start_offset": 0})


def _split_offsets(data: bytes) -> list[int]:
    return [i + 1 for i, byte in enumerate(data) if byte == 0x0A]


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=fixture_id)
def test_two_reads_split_at_a_line_equal_one_read(path: Path, tmp_path: Path) -> None:
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    data = copy.read_bytes()
    middle = min(_split_offsets(data), key=lambda offset: abs(offset - len(data) // 2))
    one_shot = parse_transcript(copy)
    part1 = _read_prefix(copy, data, middle, tmp_path)
    part2 = parse_transcript(copy, part1.end_offset)
    assert part2.start_offset == middle
    assert _comparable(part1.followed_by(part2)) == _comparable(one_shot)


def _read_prefix(copy: Path, data: bytes, cut: int, tmp_path: Path) -> TranscriptChunk:
    """Parse a file holding only ``data[:cut]`` and pretend it was ``copy`` growing later."""
    prefix = tmp_path / "growing.jsonl"
    prefix.write_bytes(data[:cut])
    chunk = parse_transcript(prefix)
    assert chunk.end_offset == cut
    return chunk.__class__(**{**chunk.__dict__, "path": str(copy)})


def test_a_split_inside_one_api_response_merges_its_usage(tmp_path: Path) -> None:
    data = SPOTTER.read_bytes()
    target = data.index(b'"id":"msg_01Aci2WjhVxhEoZK5GJvwVrD"')
    cut = data.index(b"\n", target) + 1  # after the first of its five records
    part1 = _read_prefix(SPOTTER, data, cut, tmp_path)
    early = next(e for e in part1.usage if e.message_id == "msg_01Aci2WjhVxhEoZK5GJvwVrD")
    assert early.output_tokens == 10
    joined = part1.followed_by(parse_transcript(SPOTTER, cut))
    assert _comparable(joined) == _comparable(parse_transcript(SPOTTER))


def test_a_line_being_written_is_left_for_the_next_read(tmp_path: Path) -> None:
    data = TOOL_HEAVY.read_bytes()
    offsets = _split_offsets(data)
    cut, next_end = offsets[19], offsets[20]
    growing = tmp_path / "live.jsonl"
    growing.write_bytes(data[: cut + (next_end - cut) // 2])  # half of line 21
    part1 = parse_transcript(growing)
    assert (part1.records, part1.end_offset, part1.malformed_lines) == (20, cut, 0)
    assert parse_transcript(growing, part1.end_offset).records == 0
    with growing.open("ab") as handle:
        handle.write(data[cut + (next_end - cut) // 2 :])
    part2 = parse_transcript(growing, part1.end_offset)
    one_shot = parse_transcript(growing)
    assert part1.followed_by(part2) == one_shot
    assert one_shot.records == 39


def test_truncated_last_line_and_malformed_lines_are_skipped(tmp_path: Path) -> None:
    lines = TOOL_HEAVY.read_bytes().splitlines(keepends=True)
    broken = tmp_path / "broken.jsonl"
    body = b"".join(lines[:5]) + b'{"type": "user", "mess\n' + b"[1, 2]\n" + b"".join(lines[5:])
    broken.write_bytes(body + lines[0][:30])  # a final line without its end
    chunk = parse_transcript(broken)
    assert chunk.records == 39 and chunk.malformed_lines == 2
    assert chunk.end_offset == len(body)
    original = parse_transcript(TOOL_HEAVY)
    assert [p.text for p in chunk.user_prompts] == [p.text for p in original.user_prompts]
    assert len(chunk.usage) == len(original.usage)


def test_bad_offsets_and_paths_are_typed_errors(tmp_path: Path) -> None:
    size = TOOL_HEAVY.stat().st_size
    for offset in (-1, 5, size + 1, "0", True):
        with pytest.raises(InvalidTranscriptOffsetError):
            parse_transcript(TOOL_HEAVY, offset)  # type: ignore[arg-type]
    assert parse_transcript(TOOL_HEAVY, size).records == 0
    with pytest.raises(TranscriptNotFoundError):
        parse_transcript(tmp_path / "missing.jsonl")
    with pytest.raises(TranscriptNotFoundError):
        parse_transcript(tmp_path)
    first = parse_transcript(TOOL_HEAVY)
    with pytest.raises(InvalidTranscriptOffsetError):
        first.followed_by(first)


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_a_path_that_is_no_regular_file_is_refused_without_reading(
    tmp_path: Path, kind: str
) -> None:
    path = Path("/dev/zero")
    if kind == "fifo":
        path = tmp_path / "pipe.jsonl"
        os.mkfifo(path)  # nobody writes it: a blocking open would wait forever
    for read in (parse_transcript, latest_context_tokens, handoff_since_last_compaction):
        with pytest.raises(TranscriptNotFoundError, match="not a regular file"):
            read(path)


def test_a_long_transcript_is_read_in_parts_and_an_overlong_line_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = TOOL_HEAVY.read_bytes().splitlines(keepends=True)
    longest = max(len(line) for line in lines)
    overlong = b'{"type": "user", "pad": "' + b"x" * 2 * longest + b'"}\n'
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"".join(lines[:10]) + overlong + b"".join(lines[10:]))
    usage = len(parse_transcript(TOOL_HEAVY).usage)
    monkeypatch.setattr(reader, "MAX_READ_BYTES", longest + 10)
    parts = [parse_transcript(path)]
    while parts[-1].end_offset < path.stat().st_size:
        assert parts[-1].end_offset - parts[-1].start_offset <= len(overlong)
        parts.append(parse_transcript(path, parts[-1].end_offset))
    assert len(parts) > 3
    whole = parts[0]
    for part in parts[1:]:
        whole = whole.followed_by(part)
    assert (whole.records, whole.malformed_lines) == (39, 1)  # the overlong line skipped
    assert len(whole.usage) == usage
    # Reading from the end: the latest usage and the handoff come from the file's tail.
    assert latest_context_tokens(path) == 27_666
    assert handoff_since_last_compaction(path).context_tokens == 27_666


def test_synthetic_assistant_messages_do_not_count_as_usage(tmp_path: Path) -> None:
    lines = TOOL_HEAVY.read_bytes().splitlines(keepends=True)
    synthetic = {
        "type": "assistant", "isSidechain": False, "uuid": "s1", "timestamp": "2026-02-13T00:00Z",
        "message": {"id": "s1", "model": "<synthetic>", "role": "assistant",
                    "content": [{"type": "text", "text": "No response requested."}],
                    "usage": {"input_tokens": 0, "output_tokens": 0}},
    }
    copy = tmp_path / "synthetic.jsonl"
    copy.write_bytes(b"".join(lines) + json.dumps(synthetic).encode() + b"\n")
    chunk = parse_transcript(copy)
    assert chunk.context_tokens == 27_666 and len(chunk.usage) == 4


def test_spotter_handoff_since_the_compaction() -> None:
    handoff = handoff_since_last_compaction(SPOTTER)
    assert handoff.compaction is not None and handoff.compaction.pre_tokens == 170_251
    assert handoff.latest_request == "continue"  # nothing typed after the auto compaction
    assert handoff.earlier_requests[0].startswith("Work on bead spotter-dov.")
    assert handoff.open_todos == []
    # Edited after the boundary (line 754 on); transcript_computers.ex etc. were before it.
    assert handoff.files_edited == [SPOTTER_DIR + name for name in (
        "lib/spotter_web/components/transcript_components.ex",
        "lib/spotter_web/live/session_live.ex",
        "priv/static/assets/spotter.css",
        "assets/js/app.js",
        "lib/spotter_web/live/subagent_live.ex",
        "lib/spotter/services/waiting_summary.ex",
        "lib/spotter/services/waiting_summary/slice_builder.ex",
    )]
    assert "User chose: main was clean; fix the issues" in handoff.decisions[-1]
    assert any("don't need a manual handler" in d for d in handoff.decisions)
    assert handoff.last_assistant_text is not None
    assert handoff.last_assistant_text.startswith("Background task completed successfully")
    assert handoff.context_tokens == 106_060


def test_handoff_without_compaction_covers_the_whole_session() -> None:
    handoff = handoff_since_last_compaction(VIEWER_BIG)
    assert handoff.compaction is None
    assert handoff.latest_request == "Thanks! Please update CLAUDE.md for current changes"
    assert handoff.earlier_requests == ["/orchestrator create TODO app by Next.js"]
    assert handoff.files_edited == parse_transcript(VIEWER_BIG).files_edited()
    assert handoff.decisions == [
        "Since no custom commands are available, I'll decompose the TODO app creation into "
        "independent subtasks and execute them in parallel using the Task tool."
    ]
    assert handoff.last_assistant_text is not None
    assert handoff.last_assistant_text.startswith("CLAUDE.md has been created")


def _edit_record(uuid: str, timestamp: str, path: str) -> bytes:
    record = {
        "type": "assistant", "isSidechain": True, "uuid": uuid, "timestamp": timestamp,
        "agentId": "a1", "message": {"id": "msg_" + uuid, "model": "m", "role": "assistant",
        "content": [{"type": "tool_use", "id": "tu_" + uuid, "name": "Edit",
                     "input": {"file_path": path}}]},
    }
    return json.dumps(record).encode() + b"\n"


def test_handoff_counts_subagent_edits_made_after_the_boundary(tmp_path: Path) -> None:
    main = tmp_path / SPOTTER.name
    shutil.copyfile(SPOTTER, main)
    agents = tmp_path / SPOTTER_ID / "subagents"
    agents.mkdir(parents=True)
    (agents / "agent-x.jsonl").write_bytes(
        _edit_record("u1", "2026-02-12T20:00:00.000Z", "/repo/before.py")
        + _edit_record("u2", "2026-02-12T20:45:00.000Z", "/repo/after.py")
    )
    with_agents = handoff_since_last_compaction(main)
    assert with_agents.files_edited[-1] == "/repo/after.py"
    assert "/repo/before.py" not in with_agents.files_edited
    without = handoff_since_last_compaction(main, include_subagents=False)
    assert "/repo/after.py" not in without.files_edited


def _huge_handoff() -> Handoff:
    return Handoff(
        session_id="s",
        compaction=None,
        latest_request="please " * 400,
        earlier_requests=["earlier " * 300] * 4,
        open_todos=[Todo(f"todo {i} " + "x" * 300, "pending") for i in range(MAX_LIST_ITEMS)],
        files_edited=[f"/repo/{i}/" + "d" * 200 for i in range(MAX_LIST_ITEMS)],
        decisions=["decided " * 50] * 20,
        last_assistant_text="done " * 400,
    )


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=fixture_id)
def test_rendered_handoff_fits_its_cap(path: Path) -> None:
    handoff = handoff_since_last_compaction(path)
    for cap in (100, 400, 2_000, 10_000):
        assert len(render_handoff_text(handoff, cap)) <= cap
    full = render_handoff_text(handoff, 10_000)
    if handoff.latest_request:
        assert handoff.latest_request in full


def test_a_huge_handoff_is_shrunk_not_just_cut() -> None:
    handoff = _huge_handoff()
    text = render_handoff_text(handoff, 9_999)
    assert len(text) <= 9_999
    for section in ("## Latest request", "## Open todos", "## Files edited", "## Decisions",
                    "## Last assistant message"):
        assert section in text
    assert len(render_handoff_text(handoff, 100)) <= 100
    for bad in (0, 99, "5000", None):
        with pytest.raises(ValidationError):
            render_handoff_text(handoff, bad)  # type: ignore[arg-type]


def test_handoff_fields_are_bounded(tmp_path: Path) -> None:
    texts = " ".join(f"We decided to use option {i} instead of the old one." for i in range(40))
    records = [
        {"type": "user", "uuid": "u", "message": {"role": "user", "content": "y" * 5_000}},
        {"type": "assistant", "uuid": "a", "message": {
            "id": "m", "role": "assistant", "content": [{"type": "text", "text": texts}]}},
    ]
    path = tmp_path / "bounded.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    handoff = handoff_from_chunk(parse_transcript(path))
    assert handoff.latest_request is not None and len(handoff.latest_request) == MAX_TEXT_CHARS
    assert len(handoff.decisions) == 20 and handoff.decisions[-1].endswith("option 39 instead "
                                                                          "of the old one.")
    assert handoff.last_assistant_text is not None
    assert len(handoff.last_assistant_text) <= MAX_TEXT_CHARS


def test_the_big_session_parses_well_under_a_second() -> None:
    started = time.perf_counter()
    chunk = parse_transcript(SPOTTER)
    handoff_from_chunk(chunk)
    assert time.perf_counter() - started < 1.0
