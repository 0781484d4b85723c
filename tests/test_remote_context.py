"""``ctxdb context`` through a server prints what it prints locally: ``--as-new-session``
(what a new agent session would be given) and the project found from the working folder's
repository, which the server looks up among the projects the token sees only; and an
instance's handoffs listed through ``ctxdb.connect``. Both backends, a real uvicorn server
in a thread, click's in-process runner."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctxdb.client import connect
from ctxdb.domain.hook_events import parse_event
from ctxdb.errors import ProjectNotFoundError
from ctxdb.repo_identity import repo_identity
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from remote_server import served
from test_cli import Cli
from test_cli_remote import RemoteCli
from test_hooks import event, git

FIXTURES = Path(__file__).parent / "fixtures" / "claude-code" / "claude-code-viewer"
TRANSCRIPT = FIXTURES / "5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository, the working folder of the test (as of an agent working in it)."""
    path = tmp_path / "shop"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "commit", "-q", "--allow-empty", "-m", "root")
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def server(db: Ctxdb) -> Iterator[str]:
    with served(db) as url:
        yield url


def hook(db: Ctxdb, repo: Path, payload: dict[str, Any]) -> None:
    db.hook_events.handle(parse_event("claude-code", json.dumps(payload)),
                          lambda: repo_identity(str(repo)))


def work_left(db: Ctxdb, repo: Path, tmp_path: Path) -> str:
    """The repository's project with context, a session that stopped after a compaction
    (its handoff is where the work left off) and a live one (a sibling); its id."""
    transcript = tmp_path / TRANSCRIPT.name
    shutil.copy(TRANSCRIPT, transcript)
    hook(db, repo, event("SessionStart", repo, transcript, "gone", source="startup"))
    pid = str(db.sessions.find_project(repo_identity(str(repo)).repo_key)["project_id"])
    db.context.store(pid, {"rule": "amounts are integer cents"}, "CRITICAL", "decision")
    db.context.store(pid, "the webhook handler lives in api/hooks.py", "HIGH", "note")
    hook(db, repo, event("PreCompact", repo, transcript, "gone", trigger="manual"))
    hook(db, repo, event("SessionEnd", repo, transcript, "gone", reason="logout"))
    hook(db, repo, event("SessionStart", repo, None, "busy", source="startup"))
    return pid


def test_context_as_a_new_session_and_of_the_current_repository_as_locally(
        db: Ctxdb, settings: Settings, server: str, repo: Path, tmp_path: Path) -> None:
    pid = work_left(db, repo, tmp_path)
    local = Cli(settings.url, tmp_path)
    remote = RemoteCli(server, tmp_path, db.access_tokens.create(pid, "read")["secret"])
    commands = [("context", "--as-new-session"),
                ("context", "--as-new-session", "--client", "codex"),
                ("context", "--as-new-session", "--client", "gemini", "--format", "markdown"),
                ("context", "-p", pid, "--as-new-session"),
                ("context",), ("context", "--budget-tokens", "300"),
                ("context", "--format", "markdown")]
    for command in commands:
        here, there = local(*command), remote(*command)
        assert here.exit_code == there.exit_code == 0, (command, here.output, there.output)
        assert there.stdout == here.stdout, command
    shown = local("context", "--as-new-session").stdout
    assert "amounts are integer cents" in shown and "busy" in shown  # pack, sibling
    assert "gone" in shown  # where the work left off: the stopped session's handoff
    # Machine output: the same content (a server's timestamps are ISO text on both backends).
    here = json.loads(local("context", "--as-new-session", "--format", "json").stdout)
    there = json.loads(remote("context", "--as-new-session", "--format", "json").stdout)
    assert there["handoff"] is not None
    assert {k: v for k, v in there.items() if k != "handoff"} == \
        {k: v for k, v in here.items() if k != "handoff"}
    assert there["handoff"]["handoff_id"] == here["handoff"]["handoff_id"]
    assert there["handoff"]["summary"] == here["handoff"]["summary"]
    here, there = (json.loads(cli("context", "--format", "json").stdout)
                   for cli in (local, remote))
    assert (there["project_id"], there["text"]) == (here["project_id"], here["text"]) \
        and here["project_id"] == pid


def test_the_repository_of_another_project_is_not_found_through_a_server(
        db: Ctxdb, settings: Settings, server: str, repo: Path, tmp_path: Path) -> None:
    """A project's token asking for the repository of another project gets what a repository
    nobody knows gets: nothing of that project, not even its id."""
    pid = work_left(db, repo, tmp_path)
    other = db.projects.create("other")["project_id"]
    outsider = RemoteCli(server, tmp_path, db.access_tokens.create(other, "admin")["secret"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    git(elsewhere, "init", "-q", "-b", "main")
    git(elsewhere, "commit", "-q", "--allow-empty", "-m", "another root")
    for command in (("context",), ("context", "--as-new-session"),
                    ("context", "--format", "json")):
        refused = outsider(*command)
        assert refused.exit_code == 3, refused.output
        assert pid not in refused.output and "integer cents" not in refused.output
        assert "no project for the repository at" in refused.stderr
    key = repo_identity(str(repo)).repo_key
    with connect(server, db.access_tokens.create(other, "admin")["secret"]) as as_other, \
            connect(server, db.access_tokens.create(None, "read")["secret"]) as fleet, \
            connect(server, db.access_tokens.create(pid, "read")["secret"]) as own:
        assert as_other.sessions.find_project(key) is None
        assert as_other.sessions.find_project(repo_identity(str(elsewhere)).repo_key) is None
        assert own.sessions.find_project(key)["project_id"] == pid  # type: ignore[index]
        assert fleet.sessions.find_project(key)["project_id"] == pid  # type: ignore[index]
        with pytest.raises(ProjectNotFoundError):
            as_other.continuity.new_session(pid, "claude-code")


def test_an_instances_handoffs_are_listed_through_a_server(
        db: Ctxdb, server: str, tmp_path: Path) -> None:
    pid = db.projects.create("shop")["project_id"]
    agent = db.instances.launch(pid)["instance_id"]
    made = [db.tokens.record_handoff(agent, summary=f"step {n}")["handoff_id"]
            for n in range(5)]
    other = db.projects.create("other")["project_id"]
    with connect(server, db.access_tokens.create(pid, "read")["secret"]) as remote:
        listed = remote.tokens.handoffs(agent, pid, limit=3)
        assert [h["handoff_id"] for h in listed] == made[:1:-1]
        assert [h["summary"] for h in listed] == ["step 4", "step 3", "step 2"]
        older = remote.tokens.handoffs(agent, before_id=listed[-1]["handoff_id"])
        assert [h["handoff_id"] for h in older] == [h["handoff_id"] for h in
                                                     db.tokens.handoffs(agent, before_id=made[2])]
        assert [h["handoff_id"] for h in older] == made[1::-1]
    with connect(server, db.access_tokens.create(other, "admin")["secret"]) as outsider:
        with pytest.raises(ProjectNotFoundError):
            outsider.tokens.handoffs(agent, pid)
        with pytest.raises(Exception) as unknown:
            outsider.tokens.handoffs(agent)  # its own project: the instance is unknown there
        assert getattr(unknown.value, "code", "") == "instance_not_found"
