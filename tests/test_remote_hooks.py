"""``ctxdb hook`` against a ctxdb server (``CTXDB_URL=http://…``, ``CTXDB_TOKEN``), as the
clients run it: a subprocess per event, a real uvicorn server in a thread over the test's
database (SQLite and PostgreSQL).

The hook contract holds as locally (exit 0, nothing or one valid JSON object on stdout,
nothing on stderr), the outputs are those of the local hook on the same data, and a server
that is down, silent, failing or odd costs every event at most 1.5 s and a line in the log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ctxdb.domain.agents import AgentSession
from ctxdb.repo_identity import repo_identity
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from remote_server import canned, free_port, raw_answer, self_signed, served, silent
from test_hooks import Hook, event, shop_repository

# The same session in each client's own event names.
EVENT_NAMES = {
    "claude-code": ("SessionStart", "UserPromptSubmit", "PreCompact", "SessionEnd"),
    "codex": ("SessionStart", "UserPromptSubmit", "PreCompact", "SessionEnd"),
    "gemini": ("SessionStart", "BeforeAgent", "PreCompress", "SessionEnd"),
}


@dataclass
class RemoteHook(Hook):
    token: str = ""

    def env(self, url: str | None = None) -> dict[str, str]:
        return {**super().env(url), "CTXDB_TOKEN": self.token}


@pytest.fixture
def server(db: Ctxdb) -> Iterator[str]:
    with served(db) as base:
        yield base


def fleet_token(db: Ctxdb) -> str:
    return str(db.access_tokens.create(None, "write")["secret"])


def seed(db: Ctxdb, repo: Path) -> str:
    project = str(db.sessions.resolve_project(repo_identity(str(repo)))["project_id"])
    db.context.store(project, "amounts are integer cents", "CRITICAL")
    db.context.store(project, {"file": "cart.py", "note": "refactor pending"}, "HIGH")
    return project


def without(project_id: str, outputs: list[str | None]) -> list[str | None]:
    """The outputs with the project's id (made anew in each database) replaced."""
    return [None if text is None else text.replace(project_id, "<project>")
            for text in outputs]


def session(hook: Hook, client: str, repo: Path) -> list[str | None]:
    """SessionStart with the pack, a prompt, the handoff before a compaction, the reload
    after it, the end: what the hook printed for each."""
    start, prompt, pre_compact, end = EVENT_NAMES[client]
    sid = f"{client}-session"
    return [hook(event(start, repo, None, sid, source="startup"), client=client),
            hook(event(prompt, repo, None, sid, prompt="go on"), client=client),
            hook(event(pre_compact, repo, None, sid, trigger="manual",
                       custom_instructions="keep the cart"), client=client),
            hook(event(start, repo, None, sid, source="compact"), client=client),
            hook(event(end, repo, None, sid, reason="logout"), client=client)]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return shop_repository(tmp_path / "shop")


@pytest.mark.parametrize("client", sorted(EVENT_NAMES))
def test_a_session_through_the_server_prints_what_the_local_hook_prints(
        db: Ctxdb, server: str, scratch: Settings, repo: Path, tmp_path: Path,
        client: str) -> None:
    local_db = Ctxdb.open(scratch)
    try:
        local_project = seed(local_db, repo)
        local = session(Hook(scratch.url, tmp_path / "local.log", tmp_path / "home"),
                        client, repo)
    finally:
        local_db.close()
    project = seed(db, repo)
    remote_hook = RemoteHook(server, tmp_path / "remote.log", tmp_path / "home",
                             fleet_token(db))
    remote = session(remote_hook, client, repo)
    assert remote_hook.logged() == ""
    assert without(project, remote) == without(local_project, local)
    startup, prompt, pre_compact, reload, end = remote
    assert startup is not None and "amounts are integer cents" in startup
    assert (prompt, pre_compact, end) == (None, None, None)
    assert reload is not None and "keep the cart" in reload  # the handoff, first
    agent = db.sessions.instance_of(AgentSession(client, f"{client}-session"))
    assert agent is not None and agent["status"] == "completed" and agent["generation"] == 1
    handoff = db.tokens.latest_handoff(instance_id=agent["instance_id"])
    # SessionEnd saved one too, after the compaction's (which the reload brought back).
    assert handoff is not None and handoff["kind"] == "end"


def test_the_transcript_goes_with_the_event_and_its_path_is_not_kept(
        db: Ctxdb, server: str, repo: Path, tmp_path: Path) -> None:
    """The transcript is on the agent's machine: its bytes go with the events, and its path
    is only a name on the server (opening it would let a token read the server's files;
    tests/test_remote_transcripts.py)."""
    transcript = Path(__file__).parent / "fixtures" / "claude-code" / "spotter" \
        / "tool_heavy.jsonl"
    seed(db, repo)
    hook = RemoteHook(server, tmp_path / "hook.log", tmp_path / "home", fleet_token(db))
    assert hook(event("SessionStart", repo, transcript, source="startup")) is not None
    assert hook(event("UserPromptSubmit", repo, transcript, prompt="go")) is None
    assert hook(event("Stop", repo, transcript, last_assistant_message="done")) is None
    agent = db.sessions.instance_of(AgentSession("claude-code", "sess-1"))
    assert agent is not None and agent["current_token_usage"] == 27_666  # as locally
    assert agent["metadata"]["transcript_path"] is None
    assert db.transcripts.usage("sess-1")["totals"]["responses"] > 0
    assert hook.logged() == ""


def test_a_project_token_works_for_its_own_repository(
        db: Ctxdb, server: str, repo: Path, tmp_path: Path) -> None:
    seed(db, repo)
    project = db.sessions.find_project(repo_identity(str(repo)).repo_key)
    assert project is not None
    secret = db.access_tokens.create(project["project_id"], "write")["secret"]
    hook = RemoteHook(server, tmp_path / "hook.log", tmp_path / "home", secret)
    text = hook(event("SessionStart", repo, None, source="startup"))
    assert text is not None and "amounts are integer cents" in text
    other = tmp_path / "other"
    other.mkdir()  # no git: its own key, which no project holds
    assert hook(event("SessionStart", other, None, "s-2", source="startup")) is None
    assert "project_not_found" in hook.logged()
    assert len(db.projects.list()) == 1  # a project's token registers no repository


def run_timed(hook: Hook, payload: dict[str, Any], client: str) -> float:
    started = time.perf_counter()
    done = hook.raw(json.dumps(payload), client=client)
    elapsed = time.perf_counter() - started
    assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), payload
    return elapsed


ALL_EVENTS = {
    "claude-code": ("SessionStart", "UserPromptSubmit", "PreCompact", "PostCompact", "Stop",
                    "SubagentStop", "SessionEnd"),
    "codex": ("SessionStart", "UserPromptSubmit", "Stop"),
    "gemini": ("SessionStart", "BeforeAgent", "PreCompress", "AfterAgent", "SessionEnd"),
}


def refused() -> AbstractContextManager[str]:
    from contextlib import nullcontext

    return nullcontext(f"http://127.0.0.1:{free_port()}")  # nothing listens there


@pytest.mark.parametrize(("down", "logged"), [
    (refused, "cannot connect to the server at"),
    (silent, "gave no answer in time"),
], ids=["nothing-listens", "accepts-never-answers"])
def test_with_the_server_down_every_hook_exits_0_within_1_5_s(
        repo: Path, tmp_path: Path, down: Any, logged: str) -> None:
    with down() as url:
        hook = RemoteHook(url, tmp_path / "hook.log", tmp_path / "home", "ctxdb_x")
        for client, names in ALL_EVENTS.items():
            for name in names:
                payload = event(name, repo, None, f"{client}-s", source="startup",
                                prompt="hi", trigger="manual")
                assert run_timed(hook, payload, client) <= 1.5, (client, name)
    assert hook.logged().count(logged) == sum(map(len, ALL_EVENTS.values()))


PROBLEM = json.dumps({"code": "internal_error", "detail": "boom"}).encode()


@pytest.mark.parametrize(("status", "body", "headers", "logged"), [
    (503, PROBLEM, {"Content-Type": "application/problem+json"},
     "answered 503: internal_error: boom"),
    (500, b"<html>oops</html>", {}, "answered 500: b'<html>oops</html>'"),
    (401, json.dumps({"code": "unauthenticated", "detail": "unknown token"}).encode(), {},
     "answered 401: unauthenticated: unknown token"),
    (302, b"", {"Location": "http://127.0.0.1:9/elsewhere"}, "answered 302"),
    (200, b"not json at all", {}, "answered something that is no hook output"),
    (200, b'{"output": {"hookSpecificOutput": {"hookEventName": "Stop"}}}', {},
     "answered something that is no hook output"),
    (200, b'{"output": {"hookSpecificOutput": {"hookEventName": "SessionStart", '
          b'"additionalContext": 7}}}', {}, "answered something that is no hook output"),
], ids=["503", "500-html", "401", "redirect", "garbage", "another-event", "no-text"])
def test_a_failing_or_odd_server_is_logged_and_the_client_gets_nothing(
        repo: Path, tmp_path: Path, status: int, body: bytes, headers: dict[str, str],
        logged: str) -> None:
    with canned(status, body, headers) as url:
        hook = RemoteHook(url, tmp_path / "hook.log", tmp_path / "home", "ctxdb_x")
        for client in ("claude-code", "gemini"):
            assert run_timed(hook, event("SessionStart", repo, None, source="startup"),
                             client) <= 1.5
    assert hook.logged().count(logged) == 2
    assert "Traceback" not in hook.logged()  # a server's failure is said in one line


def test_the_answer_is_read_as_http_whatever_its_framing(
        repo: Path, tmp_path: Path) -> None:
    """A chunked answer (as a proxy may send it) is joined; bytes that are no HTTP are
    refused in the log."""
    output = {"hookSpecificOutput": {"hookEventName": "SessionStart",
                                     "additionalContext": "from the server"}}
    body = json.dumps({"output": output}).encode()
    chunked = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:9], body[9:]))
               + b"0\r\n\r\n")
    payload = json.dumps(event("SessionStart", repo, None, source="startup"))
    with raw_answer(chunked) as url:
        hook = RemoteHook(url, tmp_path / "hook.log", tmp_path / "home", "ctxdb_x")
        done = hook.raw(payload)
    assert (done.returncode, done.stderr) == (0, "") and json.loads(done.stdout) == output
    with raw_answer(b"SSH-2.0-OpenSSH_9.6\r\n") as url:
        hook = RemoteHook(url, tmp_path / "hook.log", tmp_path / "home", "ctxdb_x")
        done = hook.raw(payload)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert "answered something that is no HTTP response" in hook.logged()


def test_https_checks_the_servers_certificate(repo: Path, tmp_path: Path) -> None:
    """Over https the server's certificate is verified against the trusted authorities
    (``SSL_CERT_FILE`` adds one): an unknown one fails open, like a server that is down."""
    output = {"hookSpecificOutput": {"hookEventName": "SessionStart",
                                     "additionalContext": "over TLS"}}
    payload = json.dumps(event("SessionStart", repo, None, source="startup"))
    cert, key = self_signed(tmp_path)
    with canned(200, json.dumps({"output": output}).encode(), tls=(cert, key)) as url:
        hook = RemoteHook(url, tmp_path / "hook.log", tmp_path / "home", "ctxdb_x")
        refused = hook.raw(payload)
        trusted = subprocess.run(
            [str(Path(sys.executable).with_name("ctxdb")), "hook", "--client", "claude-code"],
            input=payload, capture_output=True, text=True, timeout=60,
            env={**hook.env(), "SSL_CERT_FILE": str(cert)})
    assert (refused.returncode, refused.stdout, refused.stderr) == (0, "", "")
    assert "CERTIFICATE_VERIFY_FAILED" in hook.logged()
    assert (trusted.returncode, trusted.stderr) == (0, "") and json.loads(trusted.stdout) == output


def test_a_slow_server_is_given_up_and_a_wrong_token_refused(
        db: Ctxdb, server: str, repo: Path, tmp_path: Path) -> None:
    with canned(200, b'{"output": null}', delay=3) as url:
        slow = RemoteHook(url, tmp_path / "slow.log", tmp_path / "home", "ctxdb_x")
        assert run_timed(slow, event("UserPromptSubmit", repo, None, prompt="hi"),
                         "codex") <= 1.5
    assert "gave no answer in time" in slow.logged()
    wrong = RemoteHook(server, tmp_path / "wrong.log", tmp_path / "home", "ctxdb_" + "x" * 43)
    run_timed(wrong, event("SessionStart", repo, None, source="startup"), "claude-code")
    assert "answered 401: unauthenticated" in wrong.logged()
    nothing = RemoteHook(server, tmp_path / "none.log", tmp_path / "home", "")
    run_timed(nothing, event("SessionStart", repo, None, source="startup"), "claude-code")
    assert "no token is set" in nothing.logged()
    assert db.projects.list() == []


def test_an_explicit_deadline_is_kept_for_a_server(repo: Path, tmp_path: Path) -> None:
    with canned(200, b'{"output": null}', delay=1.5) as url:
        hook = RemoteHook(url, tmp_path / "hook.log", tmp_path / "home", "ctxdb_x")
        done = hook.raw(json.dumps(event("UserPromptSubmit", repo, None, prompt="hi")),
                        "--deadline", "5")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert hook.logged() == ""  # waited for the slow answer, as asked


def test_the_remote_hook_imports_only_the_standard_library(
        db: Ctxdb, server: str, repo: Path, tmp_path: Path) -> None:
    """Beyond what the interpreter loads for ``python -c pass`` (site, the editable
    install's finder), a hook through a server loads only the standard library and ctxdb's
    own modules: no click, no database driver, no HTTP framework, no pydantic."""
    seed(db, repo)
    payload = json.dumps(event("SessionStart", repo, None, source="startup"))
    probe = (
        "import io, json, sys\n"
        "before = set(sys.modules)\n"
        "sys.argv = ['ctxdb', 'hook', '--client', 'claude-code']\n"
        f"sys.stdin = io.TextIOWrapper(io.BytesIO({payload!r}.encode()))\n"
        "out = io.StringIO()\n"
        "real, sys.stdout = sys.stdout, io.TextIOWrapper(io.BytesIO())\n"
        "import os\n"
        "os._exit = sys.exit  # a remote hook ends with os._exit: report after it\n"
        "from ctxdb.cli.main import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "sys.stdout.flush()\n"
        "printed = sys.stdout.buffer.getvalue().decode()\n"
        "real.write(json.dumps([code, printed, sorted(set(sys.modules) - before)]))\n"
    )
    hook = RemoteHook(server, tmp_path / "hook.log", tmp_path / "home", fleet_token(db))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=hook.env(), check=True, timeout=60)
    code, printed, loaded = json.loads(done.stdout)
    assert code == 0 and "additionalContext" in printed and hook.logged() == ""
    foreign = {name for name in loaded if name.split(".")[0] not in sys.stdlib_module_names
               and name.split(".")[0] != "ctxdb"}
    assert foreign == set()
    # Over http the C module does (socket.py builds enums of its constants on import).
    assert "_socket" in loaded and not {"socket", "ssl", "http.client"} & set(loaded)
    assert not any(name.startswith(("ctxdb.service", "ctxdb.storage", "ctxdb.cli.root"))
                   for name in loaded)


def test_the_hook_log_names_a_refused_event_without_a_traceback(
        db: Ctxdb, server: str, repo: Path, tmp_path: Path) -> None:
    hook = RemoteHook(server, tmp_path / "hook.log", tmp_path / "home", fleet_token(db))
    done = hook.raw(json.dumps({"hook_event_name": "SessionStart", "session_id": "s",
                                "cwd": str(repo), "source": "sideways"}))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert "answered 400: invalid_input" in hook.logged()
    assert "Traceback" not in hook.logged()


def test_the_click_path_forwards_too(
        db: Ctxdb, server: str, repo: Path, tmp_path: Path) -> None:
    """``ctxdb --url http://… hook …`` (a global option first: click runs it) forwards the
    event like the fast path."""
    seed(db, repo)
    hook = RemoteHook(db.settings.url, tmp_path / "hook.log", tmp_path / "home",
                      fleet_token(db))
    done = subprocess.run(
        [str(Path(sys.executable).with_name("ctxdb")), "--url", server, "hook", "--client",
         "codex"], input=json.dumps(event("SessionStart", repo, None, source="startup")),
        capture_output=True, text=True, env=hook.env(), timeout=60)
    assert (done.returncode, done.stderr, hook.logged()) == (0, "", "")
    text = json.loads(done.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "amounts are integer cents" in text
    assert db.sessions.instance_of(AgentSession("codex", "sess-1")) is not None


def test_the_remote_hook_benchmark_runs_and_prints_its_table(tmp_path: Path) -> None:
    """Completion and the table's shape only: its timings are evidence, never asserted."""
    bench = Path(__file__).resolve().parents[1] / "bench" / "remote_hook.py"
    done = subprocess.run([sys.executable, str(bench), "--runs", "2", "--items", "10"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()
            if line.startswith(("python -c pass", "remote ", "local "))]
    assert [row[0] + " " + row[1] for row in rows] == [
        "python -c", "remote SessionStart", "remote UserPromptSubmit", "local UserPromptSubmit",
        "remote SessionEnd"]
    assert all(row[-1] in ("PASS", "MISS") for row in rows if row[0] == "remote")
