"""The timeline of what agent sessions did (observations, docs/timeline.md).

The extraction is checked on every fixture transcript against counts made here from the raw
JSON (tool calls by name, boundaries by record type), independently of the parser; storing it
on both backends: the same counts, a second ingestion (and a re-read from the start) adds
nothing, the observations are searchable, browsable (`ctxdb timeline`, MCP get/timeline,
``GET /v1/projects/{id}/timeline``) and stay within their project.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from ctxdb.cli.main import cli
from ctxdb.domain.agents import RepoIdentity
from ctxdb.domain.hook_events import parse_event
from ctxdb.errors import NotFoundError, SessionNotFoundError, ValidationError
from ctxdb.http.app import create_app
from ctxdb.mcp import details
from ctxdb.mcp.tools import ContextTools
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from ctxdb.transcripts import ToolResult, parse_transcript, subagent_files
from ctxdb.transcripts.models import EDIT_TOOLS
from ctxdb.transcripts.observations import command_exit_code, observations_of
from test_ingest import copy_of
from test_server_api import auth, token

FIXTURES = Path(__file__).parent / "fixtures"
CLAUDE = FIXTURES / "claude-code"
SPOTTER = CLAUDE / "spotter" / "4d5611e5-241a-462a-8d15-5122611a9569.jsonl"
CLAUDE_FILES = [SPOTTER, CLAUDE / "spotter" / "tool_heavy.jsonl",
                CLAUDE / "claude-code-viewer" / "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl",
                CLAUDE / "claude-code-viewer" / "5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl"]
OTHER_FILES = [(next((FIXTURES / "codex").glob("*.jsonl")), "codex"),
               (next((FIXTURES / "gemini").glob("*.jsonl")), "gemini")]
ALL_FILES = [(path, None) for path in CLAUDE_FILES] + OTHER_FILES


def ids(value: Any) -> str | None:
    return value.name[:12] if isinstance(value, Path) else None


def raw_counts(path: Path) -> Counter[str]:
    """What a Claude Code transcript file holds, counted from its JSON alone: shell commands,
    edits that did not fail, compaction boundaries."""
    counts: Counter[str] = Counter()
    calls: dict[str, str] = {}
    failed: set[str] = set()
    for line in path.read_text("utf-8").splitlines():
        record = json.loads(line)
        if record.get("type") == "system" and record.get("subtype") == "compact_boundary":
            counts["compaction"] += 1
        content = (record.get("message") or {}).get("content")
        for block in content if isinstance(content, list) else []:
            if block.get("type") == "tool_use":
                calls[block["id"]] = block["name"]
            elif block.get("type") == "tool_result" and block.get("is_error") is True:
                failed.add(block["tool_use_id"])
    for call_id, name in calls.items():
        if name == "Bash":
            counts["command"] += 1
        elif name in EDIT_TOOLS and call_id not in failed:
            counts["edit"] += 1
    return counts


def expected_counts(path: Path, client: str | None) -> Counter[str]:
    """The observation counts of a transcript and its subagent files, from the extraction."""
    counts: Counter[str] = Counter()
    for file in [path, *subagent_files(path)]:
        chunk = parse_transcript(file, 0, client)
        counts.update(o.kind.value for o in observations_of(chunk, "s", file.name))
    return counts


# --- the extraction --------------------------------------------------------------------------

@pytest.mark.parametrize("path", CLAUDE_FILES, ids=ids)
def test_counts_match_the_claude_code_transcript(path: Path) -> None:
    for file in [path, *subagent_files(path)]:
        chunk = parse_transcript(file)
        found = Counter(o.kind.value for o in observations_of(chunk, "s", file.name))
        raw = raw_counts(file)
        assert found["prompt"] == len(chunk.user_prompts)
        for kind in ("command", "edit", "compaction"):
            assert found[kind] == raw[kind], (file.name, kind)
        assert found["summary"] == len(chunk.compact_summaries)
        assert found["error"] == sum(result.is_error for result in chunk.tool_results)


def test_the_fixtures_hold_every_kind_a_transcript_gives() -> None:
    """So that the counts above test something: the fixtures, together, have each kind."""
    total = sum((expected_counts(path, client) for path, client in ALL_FILES), Counter())
    assert {kind for kind, count in total.items() if count} == {
        "prompt", "read", "edit", "command", "error", "todo", "decision", "compaction",
        "summary"}
    assert expected_counts(SPOTTER, None)["compaction"] == 1
    assert expected_counts(*OTHER_FILES[1])["prompt"] == 2  # Gemini CLI's two prompts


@pytest.mark.parametrize(("path", "client"), ALL_FILES, ids=ids)
def test_extraction_is_deterministic_with_unique_keys(path: Path, client: str | None) -> None:
    first = observations_of(parse_transcript(path, 0, client), "s", path.name)
    assert first == observations_of(parse_transcript(path, 0, client), "s", path.name)
    assert len({o.key for o in first}) == len(first)
    assert all(o.key.startswith("s/") and 0 < len(o.text) <= 2_000 for o in first)


def test_keys_do_not_depend_on_where_a_read_starts() -> None:
    path = CLAUDE_FILES[2]
    whole = observations_of(parse_transcript(path), "s", path.name)
    middle = whole[len(whole) // 2].offset  # the start of a line
    head = [o for o in whole if o.offset < middle]
    tail = observations_of(parse_transcript(path, middle), "s", path.name)
    assert {o.key for o in head} | {o.key for o in tail} == {o.key for o in whole}


# A short transcript with one thing of each kind a transcript gives.
SAMPLE = [
    {"type": "user", "uuid": "u1", "timestamp": "2026-01-01T10:00:00.000Z",
     "message": {"role": "user", "content": "rename the payment module"}},
    {"type": "assistant", "uuid": "a1", "timestamp": "2026-01-01T10:00:01.000Z",
     "message": {"id": "m1", "role": "assistant", "content": [
         {"type": "text", "text": "I'll use the adapter pattern instead of a rewrite."},
         {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "/r.py"}},
         {"type": "tool_use", "id": "t2", "name": "Bash", "input": {"command": "make"}},
         {"type": "tool_use", "id": "t3", "name": "Edit", "input": {"file_path": "/e.py"}},
         {"type": "tool_use", "id": "t4", "name": "TodoWrite", "input": {"todos": [
             {"content": "ship", "status": "pending"}]}}]}},
    {"type": "user", "uuid": "u2", "timestamp": "2026-01-01T10:00:02.000Z",
     "message": {"role": "user", "content": [
         {"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
         {"type": "tool_result", "tool_use_id": "t2", "is_error": True,
          "content": "Exit code 2\nmake: *** no rule"},
         {"type": "tool_result", "tool_use_id": "t3", "is_error": True,
          "content": "String to replace not found"}]}},
    {"type": "system", "subtype": "compact_boundary", "uuid": "c1",
     "timestamp": "2026-01-01T10:00:03.000Z",
     "compactMetadata": {"trigger": "manual", "preTokens": 1234}},
    {"type": "user", "uuid": "u3", "isCompactSummary": True,
     "timestamp": "2026-01-01T10:00:04.000Z",
     "message": {"role": "user", "content": "Summary: renamed."}},
]


def test_what_each_kind_records(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in SAMPLE))
    found = [(o.kind.value, o.text, o.tool, o.exit_code)
             for o in observations_of(parse_transcript(path), "s", path.name)]
    assert found == [
        ("prompt", "rename the payment module", None, None),
        ("decision", "I'll use the adapter pattern instead of a rewrite.", None, None),
        ("read", "/r.py", "Read", None),
        ("command", "make", "Bash", 2),
        ("todo", "[pending] ship", "TodoWrite", None),
        ("error", "Bash failed: Exit code 2 make: *** no rule", "Bash", None),
        ("error", "Edit failed: String to replace not found", "Edit", None),
        ("compaction", "manual compaction at 1,234 tokens", None, None),
        ("summary", "Summary: renamed.", None, None),
    ]


@pytest.mark.parametrize(("failed", "text", "code"), [
    (False, None, 0), (True, "Exit code 127\nnot found", 127),
    (True, "Error: Exit code 1\nx", 1), (True, "hook refused it", None), (True, None, None)])
def test_a_commands_exit_code(failed: bool, text: str | None, code: int | None) -> None:
    result = ToolResult("t", failed, None, None, False, 0, error_text=text)
    assert command_exit_code(result) == code
    assert command_exit_code(None) is None


# --- storing and reading ---------------------------------------------------------------------

def kinds_of(db: Ctxdb, project_id: str, **filters: Any) -> Counter[str]:
    return Counter(o["kind"] for o in db.observations.timeline(project_id, limit=1_000,
                                                                **filters))


def test_ingestion_stores_each_observation_once(db: Ctxdb, tmp_path: Path) -> None:
    """Every fixture, each in a project of its own (one test: a database per test is what
    costs time here)."""
    for number, (source, client) in enumerate(ALL_FILES):
        pid = db.projects.create(f"fixture {number}")["project_id"]
        path = copy_of(source, tmp_path / str(number))
        expected = expected_counts(path, client)
        first = db.transcripts.ingest(path, project_id=pid, client=client)
        assert first["observations"] == sum(expected.values()), source.name
        assert kinds_of(db, pid) == expected, source.name
        assert db.transcripts.ingest(path, project_id=pid, client=client)["observations"] == 0
        # Read again from the start (the file shrank, then grew back): nothing is added twice.
        data = path.read_bytes()
        path.write_bytes(data[: data.index(b"\n") + 1])
        assert db.transcripts.ingest(path, project_id=pid, client=client)["observations"] == 0
        path.write_bytes(data)
        db.transcripts.ingest(path, project_id=pid, client=client)
        assert kinds_of(db, pid) == expected, source.name


def test_a_commands_exit_code_read_later_completes_it(
        db: Ctxdb, pid: str, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in SAMPLE[:2]))
    db.transcripts.ingest(path, project_id=pid, session_id="s")
    [command] = [o for o in db.observations.timeline(pid) if o["kind"] == "command"]
    assert command["exit_code"] is None
    path.write_text("".join(json.dumps(line) + "\n" for line in SAMPLE))
    db.transcripts.ingest(path, project_id=pid, session_id="s")
    [command] = [o for o in db.observations.timeline(pid) if o["kind"] == "command"]
    assert command["exit_code"] == 2


def test_a_transcript_of_no_known_project_records_no_observations(
        db: Ctxdb, pid: str, tmp_path: Path) -> None:
    path = copy_of(CLAUDE_FILES[1], tmp_path)
    assert db.transcripts.ingest(path)["observations"] == 0
    assert db.observations.timeline(pid) == []


def test_a_poisoned_transcript_gives_storable_observations(
        db: Ctxdb, pid: str, tmp_path: Path) -> None:
    """NULs and lone surrogates arrive as U+FFFD, an impossible date as the time of
    recording, a key too long for an index hashed: the same on both backends."""
    from test_ingest import POISON, prompt, response

    path = tmp_path / "poisoned.jsonl"
    path.write_bytes(prompt("first\x00 request \ud800") + b"".join(
        line for line, _, _ in POISON.values()) + response(2) + json.dumps({
            "type": "assistant", "sessionId": "poisoned", "uuid": "u-long",
            "timestamp": "2025-13-45T99:99:99Z", "message": {"role": "assistant", "content": [
                {"type": "tool_use", "id": "t" * 100_000, "name": "Bash",
                 "input": {"command": "rm -rf build"}}]}}).encode() + b"\n")
    added = db.transcripts.ingest(path, project_id=pid)["observations"]
    observations = db.observations.timeline(pid, limit=1_000)
    assert added == len(observations) >= 3
    texts = {o["kind"]: o["text"] for o in observations}
    assert texts["prompt"] == "first\ufffd request \ufffd"
    assert texts["command"] == "rm -rf build"
    assert db.transcripts.ingest(path, project_id=pid)["observations"] == 0


@pytest.fixture
def spotter(db: Ctxdb, pid: str, tmp_path: Path) -> str:
    """The spotter session ingested into ``pid``; its session id."""
    path = copy_of(SPOTTER, tmp_path)
    db.transcripts.ingest(path, project_id=pid)
    return SPOTTER.stem


def test_the_timeline_filters(db: Ctxdb, pid: str, spotter: str, tmp_path: Path) -> None:
    other = copy_of(CLAUDE_FILES[1], tmp_path / "other")
    db.transcripts.ingest(other, project_id=pid)
    latest = db.observations.timeline(pid, limit=5)
    assert len(latest) == 5
    assert [o["occurred_at"] for o in latest] == sorted(o["occurred_at"] for o in latest)
    every = db.observations.timeline(pid, limit=1_000)
    assert latest == every[-5:]
    session = db.observations.timeline(pid, session_id=spotter, limit=1_000)
    assert {o["session_id"] for o in session} == {spotter} and len(session) < len(every)
    assert db.observations.timeline(pid, since="2999-01-01") == []
    since = every[-3]["occurred_at"]
    assert db.observations.timeline(pid, since=since, limit=1_000) == every[-3:]
    with pytest.raises(SessionNotFoundError):
        db.observations.timeline(pid, session_id="not-a-session-here")
    with pytest.raises(ValidationError):
        db.observations.timeline(pid, since="yesterday-ish")


def test_observations_stay_in_their_project(db: Ctxdb, pid: str, spotter: str) -> None:
    other = db.projects.create("another")["project_id"]
    with pytest.raises(SessionNotFoundError):
        db.observations.timeline(other, session_id=spotter)
    assert db.observations.timeline(other) == []
    some = db.observations.timeline(pid, limit=1)[0]["observation_id"]
    with pytest.raises(NotFoundError):
        db.observations.get(other, some)
    assert db.search.search(other, "upstream", kinds=["observation"]) == []


def test_observations_are_searchable(db: Ctxdb, pid: str, spotter: str) -> None:
    hits = db.search.search(pid, "upstream branch", kinds=["observation"], limit=5)
    assert [(hit["type"], hit["session_id"]) for hit in hits[:2]] == [
        ("error", spotter), ("command", spotter)]
    assert "**upstream** **branch**" in hits[0]["snippet"]
    assert db.search.search(pid, "upstream branch", content_type="command",
                            kinds=["observation"])[0]["id"] == hits[1]["id"]
    assert any(hit["kind"] == "observation" for hit in db.search.search(pid, "mix format"))
    counts = db.search.index_status()["observation"]
    assert counts[0] == counts[1] == len(db.observations.timeline(pid, limit=1_000))
    assert db.search.rebuild_index()["observation"] == counts[0]
    # The trigger writes each document as the repair (from the view) would have.
    repaired = db.audit_log(entity_id="search_documents")[0]["details"]["repaired"]
    assert repaired["observation"] == {"removed": 0, "added": 0}


def test_mcp_get_and_timeline_take_observation_ids(db: Ctxdb, pid: str, spotter: str) -> None:
    tools = ContextTools(db, pid)
    [hit] = db.search.search(pid, "upstream branch", content_type="error",
                             kinds=["observation"])
    record_id = f"observation:{hit['id']}"
    assert details.get(tools, [record_id]).startswith(f"{record_id}: {record_id} [error]")
    text = details.timeline(tools, record_id, before=2, after=1)
    assert text.startswith(f"Observations of session {spotter} around {record_id}")
    shown = [line for line in text.splitlines() if line[1:].startswith("observation:")]
    assert len(shown) == 4 and shown[2].startswith(f">{record_id} [error]")
    assert shown[1].endswith("git push 2>&1 (exit 128)")
    other = db.projects.create("another")["project_id"]
    with pytest.raises(NotFoundError):
        details.timeline(ContextTools(db, other), record_id)
    with pytest.raises(ValidationError):
        details.get(tools, ["observation:x"])


def test_a_handoff_is_on_its_sessions_timeline(db: Ctxdb, pid: str) -> None:
    instance = db.instances.launch(pid, client="claude-code",
                                   session_id="sess-handoff-1")["instance_id"]
    db.tokens.record_handoff(instance, summary="the refund flow is half done")
    db.tokens.record_handoff(db.instances.launch(pid)["instance_id"], summary="no session")
    [observation] = db.observations.timeline(pid, session_id="sess-handoff-1")
    assert (observation["kind"], observation["tool"], observation["text"],
            observation["instance_id"]) == ("handoff", "manual",
                                            "the refund flow is half done", instance)


def test_the_stop_hook_records_the_turn(db: Ctxdb, tmp_path: Path) -> None:
    path = copy_of(CLAUDE_FILES[1], tmp_path)
    session = parse_transcript(path).session_id
    assert session is not None
    repo = RepoIdentity("dir:/srv/shop", "shop", "/srv/shop")
    event = {"session_id": session, "transcript_path": str(path), "cwd": "/srv/shop"}
    for name in ("SessionStart", "Stop", "Stop"):
        db.hook_events.handle(parse_event("claude-code", json.dumps(
            {**event, "hook_event_name": name, "source": "startup"})), lambda: repo)
    project = db.sessions.find_project(repo.repo_key)
    assert project is not None
    observations = db.observations.timeline(project["project_id"], session_id=session)
    assert Counter(o["kind"] for o in observations) == expected_counts(path, None)
    assert {o["generation"] for o in observations} == {0}
    assert {o["instance_id"] for o in observations} != {None}


# --- the command -----------------------------------------------------------------------------

def run(settings: Settings, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--url", settings.url, "timeline", *args],
                              env={"COLUMNS": "80"})


@pytest.mark.parametrize("backend", ["sqlite"])  # rendering: the storage is tested above
def test_ctxdb_timeline(settings: Settings, db: Ctxdb, pid: str, spotter: str) -> None:
    shown = run(settings, "-p", pid, "--limit", "40")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == f"session {spotter}" and len(lines) == 41
    assert all(len(line) <= 80 for line in lines)
    assert any("command   exit 128: git push 2>&1" in line for line in lines)
    as_json = json.loads(run(settings, "-p", pid, "--session", spotter, "-n", "3",
                             "--json").output)
    assert [o["observation_id"] for o in as_json] == [
        o["observation_id"] for o in db.observations.timeline(pid, limit=3)]
    refused = run(settings, "-p", pid, "--session", "elsewhere")
    assert refused.exit_code == 3 and "unknown session 'elsewhere'" in refused.output


def test_the_timeline_over_http(db: Ctxdb, pid: str, spotter: str) -> None:
    with TestClient(create_app(db)) as client:
        url = f"/v1/projects/{pid}/timeline"
        headers = auth(token(db, pid, "read"))
        answer = client.get(url, params={"session_id": spotter, "limit": 3}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json() == db.observations.timeline(pid, session_id=spotter, limit=3)
        assert client.get(url, params={"session_id": "elsewhere"},
                          headers=headers).status_code == 404
        assert client.get(url, params={"since": "soon"}, headers=headers).status_code == 400
        other = db.projects.create("another")["project_id"]
        assert client.get(url, headers=auth(token(db, other, "read"))).status_code == 404
