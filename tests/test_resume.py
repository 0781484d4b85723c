"""Picking up where another session stopped: resume at startup, handoffs made after the fact
for sessions that ended or crashed without one, across clients, and the live siblings.

The scenarios run ``ctxdb hook`` as whole processes (``Hook`` of test_hooks) on a copy of a
real fixture transcript with a marked request, open todos and an edited file appended; the
budget cases call the renderer directly, at each client's limit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import test_hooks
from ctxdb.domain.agents import CLIENTS, injection_limit, injection_max_chars
from ctxdb.domain.render import injection_title, render_context
from ctxdb.domain.resume import RESUME_TITLE, SIBLINGS_TITLE, render_startup
from ctxdb.mcp.continuity import siblings as siblings_text
from ctxdb.mcp.knowledge import search_context
from ctxdb.mcp.tools import ContextTools
from ctxdb.service import Ctxdb
from test_hooks import CTXDB, FIXTURES, Hook, event, instance, project_of, wait_for_end

# The fixtures of test_hooks, made this module's too.
hook, repo, transcript = test_hooks.hook, test_hooks.repo, test_hooks.transcript

MARK = "MARKED-REQUEST-7: make the ledger export stream"
SESSION = "d6e0bada-1959-4eec-a9d2-0bfade768d8f"  # the fixture transcript's own session id


def _records() -> list[dict[str, Any]]:
    """A request, a todo list (two open), an edit and a last answer, as Claude Code writes."""
    base = {"isSidechain": False, "userType": "external", "cwd": "/repo", "sessionId": SESSION,
            "version": "2.1.38", "timestamp": "2026-02-10T23:00:00.000Z"}
    usage = {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 30_000}
    todos = [{"content": "stream rows from the cursor", "status": "in_progress",
              "activeForm": "streaming"},
             {"content": "add a test for 10k rows", "status": "pending", "activeForm": "t"},
             {"content": "read the old exporter", "status": "completed", "activeForm": "r"}]
    return [
        {**base, "type": "user", "uuid": "m-u1", "message": {"role": "user", "content": MARK}},
        {**base, "type": "assistant", "uuid": "m-a1", "message": {
            "id": "msg_m1", "model": "claude-x", "role": "assistant", "usage": usage,
            "content": [
                {"type": "tool_use", "id": "toolu_m1", "name": "TodoWrite",
                 "input": {"todos": todos}},
                {"type": "tool_use", "id": "toolu_m2", "name": "Edit",
                 "input": {"file_path": "/repo/src/ledger/export.py", "old_string": "a",
                           "new_string": "b"}}]}},
        {**base, "type": "assistant", "uuid": "m-a2", "message": {
            "id": "msg_m2", "model": "claude-x", "role": "assistant", "usage": usage,
            "content": [{"type": "text",
                         "text": "The exporter now streams; the 10k-row test is next."}]}},
    ]


@pytest.fixture
def worked(tmp_path: Path) -> Path:
    """Session A's transcript: the tool-heavy fixture, then the marked work."""
    path = tmp_path / "a" / f"{SESSION}.jsonl"
    path.parent.mkdir()
    shutil.copy(FIXTURES / "spotter" / "tool_heavy.jsonl", path)
    with path.open("a", encoding="utf-8") as handle:
        for record in _records():
            handle.write(json.dumps(record) + "\n")
    return path


def work(hook: Hook, repo: Path, transcript: Path, session_id: str,
         client: str = "claude-code") -> None:
    """A session starts, takes a prompt and answers it (its transcript ingested)."""
    names = {"UserPromptSubmit": "BeforeAgent", "Stop": "AfterAgent"} \
        if client == "gemini" else {}
    hook(event("SessionStart", repo, transcript, session_id, source="startup"), client=client)
    hook(event(names.get("UserPromptSubmit", "UserPromptSubmit"), repo, transcript, session_id,
               prompt="go"), client=client)
    hook(event(names.get("Stop", "Stop"), repo, transcript, session_id), client=client)


def resume_part(text: str) -> str:
    """The "where we left off" block alone (the siblings block follows it)."""
    assert RESUME_TITLE in text, text
    part = text[text.index(RESUME_TITLE):]
    return part[:part.index(SIBLINGS_TITLE)] if SIBLINGS_TITLE in part else part


def assert_resumes_a(text: str) -> None:
    part = resume_part(text)
    for expected in (MARK, "stream rows from the cursor", "add a test for 10k rows",
                     "/repo/src/ledger/export.py", "the 10k-row test is next"):
        assert expected in part
    assert "read the old exporter" not in part  # done: not an open todo


def raw(db: Ctxdb, sql: str, **params: Any) -> list[dict[str, Any]]:
    """``sql`` (``:name`` parameters) run as is, in a write transaction; its rows."""
    compiled = db.storage.dialect.compile(sql)
    if not sql.startswith("SELECT"):
        db.storage.write(lambda tx: tx.execute_raw(compiled, params))
        return []
    return db.storage.write(lambda tx: tx.all_raw(compiled, params))


def backdate_heartbeat(db: Ctxdb, instance_id: str) -> None:
    """As if the session had been silent for a long time (killed without SessionEnd)."""
    raw(db, "UPDATE instances SET last_heartbeat = :at WHERE instance_id = :id",
        at="2026-01-01T00:00:00.000Z", id=instance_id)


# --- 1 and 3: resume at startup, in every client ------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_a_new_session_resumes_where_an_ended_one_left_off(
    hook: Hook, db: Ctxdb, repo: Path, worked: Path, client: str
) -> None:
    project_id = project_of(db, repo)
    db.context.store(project_id, "amounts are integer cents", "CRITICAL")
    work(hook, repo, worked, "a")
    hook(event("PreCompact", repo, worked, "a", trigger="manual", custom_instructions=None))
    hook(event("SessionEnd", repo, worked, "a", reason="logout"))
    saved = db.tokens.latest_handoff(instance_id=wait_for_end(db, "a")["instance_id"])
    assert saved is not None and saved["kind"] == "compact"

    text = hook(event("SessionStart", repo, None, "b", source="startup"), client=client)
    assert text is not None and len(text) < injection_limit(client)
    assert_resumes_a(text)
    assert "claude-code session a on branch main, saved before a compaction" in text
    assert "that session has ended" in text
    assert text.index("amounts are integer cents") < text.index(RESUME_TITLE)
    [injection] = db.sessions.injections(instance(db, "b", client)["instance_id"])
    assert injection["handoff_id"] == saved["handoff_id"] and injection["text"] == text
    # A's handoff covered its last work: nothing was made after the fact.
    assert [h["kind"] for h in _handoffs(db, project_id)] == ["compact"]
    assert hook.logged() == ""


def test_a_claude_code_session_resumes_a_codex_sessions_handoff(
    hook: Hook, db: Ctxdb, repo: Path, tmp_path: Path
) -> None:
    """The Codex session's transcript is a real Codex rollout (tests/fixtures/codex), read
    with Codex's parser."""
    source = next((FIXTURES.parent / "codex").glob("rollout-*.jsonl"))
    rollout = Path(shutil.copy(source, tmp_path / source.name))
    work(hook, repo, rollout, "x", client="codex")
    hook(event("PreCompact", repo, rollout, "x", trigger="auto"), client="codex")
    text = hook(event("SessionStart", repo, None, "y", source="startup"))
    assert text is not None and "codex session x" in text
    part = resume_part(text)
    assert "TOOLME write notes" in part and "ANSWER codex mock" in part


def test_the_same_worktree_and_branch_come_before_the_rest_of_the_project(
    hook: Hook, db: Ctxdb, repo: Path, worked: Path, transcript: Path, tmp_path: Path
) -> None:
    from test_hooks import git

    feature = tmp_path / "shop-feature"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(feature))
    work(hook, feature, worked, "on-feature")
    hook(event("PreCompact", feature, worked, "on-feature", trigger="manual"))
    work(hook, repo, transcript, "on-main")  # later, in the main worktree
    hook(event("PreCompact", repo, transcript, "on-main", trigger="manual"))

    in_feature = hook(event("SessionStart", feature, None, "next-feature", source="startup"))
    assert in_feature is not None and "session on-feature on branch feature" in in_feature
    assert_resumes_a(in_feature)
    in_main = hook(event("SessionStart", repo, None, "next-main", source="startup"))
    assert in_main is not None and "session on-main on branch main" in in_main
    assert "xterm.js" in resume_part(in_main) and MARK not in resume_part(in_main)

    elsewhere = tmp_path / "other-clone"
    git(tmp_path, "clone", "-q", str(repo), str(elsewhere))
    git(elsewhere, "checkout", "-q", "-b", "topic")
    git(elsewhere, "remote", "set-url", "origin", "git@example.com:Acme/Shop.git")
    newest = hook(event("SessionStart", elsewhere, None, "next-topic", source="startup"))
    # No handoff of this worktree and branch: the project's latest.
    assert newest is not None and "session on-main on branch main" in newest


def test_no_handoff_is_offered_outside_the_window(
    hook: Hook, db: Ctxdb, repo: Path, worked: Path, make_settings: Any
) -> None:
    work(hook, repo, worked, "a")
    hook(event("PreCompact", repo, worked, "a", trigger="manual"))
    project_id = project_of(db, repo)
    [saved] = _handoffs(db, project_id)
    with Ctxdb.open(make_settings(resume_window=0)) as off:
        context = off.continuity.new_session(project_id, "claude-code")
        assert RESUME_TITLE not in context["text"] and context["handoff"] is None
    raw(db, "UPDATE handoffs SET created_at = :at", at="2026-01-01T00:00:00.000Z")
    text = hook(event("SessionStart", repo, None, "b", source="startup"))
    assert text is None or RESUME_TITLE not in text
    assert db.sessions.injections(instance(db, "b")["instance_id"])[0]["handoff_id"] is None
    assert saved["kind"] == "compact"


# --- the budget: CRITICAL items first, each client's limit ----------------------------------------


def _item(number: int, priority: str, text: str) -> dict[str, Any]:
    return {"item_id": number, "sequence_number": number, "priority": priority,
            "content_type": "note", "content": text}


def _handoff_row(summary_chars: int) -> dict[str, Any]:
    return {"handoff_id": 9, "kind": "compact", "client": "codex", "session_id": "s",
            "branch": "main", "status": "completed", "created_at": "2026-01-01T00:00:00Z",
            "now": "2026-01-01T00:05:00Z", "next_steps": [],
            "working_set": {"latest_request": "go"},
            "summary": "# Handoff\n## Latest request\n" + "r" * summary_chars}


def _sibling() -> dict[str, Any]:
    return {"instance_id": "i", "client": "gemini", "session_id": "g", "branch": "main",
            "last_heartbeat": "2026-01-01T00:04:00Z", "now": "2026-01-01T00:05:00Z",
            "tasks": [{"task_id": 3, "title": "ship"}], "handoff": None}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("critical_chars", [0, 2_000, 5_000, 8_000, 9_400, 20_000])
def test_the_blocks_never_push_a_critical_item_out_nor_pass_the_limit(
    client: str, critical_chars: int
) -> None:
    max_chars = injection_max_chars(client)
    critical = [_item(n, "CRITICAL", f"rule {n} " + "x" * (critical_chars // 10))
                for n in range(10)] if critical_chars else []
    others = [_item(100 + n, "HIGH", f"note {n} " + "y" * 300) for n in range(40)]
    items = critical + others
    title = injection_title("proj_x", "startup")
    alone = render_context(critical, title=title, max_chars=max_chars) if critical else None
    result = render_startup(items, title=title, resume=_handoff_row(20_000),
                            siblings=[_sibling()], max_chars=max_chars, share=0.4)
    assert len(result.text) <= max_chars < injection_limit(client)
    if alone is not None:  # every CRITICAL line exactly as without the blocks
        assert result.text.startswith(alone.text)
        critical_ids = [item["item_id"] for item in critical]
        assert [i for i in result.item_ids if i in critical_ids] == \
            [i for i in alone.item_ids if i in critical_ids]
    room = max_chars - (len(alone.text) if alone else 0)
    if room > 0.4 * max_chars + 200:
        assert result.resume_shown and result.siblings_shown == 1
        assert len(result.text) - (len(alone.text) if alone else 0) > 0.3 * max_chars
    if room < 300:
        assert not result.resume_shown and RESUME_TITLE not in result.text
    if result.resume_shown:  # HIGH items gave way, and the pack says so
        assert "more item(s) not shown" in result.text


def test_the_hook_injection_at_the_limit(
    hook: Hook, db: Ctxdb, repo: Path, worked: Path
) -> None:
    project_id = project_of(db, repo)
    rules = [f"CRITICAL rule {n}: " + "keep this " * 90 for n in range(9)]  # ~8,300 chars
    for rule in rules:
        db.context.store(project_id, rule, "CRITICAL")
    for n in range(30):
        db.context.store(project_id, f"background {n} " + "detail " * 40, "HIGH")
    work(hook, repo, worked, "a")
    hook(event("SessionEnd", repo, worked, "a"))
    wait_for_end(db, "a")
    for client in CLIENTS:
        text = hook(event("SessionStart", repo, None, f"b-{client}", source="startup"),
                    client=client)
        assert text is not None and len(text) <= injection_max_chars(client)
        assert all(rule.strip() in text for rule in rules)  # whole, not shortened
        head = text[text.index(RESUME_TITLE):]  # shown, in the room left
        assert len(head) < 1_300  # what the CRITICAL items left


# --- 2: a handoff for every session that stops without one ------------------------------------


def test_a_session_that_ends_without_a_handoff_gets_one_after_the_fact(
    hook: Hook, db: Ctxdb, repo: Path, worked: Path
) -> None:
    work(hook, repo, worked, "a")
    hook(event("SessionEnd", repo, worked, "a", reason="prompt_input_exit"))
    wait_for_end(db, "a")
    project_id = project_of(db, repo)
    # SessionEnd makes it at once, while the transcript is there.
    assert [h["working_set"]["made_after"] for h in _handoffs(db, project_id)] == ["end"]
    text = hook(event("SessionStart", repo, None, "b", source="startup"), client="gemini")
    assert text is not None and "made from its transcript after the session ended" in text
    assert_resumes_a(text)
    [made] = _handoffs(db, project_id)
    assert made["kind"] == "end" and made["working_set"]["made_after"] == "end"
    assert made["instance_id"] == instance(db, "a")["instance_id"]
    assert made["next_steps"] == ["stream rows from the cursor", "add a test for 10k rows"]
    assert any(e["action"] == "handoff.after_end" for e in db.audit_log(project_id))
    # Later hooks find nothing more to do: one handoff per stop.
    hook(event("UserPromptSubmit", repo, None, "b", prompt="go"), client="gemini")
    assert len(_handoffs(db, project_id)) == 1


def test_a_crashed_session_is_noticed_by_the_next_hook_of_another_session(
    hook: Hook, db: Ctxdb, repo: Path, worked: Path, transcript: Path
) -> None:
    work(hook, repo, worked, "a")  # then killed: no SessionEnd, no PreCompact
    hook(event("SessionStart", repo, transcript, "c", source="startup"), client="codex")
    project_id = project_of(db, repo)
    a = instance(db, "a")
    task = db.tasks.create(project_id, "the export")
    assert db.tasks.claim(project_id, a["instance_id"], 3_600) is not None
    assert hook(event("UserPromptSubmit", repo, transcript, "c", prompt="hi"),
                client="codex") is None
    assert _handoffs(db, project_id) == []  # A is still within the stale limit
    backdate_heartbeat(db, a["instance_id"])
    # Not a command, not a new session: the next prompt of any session of the project.
    hook(event("UserPromptSubmit", repo, transcript, "c", prompt="hi"), client="codex")
    assert instance(db, "a")["status"] == "crashed"
    assert db.tasks.get(task["task_id"])["status"] == "ready"  # its lease went back
    [made] = _handoffs(db, project_id)
    assert made["working_set"]["made_after"] == "crash"
    assert any(e["action"] == "handoff.after_crash" for e in db.audit_log(project_id))
    text = hook(event("SessionStart", repo, None, "b", source="startup"))
    assert text is not None and "made from its transcript after the session crashed" in text
    assert_resumes_a(text)
    assert db.sessions.injections(instance(db, "b")["instance_id"])[0]["handoff_id"] == \
        made["handoff_id"]


@pytest.mark.parametrize("noticed_by", ["Stop", "SessionStart", "mcp"])
def test_every_front_end_notices_a_crash(
    hook: Hook, db: Ctxdb, repo: Path, worked: Path, transcript: Path, noticed_by: str
) -> None:
    work(hook, repo, worked, "a")
    hook(event("SessionStart", repo, transcript, "c", source="startup"))
    project_id = project_of(db, repo)
    backdate_heartbeat(db, instance(db, "a")["instance_id"])
    if noticed_by == "Stop":
        hook(event("Stop", repo, transcript, "c"))
    elif noticed_by == "SessionStart":
        hook(event("SessionStart", repo, None, "d", source="startup"))
    else:
        search_context(ContextTools(db, project_id), "anything")
    assert [h["working_set"]["made_after"] for h in _handoffs(db, project_id)] == ["crash"]
    assert instance(db, "a")["status"] == "crashed"


def test_a_crash_is_settled_once_by_concurrent_settlers(
    hook: Hook, db: Ctxdb, repo: Path, worked: Path, settings: Any
) -> None:
    from ctxdb.service.usecases.continuity import (
        draft_settlements,
        sessions_needing_handoff,
        settle_in_tx,
    )

    work(hook, repo, worked, "a")
    project_id = project_of(db, repo)
    backdate_heartbeat(db, instance(db, "a")["instance_id"])
    rows = db.storage.read(lambda tx: sessions_needing_handoff(tx, settings, project_id))
    first, second = draft_settlements(rows), draft_settlements(rows)
    db.storage.write(lambda tx: settle_in_tx(tx, settings, project_id, first, "user:test"))
    again = db.storage.write(
        lambda tx: settle_in_tx(tx, settings, project_id, second, "user:test"))
    assert again == [] and len(_handoffs(db, project_id)) == 1


def test_a_session_without_a_readable_transcript_does_not_hide_an_older_handoff(
    hook: Hook, db: Ctxdb, repo: Path, worked: Path
) -> None:
    work(hook, repo, worked, "a")
    hook(event("PreCompact", repo, worked, "a", trigger="manual"))
    hook(event("SessionEnd", repo, worked, "a"))
    wait_for_end(db, "a")
    hook(event("SessionStart", repo, None, "blind", source="startup"), client="codex")
    hook(event("SessionEnd", repo, None, "blind"), client="codex")
    wait_for_end(db, "blind", "codex")
    text = hook(event("SessionStart", repo, None, "b", source="startup"))
    project_id = project_of(db, repo)
    kinds = [(h["kind"], h["working_set"].get("made_after")) for h in _handoffs(db, project_id)]
    assert kinds == [("compact", None), ("end", "end")]  # the bare one is stored...
    assert text is not None and "session a on branch main" in text  # ...but A's is offered
    assert_resumes_a(text)
    # The project's latest handoff (MCP get_context shows it first) is A's too.
    latest = db.tokens.latest_handoff(project_id=project_id)
    assert latest is not None and latest["kind"] == "compact"


# --- 4: the live siblings ----------------------------------------------------------------------


def test_a_new_session_is_told_of_its_live_siblings_and_their_tasks(
    hook: Hook, db: Ctxdb, repo: Path, worked: Path, transcript: Path
) -> None:
    project_id = project_of(db, repo)
    work(hook, repo, worked, "one")
    hook(event("PreCompact", repo, worked, "one", trigger="auto"))
    hook(event("SessionStart", repo, transcript, "two", source="startup"), client="gemini")
    for title, session, client in (("the export", "one", "claude-code"),
                                   ("the login page", "two", "gemini")):
        db.tasks.create(project_id, title)
        claimed = db.tasks.claim(project_id, instance(db, session, client)["instance_id"], 600)
        assert claimed is not None and claimed["title"] == title
    text = hook(event("SessionStart", repo, None, "three", source="startup"), client="codex")
    assert text is not None and SIBLINGS_TITLE in text
    block = text[text.index(SIBLINGS_TITLE):]
    lines = [line for line in block.splitlines() if line.startswith("- ")]
    assert len(lines) == 2
    one = next(line for line in lines if "session one" in line)
    two = next(line for line in lines if "session two" in line)
    assert one.startswith("- claude-code session one on branch main, heard from ")
    assert "'the export'" in one and f"latest handoff: {MARK}" in one
    assert two.startswith("- gemini session two on branch main")
    assert "'the login page'" in two and "latest handoff" not in two
    # The MCP tool gives the same view (to the third session: the two others).
    view = siblings_text(ContextTools(db, project_id),
                         instance_id=instance(db, "three", "codex")["instance_id"])
    assert view.splitlines()[2:] == block.splitlines()[2:]


def test_the_siblings_tool_over_mcp(hook: Hook, db: Ctxdb, repo: Path, transcript: Path,
                                    settings: Any, tmp_path: Path) -> None:
    from test_mcp import Client, run_session

    hook(event("SessionStart", repo, transcript, "one", source="startup"))
    project_id = project_of(db, repo)
    one = instance(db, "one")["instance_id"]

    async def body(client: Client) -> None:
        listed = {tool.name: tool for tool in (await client.session.list_tools()).tools}
        assert len(listed["siblings"].description or "") < 160  # tool definitions cost tokens
        seen = await client.text("siblings", project_id=project_id)
        assert seen.startswith(SIBLINGS_TITLE) and "claude-code session one on branch main" in seen
        alone = await client.text("siblings", project_id=project_id, instance_id=one)
        assert alone == f"No other live sessions in project {project_id}."
        assert "[project_not_found]" in await client.error("siblings", project_id="proj_none")

    run_session(settings, tmp_path, body)


def test_siblings_can_be_left_out(hook: Hook, db: Ctxdb, repo: Path, transcript: Path,
                                  make_settings: Any) -> None:
    hook(event("SessionStart", repo, transcript, "one", source="startup"))
    project_id = project_of(db, repo)
    with Ctxdb.open(make_settings(resume_siblings=False)) as quiet:
        assert SIBLINGS_TITLE not in quiet.continuity.new_session(project_id, "codex")["text"]
    assert SIBLINGS_TITLE in db.continuity.new_session(project_id, "codex")["text"]


# --- 5: ctxdb context --as-new-session ----------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_ctxdb_context_as_new_session_prints_what_the_next_session_receives(
    hook: Hook, db: Ctxdb, repo: Path, worked: Path, transcript: Path, client: str
) -> None:
    project_id = project_of(db, repo)
    db.context.store(project_id, "amounts are integer cents", "CRITICAL")
    db.context.store(project_id, "payments go through Stripe", "HIGH")
    work(hook, repo, worked, "a")
    hook(event("SessionEnd", repo, worked, "a"))
    wait_for_end(db, "a")
    hook(event("SessionStart", repo, transcript, "live", source="startup"))
    printed = subprocess.run([str(CTXDB), "context", "--as-new-session", "--client", client],
                             cwd=repo, capture_output=True, text=True, env=hook.env())
    assert printed.returncode == 0, printed.stderr
    received = hook(event("SessionStart", repo, None, "b", source="startup"), client=client)
    assert printed.stdout == f"{received}\n"
    assert RESUME_TITLE in printed.stdout and SIBLINGS_TITLE in printed.stdout
    as_json = subprocess.run([str(CTXDB), "context", "--as-new-session", "--format", "json"],
                             cwd=repo, capture_output=True, text=True, env=hook.env())
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout)
    assert payload["handoff"]["working_set"]["made_after"] == "end"


@pytest.mark.parametrize(("args", "complaint"), [
    (["--as-new-session", "--client", "vim"], "--client"),
    (["--client", "codex"], "--client needs --as-new-session"),
    (["--as-new-session", "--budget-tokens", "50"], "--as-new-session takes neither"),
    (["--as-new-session", "--instance", "inst_x"], "--as-new-session takes neither"),
])
def test_as_new_session_usage_errors(hook: Hook, repo: Path, args: list[str],
                                     complaint: str) -> None:
    done = subprocess.run([str(CTXDB), "context", *args], cwd=repo, capture_output=True,
                          text=True, env=hook.env())
    assert done.returncode == 2 and complaint in done.stderr and done.stdout == ""


def test_as_new_session_outside_any_project(hook: Hook, tmp_path: Path) -> None:
    done = subprocess.run([str(CTXDB), "context", "--as-new-session"], cwd=tmp_path,
                          capture_output=True, text=True, env=hook.env())
    assert done.returncode == 3 and "no project for the repository" in done.stderr


def _handoffs(db: Ctxdb, project_id: str) -> list[dict[str, Any]]:
    from ctxdb.service.common import decode_all

    return decode_all(raw(db, "SELECT handoff_id, instance_id, kind, summary, next_steps, "
                              "working_set FROM handoffs WHERE project_id = :p "
                              "ORDER BY handoff_id", p=project_id))


@pytest.mark.parametrize(("variable", "value"), [
    ("CTXDB_RESUME_WINDOW", "-1"), ("CTXDB_RESUME_WINDOW", "soon"),
    ("CTXDB_RESUME_SHARE", "0"), ("CTXDB_RESUME_SHARE", "1.5"),
    ("CTXDB_RESUME_SIBLINGS", "perhaps"),
])
def test_bad_resume_settings_name_the_variable(tmp_path: Path, variable: str,
                                               value: str) -> None:
    from ctxdb.errors import ConfigError
    from ctxdb.settings import load_settings

    with pytest.raises(ConfigError, match=variable):
        load_settings(env={"HOME": str(tmp_path), variable: value})
    defaults = load_settings(env={"HOME": str(tmp_path)})
    assert (defaults.resume_window, defaults.resume_siblings, defaults.resume_share) == \
        (3 * 24 * 3600, True, 0.4)


def test_a_silent_session_is_not_named_a_live_sibling(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path
) -> None:
    hook(event("SessionStart", repo, transcript, "gone", source="startup"))
    hook(event("PreCompact", repo, transcript, "gone", trigger="auto"))
    project_id = project_of(db, repo)
    backdate_heartbeat(db, instance(db, "gone")["instance_id"])
    # Its PreCompact handoff is newer than its last heartbeat: nothing to settle, and still
    # it is not live any more.
    assert db.continuity.siblings(project_id) == []
    assert SIBLINGS_TITLE not in db.continuity.new_session(project_id, "codex")["text"]


@pytest.mark.parametrize("max_chars", [100, 200, 250, 400, 1_000])
def test_the_siblings_block_stays_within_its_room_and_counts_the_rest(max_chars: int) -> None:
    from ctxdb.domain.resume import siblings_text as render

    siblings = [{**_sibling(), "session_id": f"s{n}"} for n in range(5)]
    text, named = render(siblings, max_chars)
    assert len(text) <= max_chars
    assert named == sum(f"session s{n} " in text for n in range(5))
    if 0 < named < 5:
        assert f"- … {5 - named} more" in text
    assert (text == "") == (named == 0)


def test_a_handoff_without_a_transcript_needs_a_summary_to_be_offered() -> None:
    from ctxdb.domain.resume import has_substance

    by_hand = {"kind": "clear", "summary": "switched the exporter to streaming",
               "next_steps": [], "working_set": {"files": ["export.py"]}}
    from_blind_transcript = {"kind": "end", "summary": "# Handoff\n(end: the transcript could "
                             "not be read: no transcript was given)", "next_steps": [],
                             "working_set": {"trigger": None, "made_after": "end"}}
    assert has_substance(by_hand) and not has_substance(from_blind_transcript)
    assert not has_substance({**by_hand, "summary": "  "})
    assert has_substance({**from_blind_transcript, "next_steps": ["resume the export"]})


def test_a_killed_session_is_resumed_once_the_stale_limit_has_passed(
    hook: Hook, db: Ctxdb, repo: Path, worked: Path
) -> None:
    import time

    work(hook, repo, worked, "a")  # then killed: no SessionEnd, no PreCompact
    time.sleep(1.5)
    # B's process runs with a stale limit of one second, which A's silence has passed.
    done = subprocess.run(
        [str(CTXDB), "hook", "--client", "gemini"], capture_output=True, text=True,
        input=json.dumps(event("SessionStart", repo, None, "b", source="startup")),
        env={**hook.env(), "CTXDB_STALE_AFTER": "1"}, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    text = json.loads(done.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "made from its transcript after the session crashed" in text
    assert_resumes_a(text)
    assert instance(db, "a")["status"] == "crashed"
