"""A remote agent's transcript: ``ctxdb hook`` with ``CTXDB_URL=http://…`` sends the part of
its transcript each event needs, and the server reads those bytes as the local hook reads the
file (both backends, a real uvicorn server in a thread, real Claude Code transcripts).

A session through the server ends with the token usage, observations and handoffs the same
session has through local hooks; bytes sent again are read once; a backlog longer than one
event's upload goes with the next events; and no path a client names is opened on the
server's disk.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ctxdb.domain.agents import AgentSession
from ctxdb.domain.hook_events import parse_event
from ctxdb.hooks import remote_transcript, transcript_pieces
from ctxdb.hooks.remote import forward
from ctxdb.repo_identity import repo_identity
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from ctxdb.transcripts.handoff import handoff_since_last_compaction
from ctxdb.transcripts.uploaded import UploadedTranscript
from remote_server import served
from test_hooks import event, shop_repository
from test_remote_hooks import RemoteHook, fleet_token

VIEWER = Path(__file__).parent / "fixtures" / "claude-code" / "claude-code-viewer"
LONG = VIEWER / "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl"  # 774 KB, 20 TodoWrite calls
SHORT = VIEWER / "5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl"
SPOTTER = Path(__file__).parent / "fixtures" / "claude-code" / "spotter" \
    / "4d5611e5-241a-462a-8d15-5122611a9569.jsonl"  # with two subagent transcripts


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return shop_repository(tmp_path / "shop", origin=None)


def events(repo: Path, long: Path, short: Path) -> list[dict[str, Any]]:
    """Two sessions: one works, stops and is compacted; one ends without a Stop (its handoff
    is made at SessionEnd from the transcript)."""
    a, b = long.stem, short.stem
    return [event("SessionStart", repo, long, a, source="startup"),
            event("UserPromptSubmit", repo, long, a, prompt="go on"),
            event("Stop", repo, long, a),
            event("Stop", repo, long, a),
            event("PreCompact", repo, long, a, trigger="manual", custom_instructions="keep it"),
            event("SessionEnd", repo, long, a, reason="logout"),
            event("SessionStart", repo, short, b, source="startup"),
            event("UserPromptSubmit", repo, short, b, prompt="and now"),
            event("SessionEnd", repo, short, b, reason="logout")]


def outcome(db: Ctxdb, repo: Path, sessions: list[str]) -> dict[str, Any]:
    """What the sessions left: usage, the context gauge, observations and handoffs."""
    project = str(db.sessions.resolve_project(repo_identity(str(repo)))["project_id"])
    result: dict[str, Any] = {}
    for sid in sessions:
        agent = db.sessions.instance_of(AgentSession("claude-code", sid))
        assert agent is not None
        handoff = db.tokens.latest_handoff(instance_id=agent["instance_id"]) or {}
        result[sid] = {
            "gauge": agent["current_token_usage"],
            "usage": db.transcripts.usage(sid)["totals"],
            "observations": [_plain(row) for row in
                             db.observations.timeline(project, session_id=sid, limit=1000)],
            "handoff": {key: handoff.get(key) for key in
                        ("kind", "summary", "next_steps", "working_set", "tokens_before")}}
    return result


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """An observation less what differs between two databases: ids, and the time of a
    handoff's (when the hook ran, not a time of the transcript)."""
    recorded = {"id", "created_at"} | ({"occurred_at"} if row["kind"] == "handoff" else set())
    return {key: value for key, value in row.items()
            if not key.endswith("_id") and key not in recorded}


def test_a_remote_session_ends_as_the_local_one(db: Ctxdb, scratch: Settings, repo: Path,
                                                tmp_path: Path) -> None:
    long, short = tmp_path / LONG.name, tmp_path / SHORT.name
    shutil.copy(LONG, long)
    shutil.copy(SHORT, short)
    session = events(repo, long, short)
    with Ctxdb.open(scratch) as local_db:  # the local hook's path, in process
        for payload in session:
            hook_event = parse_event("claude-code", json.dumps(payload))
            local_db.hook_events.handle(hook_event, lambda: repo_identity(str(repo)))
        local = outcome(local_db, repo, [long.stem, short.stem])
    with served(db) as server:
        hook = RemoteHook(server, tmp_path / "hook.log", tmp_path / "home", fleet_token(db))
        for payload in session:
            hook(payload, "--deadline", "10")  # the machine is shared: no flaky timeouts
        assert hook.logged() == ""
        remote = outcome(db, repo, [long.stem, short.stem])
        assert remote == local
        first = remote[long.stem]
        assert first["gauge"] > 0 and first["usage"]["responses"] > 100
        assert first["observations"] and first["handoff"]["kind"] == "compact"
        assert first["handoff"]["working_set"]["latest_request"]
        assert first["handoff"]["working_set"]["files_edited"]
        assert remote[short.stem]["handoff"]["kind"] == "end"
        assert remote[short.stem]["handoff"]["working_set"]["latest_request"]
        # The state kept on the agent's machine lost: the next Stop sends everything again,
        # and nothing is counted twice.
        shutil.rmtree(tmp_path / "home" / ".local" / "share" / "ctxdb" / "remote-transcripts")
        hook(event("Stop", repo, long, long.stem), "--deadline", "10")
        assert outcome(db, repo, [long.stem, short.stem]) == remote
        assert db.transcripts.get(str(long))["byte_offset"] == long.stat().st_size
        assert hook.logged() == ""


def test_a_backlog_goes_with_the_next_events(db: Ctxdb, repo: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (remote_transcript, transcript_pieces):  # both read the upload's size
        monkeypatch.setattr(module, "MAX_UPLOAD_BYTES", 200 * 1024)
    transcript = tmp_path / LONG.name
    shutil.copy(LONG, transcript)
    sid = transcript.stem
    with served(db) as server:
        settings = db.settings.replace(url=server, token=fleet_token(db))
        monkeypatch.setenv("HOME", str(tmp_path / "home"))

        def stop() -> int:
            payload = event("Stop", repo, transcript, sid)
            forward(parse_event("claude-code", json.dumps(payload)),
                    lambda _: repo_identity(str(repo)), settings, 1.0, time.monotonic() + 20)
            return int(db.transcripts.usage(sid)["totals"]["responses"])

        db.hook_events.handle(parse_event("claude-code", json.dumps(
            event("SessionStart", repo, None, sid, source="startup"))),
            lambda: repo_identity(str(repo)))
        counts = [stop() for _ in range(5)]
    assert 0 < counts[0] < counts[1] < counts[2] < counts[3] == counts[4]  # 774 KB, 4 sends
    row = db.transcripts.get(str(transcript))
    assert row is not None and row["byte_offset"] == transcript.stat().st_size


def test_a_line_longer_than_an_upload_is_skipped_and_a_half_written_one_waits(
        db: Ctxdb, scratch: Settings, repo: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (remote_transcript, transcript_pieces):  # both read the upload's size
        monkeypatch.setattr(module, "MAX_UPLOAD_BYTES", 64 * 1024)
    lines = SHORT.read_bytes().splitlines(keepends=True)
    huge = json.dumps({"type": "progress", "data": "x" * 300_000}).encode() + b"\n"
    transcript = tmp_path / SHORT.name
    transcript.write_bytes(b"".join(lines[:10]) + huge + b"".join(lines[10:]) + b'{"type":')
    sid = transcript.stem
    with Ctxdb.open(scratch) as local_db:
        local_db.transcripts.ingest(transcript, session_id=sid)
        local = local_db.transcripts.usage(sid)["totals"]
    with served(db) as server:
        settings = db.settings.replace(url=server, token=fleet_token(db))
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        for _ in range(4):
            forward(parse_event("claude-code", json.dumps(event("Stop", repo, transcript, sid))),
                    lambda _: repo_identity(str(repo)), settings, 1.0, time.monotonic() + 20)
    assert db.transcripts.usage(sid)["totals"] == local and local["responses"] > 0
    row = db.transcripts.get(str(transcript))
    assert row is not None and row["byte_offset"] == transcript.stat().st_size - len(b'{"type":')


def test_subagent_transcripts_go_with_the_session(db: Ctxdb, scratch: Settings, repo: Path,
                                                  tmp_path: Path) -> None:
    """As local ingestion reads ``<session>/subagents/*.jsonl`` with the session's file, the
    remote hook sends their new bytes, in what the session's bytes leave of one upload."""
    main = tmp_path / SPOTTER.name
    head = SPOTTER.read_bytes()[: 900 * 1024]
    main.write_bytes(head[: head.rfind(b"\n") + 1])  # 900 KB: the subagents wait a turn
    shutil.copytree(SPOTTER.with_suffix(""), main.with_suffix(""))
    sid = main.stem
    session = [event("SessionStart", repo, main, sid, source="startup"),
               *[event("Stop", repo, main, sid) for _ in range(3)]]
    with Ctxdb.open(scratch) as local_db:
        for payload in session:
            local_db.hook_events.handle(parse_event("claude-code", json.dumps(payload)),
                                        lambda: repo_identity(str(repo)))
        local = outcome(local_db, repo, [sid])[sid]
    with served(db) as server:
        hook = RemoteHook(server, tmp_path / "hook.log", tmp_path / "home", fleet_token(db))
        for payload in session:
            hook(payload, "--deadline", "10")
        assert hook.logged() == ""
    remote = outcome(db, repo, [sid])[sid]
    assert (remote["usage"], remote["gauge"], remote["observations"]) == \
        (local["usage"], local["gauge"], local["observations"])
    sidechain = [row for row in db.transcripts.usage(sid)["responses"] if row["sidechain"]]
    assert sidechain  # the subagents' responses


def post(server: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{server}/v1/hooks", json.dumps(body).encode(),
                                     {"Authorization": f"Bearer {token}",
                                      "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_no_path_a_client_names_is_read_on_the_server(db: Ctxdb, repo: Path) -> None:
    """A real transcript on the server's disk, named by the event and by the upload (with no
    bytes), and /etc/passwd: nothing of them is read, whatever the event."""
    identity = repo_identity(str(repo))
    sid = LONG.stem
    repo_body = {"repo_key": identity.repo_key, "name": identity.name,
                 "worktree": identity.worktree, "branch": identity.branch}
    with served(db) as server:
        token = fleet_token(db)
        for name, fields in (("SessionStart", {"source": "startup"}),
                             ("UserPromptSubmit", {"prompt": "go"}), ("Stop", {}),
                             ("PreCompact", {"trigger": "manual"})):
            for path in (str(LONG), "/etc/passwd"):
                status, answer = post(server, token, {
                    "client": "claude-code", "repo": repo_body,
                    "event": event(name, repo, Path(path), sid, **fields),
                    "transcript": {"path": path, "offset": 0, "size": 10 ** 6, "data": ""}})
                assert status == 200, answer
        status, answer = post(server, token, {
            "client": "claude-code", "repo": repo_body, "event": event("Stop", repo, LONG, sid),
            "transcript": {"path": "../../etc/passwd", "offset": 0, "size": 1, "data": ""}})
        assert status == 400 and "absolute" in answer["detail"]
        for data, size in (("not base64!", 100), (base64.b64encode(b"{}").decode(), 100),
                           (base64.b64encode(b"{}\n").decode(), 2)):
            status, answer = post(server, token, {
                "client": "claude-code", "repo": repo_body,
                "event": event("Stop", repo, LONG, sid),
                "transcript": {"path": "/x.jsonl", "offset": 0, "size": size, "data": data}})
            assert status == 400, answer
    agent = db.sessions.instance_of(AgentSession("claude-code", sid))
    assert agent is not None and agent["current_token_usage"] == 0
    assert agent["metadata"]["transcript_path"] is None
    assert db.transcripts.usage(sid)["totals"]["responses"] == 0
    handoff = db.tokens.latest_handoff(instance_id=agent["instance_id"])
    assert handoff is not None and handoff["working_set"].get("latest_request") is None
    project = str(db.sessions.resolve_project(identity)["project_id"])
    observed = db.observations.timeline(project, session_id=sid, limit=10)
    assert {row["kind"] for row in observed} == {"handoff"}  # the bare handoffs only


def test_a_path_a_remote_agent_took_does_not_hide_a_local_file(
        db: Ctxdb, scratch: Settings, repo: Path, tmp_path: Path) -> None:
    """Rows are keyed by path: a remote agent naming a file of the server's machine moves no
    offset of the session that really writes it there."""
    transcript = tmp_path / SHORT.name
    shutil.copy(SHORT, transcript)
    first = SHORT.read_bytes()  # all of it: the stored offset is the file's end
    with served(db) as server:
        settings = db.settings.replace(url=server, token=fleet_token(db))
        db.hook_events.handle(parse_event("claude-code", json.dumps(
            event("SessionStart", repo, None, "intruder", source="startup"))),
            lambda: repo_identity(str(repo)))
        status, answer = post(server, settings.token or "", {
            "client": "claude-code", "event": event("Stop", repo, None, "intruder"),
            "repo": None, "transcript": {
                "path": str(transcript), "offset": 0, "size": transcript.stat().st_size,
                "data": base64.b64encode(first).decode()}})
    assert status == 200 and answer["transcript_offset"] == len(first)
    db.transcripts.ingest(transcript, session_id=transcript.stem)
    row = db.transcripts.get(str(transcript))
    assert row is not None and row["session_id"] == transcript.stem
    assert row["byte_offset"] == transcript.stat().st_size
    with Ctxdb.open(scratch) as fresh:  # what the file gives read once, alone
        fresh.transcripts.ingest(transcript, session_id=transcript.stem)
        expected = fresh.transcripts.usage(transcript.stem)["totals"]
    assert db.transcripts.usage(transcript.stem)["totals"] == expected
    assert expected["responses"] > 0


def subagent_editing_after_the_compaction(main: Path) -> str:
    """A third subagent transcript next to ``main``'s, made of one real Edit of the session
    (as a subagent's, after the latest compaction, on a file the session did not edit):
    the path it edits."""
    lines = main.read_bytes().splitlines()
    record = json.loads(next(line for line in lines if b'"name":"Edit"' in line))
    last = max(str(json.loads(line).get("timestamp") or "") for line in lines[-50:])
    edited = "/home/USER/projects/spotter/lib/edited_by_a_subagent.ex"
    for part in record["message"]["content"]:
        if part.get("type") == "tool_use":
            part["input"]["file_path"] = edited
    record.update(isSidechain=True, agentId="editor", timestamp=last)
    folder = main.with_suffix("") / "subagents"
    (folder / "agent-editor.jsonl").write_text(json.dumps(record) + "\n")
    return edited


def test_a_remote_handoff_is_the_local_one_past_one_upload_and_with_subagents(
        db: Ctxdb, scratch: Settings, repo: Path, tmp_path: Path) -> None:
    """The handoffs a session saves (PreCompact, then SessionEnd after a resumed compaction)
    through a server are the local hook's: read from the whole 3 MB transcript (more than
    one upload), with the files its subagents edited."""
    main = tmp_path / SPOTTER.name
    shutil.copy(SPOTTER, main)
    shutil.copytree(SPOTTER.with_suffix(""), main.with_suffix(""))
    edited = subagent_editing_after_the_compaction(main)
    sid = main.stem
    session = [event("SessionStart", repo, main, sid, source="startup"),
               event("PreCompact", repo, main, sid, trigger="manual",
                     custom_instructions="keep the tests"),
               event("SessionStart", repo, main, sid, source="compact"),
               event("SessionEnd", repo, main, sid, reason="logout")]

    def handoffs(store: Ctxdb) -> list[dict[str, Any]]:
        agent = store.sessions.instance_of(AgentSession("claude-code", sid))
        assert agent is not None
        return [{key: row[key] for key in ("kind", "summary", "next_steps", "working_set",
                                           "tokens_before")}
                for row in store.tokens.handoffs(agent["instance_id"])]

    with Ctxdb.open(scratch) as local_db:
        for payload in session:
            local_db.hook_events.handle(parse_event("claude-code", json.dumps(payload)),
                                        lambda: repo_identity(str(repo)))
        local = handoffs(local_db)
    with served(db) as server:
        hook = RemoteHook(server, tmp_path / "hook.log", tmp_path / "home", fleet_token(db))
        for payload in session:
            hook(payload, "--deadline", "10")
        assert hook.logged() == ""
    remote = handoffs(db)
    assert remote == local and [row["kind"] for row in remote] == ["end", "compact"]
    for row in remote:
        assert edited in row["working_set"]["files_edited"]
    assert "keep the tests" in remote[1]["summary"]
    # What the file's last upload alone gives is another handoff: this one is the whole's.
    tail = main.read_bytes()[-remote_transcript.MAX_UPLOAD_BYTES:]
    upload = UploadedTranscript(str(main), main.stat().st_size - len(tail) + tail.find(b"\n")
                                + 1, tail[tail.find(b"\n") + 1:], main.stat().st_size)
    assert handoff_since_last_compaction(upload) != handoff_since_last_compaction(main)


def test_a_handoff_sent_is_checked_and_goes_with_its_transcript_only(
        db: Ctxdb, repo: Path) -> None:
    identity = repo_identity(str(repo))
    repo_body = {"repo_key": identity.repo_key, "name": identity.name,
                 "worktree": identity.worktree, "branch": identity.branch}
    named = {"path": "/agent/s.jsonl", "offset": 10, "size": 10, "data": ""}
    handoff = {"latest_request": "ship it", "files_edited": ["/agent/a.py"]}
    with served(db) as server:
        token = fleet_token(db)
        cases = [({"handoff": handoff}, "its transcript"),
                 ({"transcript": named, "handoff": {**handoff, "files_edited": ["x"] * 51}},
                  "files_edited"),
                 ({"transcript": named, "handoff": {"latest_request": "x" * 2001}},
                  "latest_request"),
                 ({"transcript": named, "handoff": {**handoff, "path": "/etc/passwd"}},
                  "path")]
        for extra, named_in_detail in cases:
            status, answer = post(server, token, {
                "client": "claude-code", "repo": repo_body,
                "event": event("PreCompact", repo, None, "s", trigger="manual"), **extra})
            assert (status, answer["code"]) == (400, "invalid_input"), answer
            assert named_in_detail in answer["detail"], answer
        status, answer = post(server, token, {
            "client": "claude-code", "repo": repo_body, "transcript": named,
            "handoff": handoff, "event": event("PreCompact", repo, None, "s", trigger="manual")})
        assert status == 200, answer
    agent = db.sessions.instance_of(AgentSession("claude-code", "s"))
    assert agent is not None
    saved = db.tokens.latest_handoff(instance_id=agent["instance_id"])
    assert saved is not None and saved["working_set"]["latest_request"] == "ship it"
    assert saved["working_set"]["files_edited"] == ["/agent/a.py"]
    assert saved["working_set"]["transcript_path"] == "/agent/s.jsonl"


def test_what_each_event_sends_of_its_transcript(tmp_path: Path) -> None:
    """A handoff for the events that save one; nothing for Gemini's PreCompress fired on
    every turn (trigger auto: the server saves nothing then); the tail for a prompt."""
    transcript = tmp_path / SHORT.name
    shutil.copy(SHORT, transcript)
    state = tmp_path / "state"

    def parsed(client: str, name: str, **fields: Any) -> Any:
        payload = {"session_id": "s", "transcript_path": str(transcript), "cwd": str(tmp_path),
                   "hook_event_name": name, **fields}
        return parse_event(client, json.dumps(payload))

    for hook_event in (parsed("claude-code", "PreCompact", trigger="auto"),
                       parsed("claude-code", "SessionEnd", reason="logout"),
                       parsed("claude-code", "SessionStart", source="compact"),
                       parsed("gemini", "PreCompress", trigger="manual")):
        assert remote_transcript.saves_handoff(hook_event), hook_event.name
        handoff = remote_transcript.handoff_body(hook_event)
        assert handoff is not None  # of a Claude Code file: Gemini's reader finds nothing
        assert bool(handoff["latest_request"]) == (hook_event.client == "claude-code")
        body = remote_transcript.transcript_body(hook_event, "http://s", state, True)
        assert body is not None and (body["offset"], body["data"]) == \
            (transcript.stat().st_size, "")
    every_turn = parsed("gemini", "PreCompress", trigger="auto")
    assert not remote_transcript.saves_handoff(every_turn)
    assert remote_transcript.transcript_body(every_turn, "http://s", state) is None
    prompt = parsed("claude-code", "UserPromptSubmit", prompt="go")
    assert not remote_transcript.saves_handoff(prompt)
    body = remote_transcript.transcript_body(prompt, "http://s", state)
    assert body is not None and body["data"]
