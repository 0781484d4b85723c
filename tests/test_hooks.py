"""``ctxdb hook`` as the clients run it: a subprocess fed one JSON event on stdin.

Each test runs the installed console script (next to ``sys.executable``) against the test's
database (``CTXDB_URL``), in a temporary git repository, with ``transcript_path`` pointing at
a temporary copy of a real fixture transcript. Checked every time: exit status 0, stdout
empty or exactly one JSON object, the injected string under the clients' cap; then the
database effects through the service layer.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ctxdb.domain.render import CLIENT_LIMIT_CHARS
from ctxdb.repo_identity import repo_identity
from ctxdb.service import Ctxdb
from ctxdb.settings import CONFIG_ENV, SETTINGS_HELP, Settings

FIXTURES = Path(__file__).parent / "fixtures" / "claude-code"
SPOTTER_ID = "4d5611e5-241a-462a-8d15-5122611a9569"
CTXDB = Path(sys.executable).with_name("ctxdb")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                           *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def shop_repository(path: Path, origin: str | None = "git@example.com:Acme/Shop.git") -> Path:
    """A git repository at ``path`` on branch main with one commit (and ``origin``)."""
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "commit", "-q", "--allow-empty", "-m", "root")
    if origin is not None:
        git(path, "remote", "add", "origin", origin)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return shop_repository(tmp_path / "shop")


@pytest.fixture
def transcript(tmp_path: Path) -> Path:
    """A copy of the tool-heavy session: a latest request about xterm.js, 27,666 tokens."""
    copy = tmp_path / "transcripts" / "session.jsonl"
    copy.parent.mkdir()
    shutil.copy(FIXTURES / "spotter" / "tool_heavy.jsonl", copy)
    return copy


@dataclass
class Hook:
    url: str
    log: Path
    home: Path

    def env(self, url: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in {s.env_var for s in SETTINGS_HELP} | {CONFIG_ENV}}
        return {**env, "CTXDB_URL": url or self.url, "CTXDB_HOOK_LOG": str(self.log),
                "HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / "config"),
                "CTXDB_ACTOR": "user:test"}

    def raw(self, stdin: str, *args: str, client: str = "claude-code",
            url: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(CTXDB), "hook", "--client", client, *args], input=stdin,
                              capture_output=True, text=True, env=self.env(url), timeout=60)

    def __call__(self, payload: dict[str, Any], *args: str, client: str = "claude-code",
                 url: str | None = None) -> str | None:
        """Run the hook; check the contract; return the injected text (None: no output)."""
        done = self.raw(json.dumps(payload), *args, client=client, url=url)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        if not done.stdout:
            return None
        output = json.loads(done.stdout)  # exactly one JSON object, nothing else
        assert list(output) == ["hookSpecificOutput"]
        specific = output["hookSpecificOutput"]
        assert specific["hookEventName"] == payload["hook_event_name"]
        text: str = specific["additionalContext"]
        assert 0 < len(text) < CLIENT_LIMIT_CHARS
        return text

    def logged(self) -> str:
        return self.log.read_text(encoding="utf-8") if self.log.exists() else ""


@pytest.fixture
def hook(settings: Settings, tmp_path: Path) -> Hook:
    return Hook(settings.url, tmp_path / "state" / "hook.log", tmp_path / "home")


@pytest.fixture
def gemini_transcript(tmp_path: Path) -> Path:
    """A copy of the real Gemini CLI transcript (tests/fixtures/gemini)."""
    source = next((Path(__file__).parent / "fixtures" / "gemini").glob("session-*.jsonl"))
    folder = tmp_path / "gemini-chats"
    folder.mkdir()
    return Path(shutil.copy(source, folder / source.name))


def event(name: str, repo: Path, transcript: Path | None, session_id: str = "sess-1",
          **fields: Any) -> dict[str, Any]:
    return {"session_id": session_id, "transcript_path": str(transcript) if transcript else None,
            "cwd": str(repo), "hook_event_name": name, **fields}


def project_of(db: Ctxdb, repo: Path) -> str:
    return str(db.sessions.resolve_project(repo_identity(str(repo)))["project_id"])


def instance(db: Ctxdb, session_id: str = "sess-1", client: str = "claude-code") -> Any:
    from ctxdb.domain.agents import AgentSession

    return db.sessions.instance_of(AgentSession(client, session_id))


def wait_for_end(db: Ctxdb, session_id: str = "sess-1", client: str = "claude-code",
                 within: float = 60.0) -> dict[str, Any]:
    """The session's instance once its SessionEnd has landed: completed, and given the
    handoff it needed. On a loaded machine that work may go on after the hook has exited
    (hooks.detached), as a client's next session would also start later; so a test waits
    for it before starting the next, for ``within`` seconds at most."""
    from ctxdb.service.usecases.continuity import sessions_needing_handoff

    give_up = time.monotonic() + within
    while True:
        row = instance(db, session_id, client)
        if row is not None and row["status"] == "completed":
            project_id = row["project_id"]
            needing = db.storage.read(lambda tx, project_id=project_id: sessions_needing_handoff(
                tx, db.settings, project_id))
            if all(other["instance_id"] != row["instance_id"] for other in needing):
                return dict(row)
        assert time.monotonic() < give_up, (
            f"the end of {client} session {session_id} did not land within {within:g} s: {row}")
        time.sleep(0.05)


# --- each event -------------------------------------------------------------------------------


def test_session_start_startup_registers_and_injects_the_pack(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path
) -> None:
    project_id = project_of(db, repo)
    db.context.store(project_id, {"rule": "amounts are integer cents"}, "CRITICAL")
    text = hook(event("SessionStart", repo, transcript, source="startup"))
    assert text is not None and "amounts are integer cents" in text
    registered = instance(db)
    assert registered["project_id"] == project_id and registered["status"] == "active"
    assert registered["worktree"] == str(repo.resolve()) and registered["branch"] == "main"
    [injection] = db.sessions.injections(registered["instance_id"])
    assert injection["text"] == text and injection["source"] == "startup"
    assert hook.logged() == ""


def test_a_worktree_of_the_repository_is_the_same_project(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path, tmp_path: Path
) -> None:
    worktree = tmp_path / "shop-feature"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(worktree))
    hook(event("SessionStart", repo, transcript, "a", source="startup"))
    hook(event("SessionStart", worktree, transcript, "b", source="startup"))
    first, second = instance(db, "a"), instance(db, "b")
    assert first["project_id"] == second["project_id"]
    assert second["branch"] == "feature" and len(db.projects.list()) == 1


def test_session_start_resume_injects_only_new_items(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path
) -> None:
    project_id = project_of(db, repo)
    db.context.store(project_id, "known at startup", "HIGH")
    assert "known at startup" in (hook(event("SessionStart", repo, transcript,
                                             source="startup")) or "")
    db.context.store(project_id, "added later", "HIGH")
    text = hook(event("SessionStart", repo, transcript, source="resume",
                      context_tokens=50_000))
    assert text is not None and "added later" in text and "known at startup" not in text
    assert hook(event("SessionStart", repo, transcript, source="resume")) is None
    assert instance(db)["current_token_usage"] == 50_000


def test_session_start_clear_brings_the_previous_sessions_handoff(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path
) -> None:
    hook(event("SessionStart", repo, transcript, "before", source="startup"))
    hook(event("SessionEnd", repo, transcript, "before", reason="clear"))
    text = hook(event("SessionStart", repo, None, "after", source="clear"))
    assert text is not None and text.startswith("# Handoff") and "xterm.js" in text
    assert instance(db, "after")["generation"] == instance(db, "before")["generation"] + 1


@pytest.mark.parametrize("trigger", ["manual", "auto"])
def test_precompact_saves_the_handoff_and_prints_nothing(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path, trigger: str
) -> None:
    hook(event("SessionStart", repo, transcript, source="startup"))
    assert hook(event("PreCompact", repo, transcript, trigger=trigger,
                      custom_instructions=None)) is None
    handoff = db.tokens.latest_handoff(instance_id=instance(db)["instance_id"])
    assert handoff is not None and handoff["kind"] == "compact"
    assert "xterm.js" in handoff["summary"] and handoff["working_set"]["trigger"] == trigger
    assert handoff["working_set"]["custom_instructions"] is None
    assert hook.logged() == ""


def test_user_prompt_submit_updates_usage_and_prints_nothing(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path
) -> None:
    payload = event("UserPromptSubmit", repo, transcript, prompt="go on")
    assert hook(payload) is None  # registers the session on the way (installed mid-session)
    assert instance(db)["current_token_usage"] == 27_666
    assert hook(payload) is None
    assert hook.logged() == ""


def test_stop_and_subagent_stop_ingest_the_transcript_incrementally(
    hook: Hook, db: Ctxdb, repo: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "big"
    shutil.copytree(FIXTURES / "spotter", folder)
    main = folder / f"{SPOTTER_ID}.jsonl"
    hook(event("SessionStart", repo, main, SPOTTER_ID, source="startup"))
    assert hook(event("Stop", repo, main, SPOTTER_ID, last_assistant_message="done",
                      stop_hook_active=False)) is None
    usage = db.transcripts.usage(SPOTTER_ID)
    assert usage["totals"]["responses"] == 139 + 12 + 1  # main chain and both subagents
    assert db.transcripts.get(main)["byte_offset"] == main.stat().st_size
    assert hook(event("SubagentStop", repo, main, SPOTTER_ID)) is None
    assert db.transcripts.usage(SPOTTER_ID)["totals"] == usage["totals"]  # nothing new
    [boundary] = db.transcripts.compactions(SPOTTER_ID)
    assert boundary["pre_tokens"] == 170_251 and boundary["trigger_type"] == "auto"
    assert instance(db, SPOTTER_ID)["current_token_usage"] == 106_060


def test_post_compact_stores_the_summary(
    hook: Hook, db: Ctxdb, repo: Path, tmp_path: Path
) -> None:
    main = tmp_path / f"{SPOTTER_ID}.jsonl"
    shutil.copy(FIXTURES / "spotter" / main.name, main)
    hook(event("SessionStart", repo, main, SPOTTER_ID, source="startup"))
    hook(event("PostCompact", repo, main, SPOTTER_ID, compact_summary="the summary"))
    [boundary] = db.transcripts.compactions(SPOTTER_ID)
    # Ingestion already took the summary from the transcript's isCompactSummary record.
    assert boundary["summary"].startswith("This session is being continued")
    assert hook.logged() == ""


def test_session_end_marks_the_instance_completed(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path
) -> None:
    hook(event("SessionStart", repo, transcript, source="startup"))
    started = time.perf_counter()
    assert hook(event("SessionEnd", repo, transcript, reason="logout")) is None
    assert time.perf_counter() - started < 1.5
    assert wait_for_end(db)["status"] == "completed"


def test_unknown_events_are_ignored_silently(hook: Hook, db: Ctxdb, repo: Path) -> None:
    assert hook(event("Notification", repo, None, message="hi")) is None
    assert hook(event("PreToolUse", repo, None, tool_name="Bash")) is None
    assert db.projects.list() == [] and hook.logged() == ""


@pytest.mark.parametrize("stdin", ["", "not json", "[1, 2]", '{"session_id": "x"}',
                                   '{"hook_event_name": "SessionStart"}', "\udcff"])
def test_malformed_input_exits_0_prints_nothing_and_is_logged(
    hook: Hook, db: Ctxdb, stdin: str
) -> None:
    done = hook.raw(stdin.encode("utf-8", "surrogateescape").decode("latin-1"))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert "bad input" in hook.logged() and "Traceback" in hook.logged()
    assert db.projects.list() == []


def test_a_broken_database_url_exits_0_and_is_logged(
    hook: Hook, repo: Path, transcript: Path, tmp_path: Path
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("x")
    payload = json.dumps(event("SessionStart", repo, transcript, source="startup"))
    done = hook.raw(payload, url=str(not_a_directory / "ctxdb.db"))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert "DatabaseUnavailableError" in hook.logged()


def test_an_unreachable_database_is_cut_off_by_the_deadline(
    hook: Hook, repo: Path, transcript: Path
) -> None:
    payload = json.dumps(event("SessionStart", repo, transcript, source="startup"))
    # A server that never answers (a listener that never accepts): the hook waits for it at
    # least 0.2 s, so a deadline of 0.1 s runs out first. (A refused connection fails at once
    # instead: tests/test_postgres_faults.py.)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"postgresql://nobody@127.0.0.1:{silent.getsockname()[1]}/none"
        started = time.perf_counter()
        done = hook.raw(payload, "--deadline", "0.1", url=url)
    assert time.perf_counter() - started < 5
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert "deadline of 0.1 s exceeded while " in hook.logged()


def test_gemini_and_codex_events(hook: Hook, db: Ctxdb, repo: Path, transcript: Path,
                                 gemini_transcript: Path) -> None:
    project_id = project_of(db, repo)
    db.context.store(project_id, "shared by every client", "CRITICAL")
    for client, path in (("gemini", gemini_transcript), ("codex", transcript)):
        text = hook(event("SessionStart", repo, path, f"{client}-1", source="startup"),
                    client=client)
        assert text is not None and "shared by every client" in text
    assert hook(event("BeforeAgent", repo, gemini_transcript, "gemini-1", prompt="hi"),
                client="gemini") is None
    assert instance(db, "gemini-1", "gemini")["current_token_usage"] == 3_666
    assert hook(event("PreCompress", repo, gemini_transcript, "gemini-1", trigger="manual"),
                client="gemini") is None
    gemini = instance(db, "gemini-1", "gemini")
    saved = db.tokens.latest_handoff(instance_id=gemini["instance_id"])
    assert saved is not None and "PROMPT-C carry on" in saved["summary"]
    assert hook(event("SessionEnd", repo, gemini_transcript, "gemini-1"),
                client="gemini") is None
    assert wait_for_end(db, "gemini-1", "gemini")["status"] == "completed"
    assert instance(db, "codex-1", "codex")["status"] == "active"


def test_gemini_is_given_the_context_again_on_resume(
    hook: Hook, db: Ctxdb, repo: Path, gemini_transcript: Path
) -> None:
    """Gemini CLI drops the injected <hook_context> message from a resumed history: every
    packed item comes again on SessionStart(resume), not only the new ones."""
    db.context.store(project_of(db, repo), "amounts are integer cents", "CRITICAL")
    for source in ("startup", "resume", "resume"):
        text = hook(event("SessionStart", repo, gemini_transcript, "g", source=source),
                    client="gemini")
        assert text is not None and "amounts are integer cents" in text, source


def test_gemini_turns_without_compression_store_no_handoff(
    hook: Hook, db: Ctxdb, repo: Path, gemini_transcript: Path
) -> None:
    """Gemini CLI fires PreCompress (trigger auto) on every turn, before it decides whether to
    compress: ten such turns store nothing; a manual /compress does."""
    hook(event("SessionStart", repo, gemini_transcript, "g", source="startup"), client="gemini")
    for _ in range(10):
        hook(event("BeforeAgent", repo, gemini_transcript, "g", prompt="go"), client="gemini")
        assert hook(event("PreCompress", repo, gemini_transcript, "g", trigger="auto"),
                    client="gemini") is None
        hook(event("AfterAgent", repo, gemini_transcript, "g"), client="gemini")
    instance_id = instance(db, "g", "gemini")["instance_id"]
    assert db.tokens.latest_handoff(instance_id=instance_id) is None
    hook(event("PreCompress", repo, gemini_transcript, "g", trigger="manual"), client="gemini")
    assert db.tokens.latest_handoff(instance_id=instance_id) is not None


def test_ctxdb_context_prints_what_the_hook_injected(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path, tmp_path: Path
) -> None:
    outside = subprocess.run([str(CTXDB), "context"], cwd=tmp_path, capture_output=True,
                             text=True, env=hook.env())
    assert outside.returncode == 3 and "no project for the repository" in outside.stderr
    project_id = project_of(db, repo)
    db.context.store(project_id, {"rule": "amounts are integer cents"}, "CRITICAL")
    db.context.store(project_id, "payments go through Stripe", "HIGH")
    injected = hook(event("SessionStart", repo, transcript, source="startup"))
    printed = subprocess.run([str(CTXDB), "context"], cwd=repo, capture_output=True,
                             text=True, env=hook.env())
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == f"{injected}\n"  # the project came from the repository
    hook(event("PreCompact", repo, transcript, trigger="manual", custom_instructions="tests"))
    reload = hook(event("SessionStart", repo, transcript, source="compact"))
    with_handoff = subprocess.run(
        [str(CTXDB), "context", "--instance", instance(db)["instance_id"]], cwd=repo,
        capture_output=True, text=True, env=hook.env())
    assert with_handoff.stdout == f"{reload}\n"


def test_the_reload_hook_names_critical_items_over_the_budget(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path
) -> None:
    """CRITICAL items over the reload budget (50,000 of a 200,000-token window): SessionStart
    after a compaction exits 0, injects the handoff and the CRITICAL items that fit, names the
    rest under the cap; `ctxdb context` prints the same text, its JSON names every one."""
    project_id = project_of(db, repo)
    rules = [db.context.store(project_id, f"CRITICAL rule {n}: " + "keep this " * 40,
                              "CRITICAL", token_count=10_000)["item_id"] for n in range(8)]
    hook(event("SessionStart", repo, transcript, source="startup"))
    hook(event("PreCompact", repo, transcript, trigger="auto", custom_instructions=None))
    reload = hook(event("SessionStart", repo, transcript, source="compact"))
    assert reload is not None and reload.startswith("# Handoff") and "xterm.js" in reload
    assert all(f"CRITICAL rule {n}: " in reload for n in range(5))
    assert "CRITICAL rule 5: " not in reload
    assert "3 item(s) over the reload budget, not loaded: " + "; ".join(
        f"#{rules[n]} (code, 10000 tokens)" for n in (5, 6, 7)) in reload
    assert "`ctxdb context get ITEM_ID`" in reload
    current = instance(db)
    assert current["generation"] == 1
    assert db.sessions.injections(current["instance_id"])[-1]["item_ids"] == rules[:5]
    printed = subprocess.run(
        [str(CTXDB), "context", "--instance", current["instance_id"]], cwd=repo,
        capture_output=True, text=True, env=hook.env())
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == f"{reload}\n"
    as_json = subprocess.run([str(CTXDB), "context", "--format", "json"], cwd=repo,
                             capture_output=True, text=True, env=hook.env())
    payload = json.loads(as_json.stdout)
    assert [entry["item_id"] for entry in payload["critical_omitted"]] == rules[5:]
    assert [entry["reason"] for entry in payload["manifest"]["omitted"]] == [
        "critical_over_budget"] * 3
    strict = subprocess.run([str(CTXDB), "context", "pack", "--project", project_id], cwd=repo,
                            capture_output=True, text=True, env=hook.env())
    assert strict.returncode == 5 and "over the budget of 50000" in strict.stderr
    assert hook.logged() == ""


# --- a whole session ---------------------------------------------------------------------------


def test_a_full_session_reloads_the_handoff_and_every_critical_item(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path
) -> None:
    project_id = project_of(db, repo)
    rules = [f"CRITICAL rule {n}: " + "keep this " * 40 for n in range(8)]
    for rule in rules:
        db.context.store(project_id, rule, "CRITICAL")
    for n in range(40):
        db.context.store(project_id, f"background note {n} " + "detail " * 30, "LOW")
    startup = hook(event("SessionStart", repo, transcript, source="startup"))
    assert startup is not None and all(rule[:20] in startup for rule in rules)
    for prompt in ("fix the scrolling", "and the tests"):
        assert hook(event("UserPromptSubmit", repo, transcript, prompt=prompt)) is None
    assert hook(event("PreCompact", repo, transcript, trigger="auto",
                      custom_instructions=None)) is None
    reload = hook(event("SessionStart", repo, transcript, source="compact"))
    assert reload is not None and reload.startswith("# Handoff")
    assert "xterm.js" in reload  # the user's latest request, from the transcript
    assert all(rule[:20] in reload for rule in rules)
    assert reload.index("xterm.js") < reload.index(rules[0][:20])
    assert hook(event("SessionEnd", repo, transcript, reason="prompt_input_exit")) is None
    ended = wait_for_end(db)
    assert ended["status"] == "completed" and ended["generation"] == 1
    injections = db.sessions.injections(ended["instance_id"])
    assert [i["source"] for i in injections] == ["startup", "compact"]
    assert injections[1]["handoff_id"] is not None and injections[1]["generation"] == 1
    assert hook.logged() == ""


# --- hostile input and environments: exit 0, valid output, bounded time -----------------------


def run_bytes(hook: Hook, payload: str, *args: str, client: str = "claude-code",
              **env: str) -> subprocess.CompletedProcess[bytes]:
    """The hook with ``env`` added to its environment; stdout and stderr as bytes."""
    return subprocess.run([str(CTXDB), "hook", "--client", client, *args],
                          input=payload.encode("utf-8"), capture_output=True,
                          env={**hook.env(), **env}, timeout=60)


@pytest.mark.parametrize("name", ["SessionStart", "UserPromptSubmit", "SessionEnd"])
def test_a_session_id_with_a_lone_surrogate_is_logged_and_exits_0(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path, name: str
) -> None:
    payload = json.dumps(event(name, repo, transcript, "a\ud800b", source="startup"))
    assert "\\ud800" in payload  # JSON's escape: the parsed session id holds the surrogate
    done = hook.raw(payload)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert "session_id contains a lone surrogate character" in hook.logged()
    assert "a\\ud800b" in hook.logged()
    assert db.projects.list() == []  # refused before anything was written


@pytest.mark.parametrize("env", [
    {"PYTHONIOENCODING": "latin-1"},
    {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
     "PYTHONIOENCODING": ""},
], ids=["latin-1", "C-locale"])
def test_the_injected_text_reaches_the_client_whatever_the_stdout_encoding(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path, env: dict[str, str]
) -> None:
    rule = "金额 are integer cents — never floats ✓"
    db.context.store(project_of(db, repo), rule, "CRITICAL")
    done = run_bytes(hook, json.dumps(event("SessionStart", repo, transcript,
                                            source="startup")), **env)
    assert (done.returncode, done.stderr) == (0, b""), hook.logged()
    output = json.loads(done.stdout.decode("ascii"))  # plain ASCII: any encoding reads it
    assert rule in output["hookSpecificOutput"]["additionalContext"]
    assert hook.logged() == ""


def test_a_hook_whose_stdin_is_never_closed_still_exits_within_its_deadline(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path
) -> None:
    process = subprocess.Popen([str(CTXDB), "hook", "--client", "claude-code", "--deadline",
                                "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=hook.env())
    assert process.stdin is not None
    process.stdin.write(b'{"session_id": "sess-1", "hook_event_name": "SessionE')
    process.stdin.flush()  # half an event, and the client never closes the pipe
    started = time.perf_counter()
    try:
        assert process.wait(timeout=10) == 0
        assert time.perf_counter() - started < 5
        assert process.communicate() == (b"", b"")
    finally:
        process.kill()
    assert "stdin was not closed within 1 s" in hook.logged()


def test_a_complete_event_on_a_stdin_left_open_is_handled(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path
) -> None:
    db.context.store(project_of(db, repo), "amounts are integer cents", "CRITICAL")
    process = subprocess.Popen([str(CTXDB), "hook", "--client", "claude-code"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=hook.env())
    assert process.stdin is not None
    process.stdin.write(json.dumps(event("SessionStart", repo, transcript,
                                         source="startup")).encode())
    process.stdin.flush()
    try:
        assert process.wait(timeout=20) == 0
        stdout, stderr = process.communicate()
    finally:
        process.kill()
    assert stderr == b""
    assert "amounts are integer cents" in json.loads(stdout)["hookSpecificOutput"][
        "additionalContext"]
    assert instance(db)["status"] == "active"


# Every event that reads the transcript, in each client's vocabulary.
TRANSCRIPT_EVENTS = {
    "claude-code": [("UserPromptSubmit", {"prompt": "hi"}), ("PreCompact", {"trigger": "auto"}),
                    ("Stop", {}), ("PostCompact", {}), ("SubagentStop", {}),
                    ("SessionStart", {"source": "compact"})],
    "codex": [("UserPromptSubmit", {"prompt": "hi"}), ("PreCompact", {"trigger": "auto"}),
              ("Stop", {}), ("SessionStart", {"source": "compact"})],
    "gemini": [("BeforeAgent", {"prompt": "hi"}), ("PreCompress", {"trigger": "auto"}),
               ("AfterAgent", {}), ("SessionStart", {"source": "compact"})],
}


# Runs a command and writes its peak memory (KiB) to a file: the peak of this one process's
# children, not of every process the test run ever waited for (a browser, a real client).
PEAK_RSS = ("import resource, subprocess, sys\n"
            "done = subprocess.run(sys.argv[2:])\n"
            "with open(sys.argv[1], 'w') as out:\n"
            "    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
            "sys.exit(done.returncode)\n")


@pytest.mark.parametrize("client", sorted(TRANSCRIPT_EVENTS))
@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "huge"])
def test_a_transcript_path_that_is_no_transcript_file_is_read_boundedly(
    hook: Hook, db: Ctxdb, repo: Path, tmp_path: Path, client: str, kind: str
) -> None:
    if kind == "dev-zero":
        path = Path("/dev/zero")
    elif kind == "fifo":
        path = tmp_path / "fifo.jsonl"
        os.mkfifo(path)  # nobody writes: opening it for reading would block forever
    else:
        path = tmp_path / "huge.jsonl"
        with path.open("wb") as handle:
            handle.truncate(768 * 1024 * 1024)  # sparse: 768 MB of NUL bytes, no newline
    hook(event("SessionStart", repo, None, "s", source="startup"), client=client)
    peak = tmp_path / "peak-rss"
    for name, fields in TRANSCRIPT_EVENTS[client]:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, str(peak), str(CTXDB), "hook", "--client", client],
            input=json.dumps(event(name, repo, path, "s", **fields)), capture_output=True,
            text=True, env=hook.env(None), timeout=60)
        assert time.perf_counter() - started < 8, (name, hook.logged())
        assert (done.returncode, done.stderr) == (0, ""), name
        assert "deadline" not in hook.logged(), name
        # Read with a byte limit: the hook process came nowhere near holding the file.
        assert int(peak.read_text()) < 300 * 1024, name  # KiB
    handoff = db.tokens.latest_handoff(instance_id=instance(db, "s", client)["instance_id"])
    assert handoff is not None and handoff["kind"] == "compact"


def test_a_poisoned_transcript_never_stops_stop_or_precompact(
    hook: Hook, db: Ctxdb, repo: Path, tmp_path: Path
) -> None:
    from test_ingest import POISON, prompt, response

    path = tmp_path / "poisoned.jsonl"
    path.write_bytes(prompt("first request") + response(1)
                     + b"".join(line for line, _, _ in POISON.values()) + response(2))
    hook(event("SessionStart", repo, path, "poisoned", source="startup"))
    assert hook(event("Stop", repo, path, "poisoned")) is None
    with path.open("ab") as handle:
        handle.write(prompt("the latest request") + response(3))
    assert hook(event("Stop", repo, path, "poisoned")) is None
    assert hook(event("UserPromptSubmit", repo, path, "poisoned", prompt="go on")) is None
    ids = {row["message_id"] for row in db.transcripts.usage("poisoned")["responses"]}
    assert {"msg_1", "msg_2", "msg_3"} <= ids
    assert db.transcripts.get(path)["byte_offset"] == path.stat().st_size
    assert hook(event("PreCompact", repo, path, "poisoned", trigger="auto")) is None
    handoff = db.tokens.latest_handoff(instance_id=instance(db, "poisoned")["instance_id"])
    assert handoff is not None and "the latest request" in handoff["summary"]
    assert hook.logged() == ""


@pytest.mark.parametrize(("raw", "limit"), [
    ('{"hook_event_name": "Stop", "x": ' + "[" * 5_000 + "]" * 5_000 + "}",
     "hook input is nested deeper than the limit of 100 levels"),
    ('{"hook_event_name": "Stop", "x": ' + "1" * 5_000 + "}",
     "hook input has an integer of 5000 digits, over the limit of 4300 digits"),
])
def test_hook_input_over_a_json_limit_is_a_typed_error(raw: str, limit: str) -> None:
    from ctxdb.domain.hook_events import parse_event
    from ctxdb.errors import ValidationError

    with pytest.raises(ValidationError) as refused:
        parse_event("claude-code", raw)
    assert refused.value.message == limit
