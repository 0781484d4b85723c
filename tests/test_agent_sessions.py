"""The agent-session service behind the agent-client hooks, on both backends.

Each test drives the service as the hooks do (``AgentSession`` + ``RepoIdentity``) and checks
what was stored: instances, generations, handoffs, and the recorded injections.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ctxdb.domain.agents import AgentSession, RepoIdentity
from ctxdb.domain.render import MAX_INJECTION_CHARS
from ctxdb.errors import InstanceNotFoundError, ValidationError
from ctxdb.service import Ctxdb
from ctxdb.service.usecases.session_start import new_instance, register
from ctxdb.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "claude-code"
TOOL_HEAVY = FIXTURES / "spotter" / "tool_heavy.jsonl"
REPO = RepoIdentity("git:example.com/acme/shop@0123456789ab", "shop", "/src/shop", "main")


@pytest.fixture
def transcript(tmp_path: Path) -> str:
    copy = tmp_path / "session.jsonl"
    shutil.copy(TOOL_HEAVY, copy)
    return str(copy)


def session(transcript: str | None = None, session_id: str = "s-1") -> AgentSession:
    return AgentSession("claude-code", session_id, transcript, "/src/shop")


def store(db: Ctxdb, project_id: str, content: Any, priority: str) -> int:
    return int(db.context.store(project_id, content, priority)["item_id"])


def test_one_project_per_repository_key(db: Ctxdb) -> None:
    first = db.sessions.resolve_project(REPO)
    other_worktree = RepoIdentity(REPO.repo_key, "shop", "/src/shop-feature", "feature")
    assert db.sessions.resolve_project(other_worktree)["project_id"] == first["project_id"]
    assert first["repo_key"] == REPO.repo_key and first["name"] == "shop"
    assert db.sessions.find_project(REPO.repo_key) == db.projects.get(first["project_id"])
    assert db.sessions.find_project("git:unknown") is None
    assert len(db.projects.list()) == 1
    creations = [row for row in db.audit_log() if row["action"] == "project.create"]
    assert len(creations) == 1


def test_projects_reached_names_the_instance_and_the_repository_projects(db: Ctxdb) -> None:
    assert db.sessions.projects_reached(session(), REPO.repo_key) == (None, None)
    started = db.sessions.start(session(), "startup", REPO)
    project_id = db.sessions.find_project(REPO.repo_key)["project_id"]  # type: ignore[index]
    assert started["project_id"] == project_id
    assert db.sessions.projects_reached(session(), REPO.repo_key) == (project_id, project_id)
    assert db.sessions.projects_reached(session(), None) == (project_id, None)
    other = db.projects.create("other", repo_key="git:other")["project_id"]
    assert db.sessions.projects_reached(session(session_id="s-2"), "git:other") == (None,
                                                                                     other)
    with pytest.raises(ValidationError):
        db.sessions.projects_reached(session(), "")


def test_concurrent_sessions_of_one_repository_create_one_project(
    settings: Settings,
) -> None:
    repo = RepoIdentity("git:race", "race")
    found: list[str] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            with Ctxdb.open(settings) as own:
                found.append(own.sessions.resolve_project(repo)["project_id"])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(found)) == 1 and len(found) == 6


def test_startup_registers_the_instance_and_records_the_injection(
    db: Ctxdb, transcript: str
) -> None:
    project_id = db.sessions.resolve_project(REPO)["project_id"]
    critical = store(db, project_id, {"rule": "amounts in cents"}, "CRITICAL")
    high = store(db, project_id, "payments go through Stripe", "HIGH")
    result = db.sessions.start(session(transcript), "startup", REPO)
    assert result["item_ids"] == [critical, high]
    assert "amounts in cents" in result["text"] and "Stripe" in result["text"]
    instance = db.instances.get(result["instance_id"])
    assert instance["client"] == "claude-code" and instance["session_id"] == "s-1"
    assert instance["worktree"] == "/src/shop" and instance["branch"] == "main"
    assert instance["status"] == "active" and instance["generation"] == 0
    assert instance["metadata"]["transcript_path"] == transcript
    [recorded] = db.sessions.injections(result["instance_id"])
    assert recorded["item_ids"] == [critical, high] and recorded["source"] == "startup"
    assert recorded["text"] == result["text"] and recorded["characters"] == len(result["text"])
    assert recorded["hook_event"] == "SessionStart" and recorded["tokens"] > 0


def test_resume_injects_only_what_changed(db: Ctxdb) -> None:
    first = db.sessions.start(session(), "startup", REPO)
    project_id = first["project_id"]
    assert first["text"] == "" and first["item_ids"] == []
    old = store(db, project_id, "known before", "HIGH")
    db.sessions.start(session(), "resume", REPO, context_tokens=1234)
    new = store(db, project_id, "arrived while away", "HIGH")
    resumed = db.sessions.start(session(), "resume", REPO)
    assert resumed["item_ids"] == [new]
    assert "arrived while away" in resumed["text"] and "known before" not in resumed["text"]
    assert db.sessions.start(session(), "resume", REPO)["text"] == ""
    assert db.instances.get(first["instance_id"])["current_token_usage"] == 1234
    assert old not in resumed["item_ids"]


def test_precompact_saves_a_handoff_and_compact_reloads_it_first(
    db: Ctxdb, transcript: str
) -> None:
    started = db.sessions.start(session(transcript), "startup", REPO)
    critical = store(db, started["project_id"], {"rule": "never push to main"}, "CRITICAL")
    handoff = db.sessions.save_before_compaction(session(transcript), "auto", None)
    assert handoff["kind"] == "compact" and handoff["generation"] == 0
    assert "xterm.js" in handoff["summary"]  # the user's latest request in the fixture
    assert handoff["tokens_before"] == 27_666
    reload = db.sessions.start(session(transcript), "compact", REPO)
    assert reload["handoff_id"] == handoff["handoff_id"] and reload["generation"] == 1
    assert reload["text"].startswith("# Handoff")
    assert reload["text"].index("xterm.js") < reload["text"].index("never push to main")
    assert critical in reload["item_ids"]
    assert db.instances.get(started["instance_id"])["generation"] == 1


def test_compact_without_a_saved_handoff_builds_one_from_the_transcript(
    db: Ctxdb, transcript: str
) -> None:
    db.sessions.start(session(transcript), "startup", REPO)
    reload = db.sessions.start(session(transcript), "compact", REPO)
    assert reload["handoff_id"] is not None and "xterm.js" in reload["text"]


def test_clear_starts_a_new_generation_with_the_previous_sessions_handoff(
    db: Ctxdb, transcript: str
) -> None:
    old = db.sessions.start(session(transcript, "old"), "startup", REPO)
    db.sessions.end(session(transcript, "old"), "clear")
    new = db.sessions.start(session(None, "new"), "clear", REPO)
    assert new["generation"] == old["generation"] + 1 and new["handoff_id"] is not None
    handoff = db.tokens.latest_handoff(instance_id=old["instance_id"])
    assert handoff is not None and handoff["kind"] == "clear"
    assert handoff["handoff_id"] == new["handoff_id"] and "xterm.js" in new["text"]


def test_prompt_heartbeats_and_reads_usage_from_the_transcript(
    db: Ctxdb, transcript: str
) -> None:
    with pytest.raises(InstanceNotFoundError, match="no instance for claude-code session"):
        db.sessions.prompt(session(transcript))
    instance = db.sessions.prompt(session(transcript), REPO)  # registered on the way
    assert instance["current_token_usage"] == 27_666
    small = db.instances.launch(instance["project_id"], instance_id="tiny", context_window=100,
                                client="claude-code", session_id="s-2")
    capped = db.sessions.prompt(session(transcript, "s-2"))
    assert capped["instance_id"] == small["instance_id"]
    assert capped["current_token_usage"] == 100  # capped to the window


def test_end_is_one_write_and_unknown_sessions_are_ignored(db: Ctxdb) -> None:
    started = db.sessions.start(session(), "startup", REPO)
    ended = db.sessions.end(session(), "logout")
    assert ended == {"instance_id": started["instance_id"], "project_id": started["project_id"]}
    assert db.instances.get(started["instance_id"])["status"] == "completed"
    assert db.sessions.end(session(), "logout") is None  # already ended
    assert db.sessions.end(session(None, "never-started")) is None


def test_the_injected_text_stays_under_the_cap(db: Ctxdb) -> None:
    project_id = db.sessions.resolve_project(REPO)["project_id"]
    criticals = [store(db, project_id, f"rule {n}: " + "x" * 600, "CRITICAL")
                 for n in range(30)]
    for n in range(50):
        store(db, project_id, f"note {n}: " + "y" * 300, "HIGH")
    result = db.sessions.start(session(), "startup", REPO)
    assert len(result["text"]) <= MAX_INJECTION_CHARS
    assert result["item_ids"][:30] == criticals  # every CRITICAL item, each shortened
    assert all(f"rule {n}: " in result["text"] for n in range(30))
    assert "more item(s) not shown" in result["text"]


def test_a_reload_names_the_critical_items_over_the_budget(
    db: Ctxdb, transcript: str
) -> None:
    """CRITICAL items over the reload budget (a quarter of the 200,000-token window): the
    SessionStart reload after a compaction still succeeds, injects those that fit and names
    the others, within the clients' cap, and the next reloads do the same."""
    started = db.sessions.start(session(transcript), "startup", REPO)
    project_id = started["project_id"]
    criticals = [int(db.context.store(project_id, f"rule {n}: " + "x" * 600, "CRITICAL",
                                      token_count=2_000)["item_id"]) for n in range(60)]
    store(db, project_id, "a HIGH note", "HIGH")
    fits, left_out = criticals[:25], criticals[25:]  # 25 × 2,000 = 50,000 tokens
    for generation in (1, 2, 3):
        db.sessions.save_before_compaction(session(transcript), "auto", None)
        reload = db.sessions.start(session(transcript), "compact", REPO)
        text = reload["text"]
        assert reload["generation"] == generation and len(text) <= MAX_INJECTION_CHARS
        assert text.startswith("# Handoff") and "xterm.js" in text
        assert reload["item_ids"] == fits and "a HIGH note" not in text
        assert "35 item(s) over the reload budget, not loaded" in text
        assert all(f"#{item_id} (code, 2000 tokens)" in text for item_id in left_out[:20])
        assert f"#{left_out[20]} (" not in text
        assert "… and 15 more (`ctxdb context --format json` names them all)" in text
        assert "`ctxdb context get ITEM_ID`" in text
    startup = db.sessions.start(session(None, "s-2"), "startup", REPO)
    assert startup["item_ids"] == fits and len(startup["text"]) <= MAX_INJECTION_CHARS
    assert f"#{left_out[0]} (code, 2000 tokens)" in startup["text"]


@pytest.mark.parametrize(("make", "message"), [
    (lambda: AgentSession("vim", "s"), "unknown client 'vim'"),
    (lambda: AgentSession("codex", ""), "session_id must not be empty"),
    (lambda: AgentSession("codex", "s\x00"), "session_id contains a NUL byte"),
])
def test_bad_sessions_are_refused_and_change_nothing(db: Ctxdb, make: Any,
                                                     message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        db.sessions.start(make(), "startup", REPO)
    assert db.projects.list() == []


def test_a_bad_source_is_refused(db: Ctxdb) -> None:
    with pytest.raises(ValidationError, match="unknown session source 'reboot'"):
        db.sessions.start(session(), "reboot", REPO)
    assert db.projects.list() == []


def test_a_new_sessions_instance_is_the_row_its_deferred_insert_writes(db: Ctxdb) -> None:
    """A new session's insert is deferred (session_start.register): the row the start goes
    on with is built (new_instance), not read back, and must be the one stored, less the
    clock's columns."""
    project_id = db.sessions.resolve_project(REPO)["project_id"]
    project = db.projects.get(project_id)
    fields = db.instances.validated_fields(project_id, instance_id="claude-code-s-9",
                                           client="claude-code", session_id="s-9",
                                           metadata={"cwd": "/src/shop"})
    built: list[dict[str, Any]] = []

    def unit(tx: Any) -> None:
        built.append(new_instance(fields, project))
        register(tx, fields, "user:test")

    db.storage.write(unit)
    stored = db.instances.get("claude-code-s-9")
    assert {name: stored[name] for name in built[0]} == built[0]
    assert set(stored) - set(built[0]) == {"started_at", "last_heartbeat"}


def test_a_starts_audit_rows_are_the_same_on_both_backends(db: Ctxdb) -> None:
    """On PostgreSQL a start's injection and audit row are one statement sent with its
    COMMIT (session_start.record_start), and its instance and audit row another (register);
    the rows are those SQLite's separate statements write."""
    project_id = db.sessions.resolve_project(REPO)["project_id"]
    results = [db.sessions.start(session(session_id=f"s-{n}"), "startup", REPO)
               for n in range(2)]  # the first write of a storage takes the long way
    starts = [row for row in db.audit_log(project_id=project_id)
              if row["action"] == "session.startup"]
    assert sorted((row["entity_id"], row["details"]) for row in starts) == [
        (result["instance_id"], {"session_id": f"s-{n}", "injection_id": result["injection_id"],
                                 "items": 0, "handoff_id": None})
        for n, result in enumerate(results)]
    launches = [row for row in db.audit_log(project_id=project_id)
                if row["action"] == "instance.launch"]
    assert sorted((row["entity_id"], row["actor"], row["details"]) for row in launches) == [
        (result["instance_id"], db.settings.actor,
         {"client": "claude-code", "session_id": f"s-{n}", "hostname": socket.gethostname(),
          "process_id": os.getpid()})
        for n, result in enumerate(results)]
    assert [injection["injection_id"] for result in results
            for injection in db.sessions.injections(result["instance_id"])] == \
        [result["injection_id"] for result in results]


def test_a_start_within_its_project_settles_a_crashed_session_first(
    make_settings: Any, transcript: str
) -> None:
    """A startup that reads ahead (a project's token: ``within``) and finds a session to
    settle runs again with its draft (Unsettled): the crashed session gets its handoff, the
    new one is offered it, and nothing is written twice."""
    with Ctxdb.open(make_settings(stale_after=0.05)) as db:
        project_id = db.sessions.resolve_project(REPO)["project_id"]
        first = db.sessions.start(session(transcript, "s-1"), "startup", REPO,
                                  within=project_id)
        time.sleep(0.3)
        second = db.sessions.start(session(session_id="s-2"), "startup", REPO,
                                   within=project_id)
        actions = [row["action"] for row in db.audit_log(project_id=project_id)]
        assert actions.count("handoff.after_crash") == 1
        assert actions.count("instance.launch") == 2 and actions.count("session.startup") == 2
        assert db.instances.get(first["instance_id"])["status"] == "crashed"
        assert second["handoff_id"] is not None
        assert db.tokens.latest_handoff(project_id=project_id)["handoff_id"] == \
            second["handoff_id"]
