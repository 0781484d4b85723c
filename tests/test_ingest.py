"""Transcript ingestion on every real fixture, on both backends: usage from the real
``usage`` fields (one row per API response), subagent files, compaction boundaries,
idempotence (a re-run writes nothing) and incremental reads (appended lines are picked up).

Expected counts are the parser's facts about the fixtures (see test_transcripts.py): distinct
``message.id`` values per file, the boundary's ``compactMetadata``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ctxdb.cli.main import cli
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from ctxdb.transcripts import parse_transcript

FIXTURES = Path(__file__).parent / "fixtures" / "claude-code"
SPOTTER_ID = "4d5611e5-241a-462a-8d15-5122611a9569"
# main transcript, API responses in it (main chain + inline sidechains), in its subagent
# files, latest main-chain context
CASES = [
    (FIXTURES / "spotter" / f"{SPOTTER_ID}.jsonl", 139, 13, 106_060),
    (FIXTURES / "spotter" / "tool_heavy.jsonl", 4, 0, 27_666),
    (FIXTURES / "claude-code-viewer" / "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl", 170, 0,
     21_552),
    (FIXTURES / "claude-code-viewer" / "5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl", 20, 0,
     26_080),
]


def copy_of(source: Path, folder: Path) -> Path:
    """The transcript copied with its ``<session>/subagents`` folder, if it has one."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    shutil.copy(source, target)
    subagents = source.with_suffix("")
    if subagents.is_dir():
        shutil.copytree(subagents, target.with_suffix(""))
    return target


def audit_count(db: Ctxdb) -> int:
    return len(db.audit_log(limit=10_000))


@pytest.mark.parametrize(("source", "responses", "subagent_responses", "context"), CASES,
                         ids=lambda value: value.name[:12] if isinstance(value, Path) else None)
def test_every_fixture_is_ingested_once(
    db: Ctxdb, tmp_path: Path, source: Path, responses: int, subagent_responses: int,
    context: int,
) -> None:
    path = copy_of(source, tmp_path)
    session_id = parse_transcript(path).session_id
    assert session_id is not None
    result = db.transcripts.ingest(path)
    assert result["usage_entries"] == responses + subagent_responses
    usage = db.transcripts.usage(session_id)
    assert usage["totals"]["responses"] == responses + subagent_responses
    main_chain = [row for row in usage["responses"] if not row["sidechain"]]
    last = main_chain[-1]
    assert last["input_tokens"] + last["cache_creation_tokens"] + last["cache_read_tokens"] \
        == context
    assert all(row["output_tokens"] >= 0 and row["model"] for row in usage["responses"])
    stored = db.transcripts.get(path)
    assert stored is not None and stored["byte_offset"] == path.stat().st_size
    before = (audit_count(db), usage)
    again = db.transcripts.ingest(path)  # idempotent: nothing new, nothing written
    assert again["records"] == 0 and not any(f["applied"] for f in again["files"])
    assert (audit_count(db), db.transcripts.usage(session_id)) == before


def test_subagent_files_are_recorded_as_sidechains(db: Ctxdb, tmp_path: Path) -> None:
    path = copy_of(CASES[0][0], tmp_path)
    result = db.transcripts.ingest(path)
    assert [Path(f["path"]).name for f in result["files"]] == [
        path.name, "agent-a2898e3.jsonl", "agent-acompact-e1f845.jsonl"]
    rows = db.transcripts.usage(SPOTTER_ID)["responses"]
    by_agent: dict[str | None, list[int]] = {}
    for row in rows:
        by_agent.setdefault(row["agent_id"], []).append(row["sidechain"])
    assert {agent: len(flags) for agent, flags in by_agent.items()} == {
        None: 139, "a2898e3": 12, "acompact-e1f845": 1}
    assert set(by_agent["a2898e3"]) == {1} and set(by_agent[None]) == {0}
    skipped = db.transcripts.ingest(copy_of(CASES[0][0], tmp_path / "other"),
                                    include_subagents=False)
    assert len(skipped["files"]) == 1


def test_compaction_boundaries_and_their_summary(db: Ctxdb, tmp_path: Path) -> None:
    path = copy_of(CASES[0][0], tmp_path)
    assert db.transcripts.ingest(path)["compactions"] == 1
    [boundary] = db.transcripts.compactions(SPOTTER_ID)
    assert (boundary["trigger_type"], boundary["pre_tokens"]) == ("auto", 170_251)
    assert boundary["boundary_uuid"] and boundary["occurred_at"].endswith("Z")
    assert boundary["summary"].startswith("This session is being continued")
    for case in CASES[1:]:
        other = copy_of(case[0], tmp_path / case[0].stem)
        assert db.transcripts.ingest(other)["compactions"] == 0


def test_appended_lines_are_picked_up(db: Ctxdb, tmp_path: Path) -> None:
    source = CASES[0][0]
    data = source.read_bytes()
    path = tmp_path / source.name
    cut = data.index(b"\n", len(data) // 2) + 1
    # The first read sees half the file and a half-written line, which it must not consume.
    path.write_bytes(data[:cut] + data[cut:cut + 100])
    first = db.transcripts.ingest(path)
    assert first["files"][0]["to_offset"] == cut
    with path.open("ab") as handle:
        handle.write(data[cut + 100:])
    second = db.transcripts.ingest(path)
    assert second["files"][0]["from_offset"] == cut
    assert first["records"] + second["records"] == 1512
    reference = parse_transcript(source)
    usage = db.transcripts.usage(SPOTTER_ID)
    # Responses straddling the cut were upserted, not duplicated, with their final numbers.
    assert usage["totals"]["responses"] == len(reference.usage) == 139
    assert usage["totals"]["output_tokens"] == sum(e.output_tokens for e in reference.usage)
    assert db.transcripts.get(path)["records"] == 1512


def test_a_replaced_transcript_is_read_again_from_the_start(db: Ctxdb, tmp_path: Path) -> None:
    source = CASES[1][0]
    path = copy_of(source, tmp_path)
    db.transcripts.ingest(path)
    lines = source.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:5]))  # shorter than the stored offset
    result = db.transcripts.ingest(path)
    assert result["files"][0]["reset"] and result["files"][0]["from_offset"] == 0
    assert db.transcripts.get(path)["records"] == 5
    assert db.transcripts.usage(parse_transcript(path).session_id or "")["totals"][
        "responses"] == 4  # kept: usage is never deleted by a re-read


def test_ingestion_attaches_usage_to_the_sessions_instance(db: Ctxdb, tmp_path: Path) -> None:
    path = copy_of(CASES[1][0], tmp_path)
    session_id = parse_transcript(path).session_id
    project = db.projects.create("p")
    launched = db.instances.launch(project["project_id"], session_id=session_id,
                                   client="claude-code")
    db.transcripts.ingest(path)
    rows = db.transcripts.usage(session_id or "")["responses"]
    assert {row["instance_id"] for row in rows} == {launched["instance_id"]}
    assert {row["project_id"] for row in rows} == {project["project_id"]}
    assert db.instances.get(launched["instance_id"])["current_token_usage"] == 27_666


def test_the_ingest_transcript_command(settings: Settings, tmp_path: Path) -> None:
    path = copy_of(CASES[3][0], tmp_path)
    runner = CliRunner()
    base = ["--traceback", "--url", settings.url]
    env = {"CTXDB_ACTOR": "user:test", "HOME": str(tmp_path)}
    first = runner.invoke(cli, [*base, "ingest-transcript", str(path), "--json"], env=env)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["usage_entries"] == 20
    again = runner.invoke(cli, [*base, "ingest-transcript", str(path), "--json"], env=env)
    assert json.loads(again.stdout)["records"] == 0
    human = runner.invoke(cli, [*base, "ingest-transcript", str(path)], env=env)
    assert "0 new records" in human.stdout
    missing = runner.invoke(cli, [*base, "ingest-transcript", str(tmp_path / "nope.jsonl")],
                            env=env)
    assert missing.exit_code == 3 and "no transcript file at" in missing.stderr


@pytest.mark.parametrize(("name", "data"), [
    ("notes.txt", b"just some notes\nand more\n"),
    ("blob.bin", bytes(range(256)) * 4 + b"\n"),
    ("list.json", b'[1, 2]\n{"no": "type"}\n'),
])
def test_a_file_that_is_not_a_transcript_is_refused_and_nothing_recorded(
    db: Ctxdb, settings: Settings, tmp_path: Path, name: str, data: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    result = CliRunner().invoke(cli, ["--url", settings.url, "ingest-transcript", str(path)],
                                env={"CTXDB_ACTOR": "user:test", "HOME": str(tmp_path)})
    assert result.exit_code == 2, result.output
    assert f"{path} is not a transcript" in result.stderr
    assert db.transcripts.usage(path.stem)["totals"]["responses"] == 0
    assert db.audit_log() == []
    empty = tmp_path / "started.jsonl"  # a session just started: nothing to read yet
    empty.write_bytes(b"")
    assert db.transcripts.ingest(empty)["records"] == 0


@pytest.mark.parametrize("block", [64, 4_096, 256 * 1024])
def test_the_tail_gives_the_context_in_use_of_the_whole_file(block: int) -> None:
    """Pure file reading (no database): small blocks make it grow the window many times."""
    from ctxdb.transcripts.tail import latest_context_tokens

    files = [case[0] for case in CASES]
    files += sorted((FIXTURES / "spotter" / SPOTTER_ID / "subagents").glob("*.jsonl"))
    for path in files:
        assert latest_context_tokens(path, block) == parse_transcript(path).context_tokens


# --- poisoned lines: skipped or cleaned, never stopping the ingestion --------------------------


def response(n: int, *, message_id: str | None = None, model: str = "claude-opus-4-6",
             timestamp: str = "2026-02-13T10:00:00.000Z", uuid: str | None = None,
             text: str | None = None) -> bytes:
    """One assistant record with its usage, as a transcript line."""
    record = {
        "type": "assistant", "sessionId": "poisoned", "uuid": uuid or f"u-{n}",
        "timestamp": timestamp, "isSidechain": False,
        "message": {"id": f"msg_{n}" if message_id is None else message_id, "model": model,
                    "role": "assistant",
                    "content": [{"type": "text", "text": text or f"answer {n}"}],
                    "usage": {"input_tokens": n, "output_tokens": 1,
                              "cache_creation_input_tokens": 0,
                              "cache_read_input_tokens": 1000}},
    }
    return json.dumps(record).encode() + b"\n"  # ASCII: \u escapes for the odd characters


def prompt(text: str) -> bytes:
    return json.dumps({"type": "user", "sessionId": "poisoned", "uuid": f"p-{text}",
                       "timestamp": "2026-02-13T10:00:00.000Z",
                       "message": {"role": "user", "content": text}}).encode() + b"\n"


def boundary(uuid: str) -> bytes:
    return json.dumps({"type": "system", "subtype": "compact_boundary", "uuid": uuid,
                       "timestamp": "2026-02-13T10:00:00.000Z",
                       "compactMetadata": {"trigger": "auto", "preTokens": 5}}).encode() + b"\n"


# name -> (the line, lines skipped, what was stored of it: message id -> (model, occurred_at))
POISON: dict[str, tuple[bytes, int, dict[str, tuple[str, str | None]]]] = {
    "deeply-nested": (b'{"type": "assistant", "message": ' + b"[" * 100_000 + b"]" * 100_000
                      + b"}\n", 1, {}),
    "surrogate-in-model": (response(7, model="opus\ud800"), 0,
                           {"msg_7": ("opus\ufffd", "2026-02-13T10:00:00.000Z")}),
    "surrogate-in-message-id": (response(7, message_id="msg_\udc00"), 0,
                                {"msg_\ufffd": ("claude-opus-4-6", "2026-02-13T10:00:00.000Z")}),
    "surrogate-in-uuid": (response(7, message_id="", uuid="u\ud83d") + boundary("b\ud800"), 0,
                          {"u\ufffd": ("claude-opus-4-6", "2026-02-13T10:00:00.000Z")}),
    "raw-surrogate-bytes": (response(7).replace(b"claude-opus-4-6", b"opus\xed\xa0\x80"), 0,
                            {"msg_7": ("opus\ufffd", "2026-02-13T10:00:00.000Z")}),
    "nul": (response(7, model="op\x00us", text="a\x00b") + boundary("b\x00"), 0,
            {"msg_7": ("op\ufffdus", "2026-02-13T10:00:00.000Z")}),
    "impossible-date": (response(7, timestamp="2025-13-45T99:99:99Z"), 0,
                        {"msg_7": ("claude-opus-4-6", None)}),
    "megabyte-message-id": (response(7, message_id="msg_" + "x" * 1_000_000), 1, {}),
    "megabyte-boundary-uuid": (boundary("b" * 1_000_000), 1, {}),
}


@pytest.mark.parametrize("poison", sorted(POISON))
def test_a_poisoned_line_is_skipped_or_cleaned_and_ingestion_goes_on(
    db: Ctxdb, tmp_path: Path, poison: str
) -> None:
    from ctxdb.domain.agents import AgentSession, RepoIdentity

    line, skipped, stored = POISON[poison]
    path = tmp_path / "poisoned.jsonl"
    path.write_bytes(prompt("first request") + response(1) + line + response(2))
    first = db.transcripts.ingest(path)
    assert first["skipped_lines"] == skipped
    assert first["files"][0]["to_offset"] == path.stat().st_size  # past the bad line
    with path.open("ab") as handle:  # lines appended afterwards are ingested too
        handle.write(prompt("the latest request") + response(3))
    second = db.transcripts.ingest(path)
    assert (second["usage_entries"], second["skipped_lines"]) == (1, 0)
    rows = {row["message_id"]: row for row in db.transcripts.usage("poisoned")["responses"]}
    assert set(rows) == {"msg_1", "msg_2", "msg_3", *stored}
    for message_id, (model, occurred_at) in stored.items():
        assert (rows[message_id]["model"], rows[message_id]["occurred_at"]) == (model,
                                                                                occurred_at)
    # PreCompact still saves its handoff from the same transcript.
    session = AgentSession("claude-code", "poisoned", transcript_path=str(path))
    handoff = db.sessions.save_before_compaction(session, "auto", None,
                                                 RepoIdentity("dir:/poisoned", "poisoned"))
    assert "the latest request" in handoff["summary"] and "answer 3" in handoff["summary"]
    assert db.transcripts.ingest(path)["records"] == 0  # caught up: nothing to read again


def test_a_transcript_longer_than_one_read_is_ingested_in_several(
    db: Ctxdb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ctxdb.transcripts import reader

    path = tmp_path / "long.jsonl"
    path.write_bytes(b"".join(response(n) for n in range(1, 41)))
    monkeypatch.setattr(reader, "MAX_READ_BYTES", 2_000)  # a few lines per read
    result = db.transcripts.ingest(path)
    assert (result["records"], result["usage_entries"]) == (40, 40)
    assert result["files"][0]["to_offset"] == path.stat().st_size
    assert db.transcripts.usage("poisoned")["totals"]["responses"] == 40


def test_the_ingest_transcript_command_reports_skipped_lines(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "poisoned.jsonl"
    path.write_bytes(response(1) + b"{not json\n" + POISON["megabyte-message-id"][0])
    runner = CliRunner()
    base = ["--url", settings.url]
    env = {"CTXDB_ACTOR": "user:test", "HOME": str(tmp_path)}
    done = runner.invoke(cli, [*base, "ingest-transcript", str(path), "--json"], env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["skipped_lines"] == 2
    path.write_bytes(path.read_bytes() + b"[]\n")
    human = runner.invoke(cli, [*base, "ingest-transcript", str(path)], env=env)
    assert "1 line skipped" in human.stdout


def test_a_path_longer_than_postgresql_indexes_is_refused_on_both_backends(
    db: Ctxdb, tmp_path: Path
) -> None:
    from ctxdb.errors import ValidationError

    folder = tmp_path
    for _ in range(9):  # 9 × 80 CJK characters: 2,160 bytes of directory names in UTF-8
        folder = folder / ("路" * 80)
    folder.mkdir(parents=True)
    path = folder / "s.jsonl"
    path.write_bytes(response(1))
    with pytest.raises(ValidationError, match="over the limit of 2000 bytes"):
        db.transcripts.ingest(path)
    assert db.transcripts.usage("poisoned")["responses"] == []
    with pytest.raises(ValidationError, match="over the limit of 2000 bytes"):
        db.transcripts.get(path)
