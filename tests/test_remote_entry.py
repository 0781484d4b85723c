"""The remote hook's short path (``ctxdb.hooks.remote_entry``) against the full path
(``hooks.command`` → ``hooks.dispatch`` → ``hooks.remote``): for every client and the
events the short path takes, the two send the same request bytes and print the same output,
whatever the server answers; and what the short path hands over, or reads by hand (server
URLs, JSON, git's config), it reads as the full path's code does.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ctxdb import git_files
from ctxdb.database_url import server_address
from ctxdb.domain.validation import load_json
from ctxdb.errors import CtxdbError
from ctxdb.hooks import remote_entry
from ctxdb.settings import SETTINGS_HELP
from ctxdb.settings_names import SETTING_NAMES
from test_hooks import event, shop_repository
from test_remote_hooks import RemoteHook

PROBE = """\
import sys
sys.argv = ["ctxdb", "hook", "--client", *sys.argv[1:]]
import os
os._exit = sys.exit  # a remote hook ends with os._exit: report after it
from ctxdb.cli.main import main
code = None
try:
    main()
except SystemExit as exc:
    code = exc.code
modules = sorted(sys.modules)
import json, os
with open(os.environ["PROBE_REPORT"], "w") as report:
    json.dump([code, modules], report)
"""
# A setting that changes nothing a remote hook does: set, the full path loads the settings.
FULL_PATH = {"CTXDB_RECALL": "1"}
CONTEXT = "amounts are integer cents — 金额 ✓ \u2028 \"quoted\" \\ back"
ANSWERS = {
    "context": (200, json.dumps({"output": {"hookSpecificOutput": {
        "hookEventName": "{name}", "additionalContext": CONTEXT}}}).encode()),
    "too long": (200, json.dumps({"output": {"hookSpecificOutput": {
        "hookEventName": "{name}", "additionalContext": "x" * 12_000}}}).encode()),
    "null": (200, b'{"output": null}'),
    "other event": (200, json.dumps({"output": {"hookSpecificOutput": {
        "hookEventName": "Elsewhere", "additionalContext": "x"}}}).encode()),
    "not json": (200, b"<html>oops</html>"),
    "a list": (200, b"[1, 2]"),
    "refused": (401, b'{"code": "unauthenticated", "detail": "no such token"}'),
    "failing": (500, b"Internal Server Error"),
}
EVENTS = {
    "claude-code": ("SessionStart", "UserPromptSubmit", "SessionEnd"),
    "codex": ("SessionStart", "UserPromptSubmit", "SessionEnd"),
    "gemini": ("SessionStart", "BeforeAgent", "SessionEnd"),
}


class Recorder:
    """A server answering each ``POST`` with the canned answer of the test (``{name}`` in it
    replaced by the event's name), recording each request's path, headers and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.answer: tuple[int, bytes] = (200, b'{"output": null}')


@contextmanager
def recording() -> Iterator[tuple[Recorder, str]]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorder.requests.append((self.path, headers, body))
            status, answer = recorder.answer
            name = json.loads(body)["event"]["hook_event_name"]
            answer = answer.replace(b"{name}", name.encode())
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def run_probe(hook: RemoteHook, payload: str, client: str, report: Path,
              extra: dict[str, str], *options: str) -> tuple[str, list[str]]:
    """The hook run as a client runs it (stdin a pipe): what it printed, and the modules it
    had imported by its end."""
    env = {**hook.env(), "PROBE_REPORT": str(report), **extra}
    report.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-c", PROBE, client, *options], input=payload,
                          capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    code, modules = json.loads(report.read_text())
    assert code == 0
    return done.stdout, modules


def logged_lines(log: Path) -> list[str]:
    """The hook log without each entry's time and process id."""
    if not log.exists():
        return []
    text = log.read_text(encoding="utf-8")
    return [re.sub(r"^\S+Z pid=\d+ ", "", line) for line in text.splitlines()]


def both_paths(tmp_path: Path, url: str, recorder: Recorder, payload: dict[str, Any],
               client: str, lean: bool = True
               ) -> list[tuple[str, list[tuple[str, dict[str, str], bytes]], list[str]]]:
    """What the short path and the full path each printed, sent and logged."""
    results = []
    for name, extra in (("short", {}), ("full", FULL_PATH)):
        log = tmp_path / f"{name}.log"
        log.unlink(missing_ok=True)
        hook = RemoteHook(url, log, tmp_path / "home", "ctxdb_" + "t" * 43)
        recorder.requests.clear()
        # A deadline long enough for a busy machine: both paths compute the same one
        # (tests/test_remote_hooks.py times the default one).
        printed, modules = run_probe(hook, json.dumps(payload), client,
                                     tmp_path / "report.json", extra, "--deadline", "30")
        # Which path ran; and the short one imports no json for an answer it reads itself.
        assert ("ctxdb.hooks.dispatch" in modules) == (name == "full"), name
        assert not (lean and name == "short" and "json" in modules)
        requests = [(path, {k: v for k, v in headers.items() if k != "host"}, body)
                    for path, headers, body in recorder.requests]
        results.append((printed, requests, logged_lines(log)))
    return results


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = shop_repository(tmp_path / "shop")
    common = repo / ".git"
    (common / "ctxdb-repo-key").write_text("git:example.com/acme/shop@0123456789ab\n")
    return repo


@pytest.fixture
def transcript(tmp_path: Path) -> Path:
    path = tmp_path / "session.jsonl"
    lines = [json.dumps({"type": "assistant", "uuid": f"u{n}", "message": {
        "id": f"msg_{n}", "role": "assistant", "content": [{"type": "text", "text": "é" * n}],
        "usage": {"input_tokens": n, "cache_read_input_tokens": 10 * n}}}) for n in range(50)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("client", sorted(EVENTS))
def test_both_paths_send_and_print_the_same_for_every_client_and_event(
        client: str, repo: Path, transcript: Path, tmp_path: Path) -> None:
    start, prompt, end = EVENTS[client]
    events = [
        event(start, repo, None, "s-1", source="startup"),
        event(start, repo, transcript, "s-1", source="resume"),  # gemini sends the tail
        event(prompt, repo, transcript, "s-1", prompt="go on, ünïcode ✓", extra=[1.5, None]),
        event(prompt, repo, None, "s-1", prompt="no transcript"),
        event(end, repo, None, "s-1", reason="logout"),
    ]
    with recording() as (recorder, url):
        for answer in ("context", "null", "too long"):
            recorder.answer = ANSWERS[answer]
            for payload in events:
                short, full = both_paths(tmp_path, url, recorder, payload, client)
                assert short == full, (answer, payload)
                printed, requests, logged = short
                assert len(requests) == 1 and logged == []
                if answer == "context" and payload["hook_event_name"] in (start, prompt):
                    assert CONTEXT in json.loads(printed)["hookSpecificOutput"][
                        "additionalContext"]


@pytest.mark.parametrize("answer", sorted(set(ANSWERS) - {"context", "null", "too long"}))
def test_both_paths_log_the_same_for_an_odd_answer(
        answer: str, repo: Path, tmp_path: Path) -> None:
    with recording() as (recorder, url):
        recorder.answer = ANSWERS[answer]
        payload = event("UserPromptSubmit", repo, None, "s-2", prompt="hi")
        short, full = both_paths(tmp_path, url, recorder, payload, "claude-code", lean=False)
    assert short == full
    printed, _, logged = short
    assert printed == "" and len(logged) == 1


def test_the_full_path_takes_what_the_short_one_does_not(repo: Path, transcript: Path,
                                                         tmp_path: Path) -> None:
    """A handoff to read, an ingestion, a repository without its cached key, an event ctxdb
    does not know, a malformed event, a config file: each run by the full path."""
    bare = shop_repository(tmp_path / "bare-key", origin=None)
    cases = [
        (event("SessionEnd", repo, transcript, "s-3", reason="logout"), {}),
        (event("Stop", repo, transcript, "s-3"), {}),
        (event("UserPromptSubmit", bare, None, "s-3", prompt="hi"), {}),
        (event("Notification", repo, None, "s-3"), {}),
        ({"hook_event_name": "UserPromptSubmit", "session_id": ""}, {}),
        (event("UserPromptSubmit", repo, None, "s-3", prompt="hi"),
         {"CTXDB_CONFIG": str(tmp_path / "missing.toml")}),
    ]
    with recording() as (_, url):
        hook = RemoteHook(url, tmp_path / "hook.log", tmp_path / "home", "ctxdb_" + "t" * 43)
        for payload, extra in cases:
            _, modules = run_probe(hook, json.dumps(payload), "claude-code",
                                   tmp_path / "report.json", extra)
            assert "ctxdb.hooks.dispatch" in modules, payload


def test_the_short_path_needs_no_config_file(tmp_path: Path) -> None:
    env = {"CTXDB_URL": "http://127.0.0.1:1", "CTXDB_TOKEN": "t", "HOME": str(tmp_path),
           "CTXDB_ACTOR": "user:x", "CTXDB_HOOK_LOG": "x"}
    assert remote_entry.server_settings(env) == (
        "http://127.0.0.1:1", "t", ("http", "127.0.0.1", 1, ""))
    for other in ({"CTXDB_TOKEN": ""}, {"CTXDB_RECALL": "0"}, {"CTXDB_CONFIG": "x.toml"},
                  {"CTXDB_URL": "postgresql://x/y"}, {"CTXDB_URL": "http://h:99999"}):
        assert remote_entry.server_settings({**env, **other}) is None, other
    config = tmp_path / ".config" / "ctxdb" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('token = "other"\n')
    assert remote_entry.server_settings(env) is None


def test_the_setting_names_are_those_of_the_settings() -> None:
    assert tuple(setting.name for setting in SETTINGS_HELP) == SETTING_NAMES


def random_text(rng: random.Random, alphabet: str, longest: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest)))


def test_a_server_url_read_by_hand_is_read_as_the_pattern_reads_it() -> None:
    rng = random.Random(12)
    pieces = ["http", "https", "HTTP", "://", ":", "/", "[", "]", "::1", "127.0.0.1", "h",
              "example.com", "80", "8700", "65535", "65536", "0", "?", "#", "@", "%", "~",
              "é", " ", "x+y", "//", "a-b", "123456"]
    checked = 0
    for _ in range(20_000):
        url = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        if rng.random() < 0.5:
            url = rng.choice(["http://", "https://", "HTTPS://"]) + url
        by_hand = remote_entry.server_address(url)
        try:
            expected = server_address(url)
        except CtxdbError:
            assert by_hand is None, url
            continue
        if by_hand is not None:  # else the full path reads it
            checked += 1
            assert by_hand == expected == server_address(url.rstrip("/")), url
    assert checked > 1_000


def test_json_read_by_the_c_scanner_is_what_json_loads_reads() -> None:
    texts = [
        '{"a": 1}', ' \n{"a": [1, 2.5, -3e5, true, false, null, "x"]}\t', "{}", "[]", '"s"',
        '{"a": NaN, "b": -Infinity, "c": Infinity}', '{"a": "\\ud800"}', '{"a": 1}{}',
        '{"a": 1', '\ufeff{"a": 1}', "", "  ", '{"a": ' + "9" * 4_300 + "}",
        '{"a": ' + "9" * 4_301 + "}", '{"a": -' + "9" * 4_301 + "}", "[" * 101 + "]" * 101,
        "[" * 2_000 + "]" * 2_000, '{"a": 1, "a": 2}', '{"a": "tab\tin"}', "1 2",
        '{"\\u00e9": "\\n"}', '{"a": 1}\u00a0', '{"a": 01}', '{"a": .5}',
    ]
    for text in texts:
        try:
            expected: Any = load_json(text, "x")
        except (ValueError, CtxdbError, RecursionError):
            expected = "refused"
        try:
            found: Any = remote_entry.loads(text)
            if remote_entry.json_depth_over(found):
                found = "refused"
        except (ValueError, RecursionError):
            found = "refused"
        same = json.dumps(found, sort_keys=True) == json.dumps(expected, sort_keys=True)
        assert same, text[:60]


def test_the_body_is_written_as_json_dumps_writes_it() -> None:
    value = {"client": "gemini", "event": {"a": [1.5, 1e100, -0.0, float("nan"), None, True],
                                           "é": "\u2028\ud800 ✓", "n": 10**30, "": {}},
             "repo": None}
    assert "".join(remote_entry._encode(value, 0)) == json.dumps(value)


def test_git_config_read_by_hand_is_read_as_the_pattern_reads_it() -> None:
    rng = random.Random(5)
    words = ["worktree", "WorkTree", "bare", "Bare", "=", "true", "TRUE", "refStorage",
             "[", "include", "Include", " ", "\t", "\n", "x", "_", "a", "]", "\x1c", "ré"]
    for _ in range(20_000):
        text = "".join(rng.choice(words) for _ in range(rng.randint(0, 8)))
        expected = re.search(git_files.UNUSUAL_CONFIG, text, re.IGNORECASE) is not None
        assert git_files._unusual_config(text) == expected, repr(text)
    for name in ("0" * 40, "a" * 64, "0" * 39, "A" * 40, "g" * 40, "0" * 41):
        assert git_files._object_name(name) == bool(re.fullmatch(
            r"[0-9a-f]{40}|[0-9a-f]{64}", name)), name


def test_stdin_left_open_is_read_as_soon_as_it_holds_an_event(repo: Path,
                                                              tmp_path: Path) -> None:
    """A client that writes the event and leaves the pipe open: the short path answers at
    once; one that writes nothing: it gives up after its input deadline, logging why."""
    with recording() as (recorder, url):
        hook = RemoteHook(url, tmp_path / "hook.log", tmp_path / "home", "ctxdb_" + "t" * 43)
        env = {**hook.env(), "PROBE_REPORT": str(tmp_path / "report.json")}
        for payload in (json.dumps(event("UserPromptSubmit", repo, None, "s-4", prompt="hi")),
                        ""):
            process = subprocess.Popen([sys.executable, "-c", PROBE, "codex"], env=env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE)
            assert process.stdin is not None
            process.stdin.write(payload.encode())
            process.stdin.flush()
            assert process.wait(timeout=30) == 0  # with stdin still open
            out, err = process.communicate()
            assert (out, err) == (b"", b"")
    assert len(recorder.requests) == 1
    assert "stdin was not closed within 1 s" in hook.logged()
