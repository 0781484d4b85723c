"""What the real-client tests share: a loopback mock that records every request and refuses
anything meant for another host, a scratch git repository, and finding the CLI under test.

Each test's mock answers its client's model API; every proxy variable points at the mock, so a
request for anywhere else (an update check, telemetry) lands there, is recorded and refused,
and the tests assert that none was made.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

CTXDB = Path(sys.executable).with_name("ctxdb")
REQUIRE_CLIENTS = os.environ.get("CTXDB_REQUIRE_CLIENTS", "") in ("1", "true", "yes")
# Generous: the machine running the tests may be loaded; a session takes a few seconds here.
CLI_TIMEOUT = 120
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def client_program(variable: str, name: str, title: str) -> str:
    """The CLI to test, from ``variable`` or PATH; else skip (fail under
    ``CTXDB_REQUIRE_CLIENTS=1``, as in CI, which installs the pinned version: ``.ci/run``)."""
    program = os.environ.get(variable) or shutil.which(name)
    if program and os.access(program, os.X_OK):
        return program
    problem = (f"{variable}={program} is not an executable file" if program
               else f"set {variable} to the {name} program or put {name} on PATH")
    if REQUIRE_CLIENTS:
        pytest.fail(f"{title} is required (CTXDB_REQUIRE_CLIENTS=1): {problem}")
    pytest.skip(f"{title} not available: {problem} (see docs/hooks.md)")


@dataclass(frozen=True)
class Recorded:
    method: str
    target: str  # the request line's target: a path, or a proxy's absolute URL / host:port
    host: str | None
    body: Any


# A reply: (status, content type, body); None when the request is not the model's.
Answer = Callable[[Recorded], "tuple[int, str, bytes] | None"]


class MockServer:
    """A loopback HTTP server that records every request and answers with ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> MockServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def recorded(self) -> list[Recorded]:
        with self.lock:
            return list(self.requests)

    def elsewhere(self) -> list[Recorded]:
        """Requests meant for a host other than this loopback server (through a proxy)."""
        return [r for r in self.recorded() if addressed_elsewhere(r)]

    def proxy_env(self) -> dict[str, str]:
        return {**{name: self.url for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY",
                                               "https_proxy", "http_proxy", "all_proxy")},
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the requests are recorded, not logged

            def _read_body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    return raw.decode("utf-8", "replace")

            def _handle(self) -> None:
                recorded = Recorded(self.command, self.path, self.headers.get("Host"),
                                    self._read_body())
                with mock.lock:
                    mock.requests.append(recorded)
                reply = None if addressed_elsewhere(recorded) else mock.answer(recorded)
                if reply is None:
                    status = 403 if addressed_elsewhere(recorded) else 404
                    reply = (status, "application/json", b'{"error": "offline test"}')
                status, content_type, data = reply
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_CONNECT = _handle

        return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client dropping a refused connection is expected: no traceback for it."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def addressed_elsewhere(recorded: Recorded) -> bool:
    """A proxy request (``CONNECT host:port``, an absolute URL) or one for another host."""
    host = (recorded.host or "").rsplit(":", 1)[0].strip("[]")
    return (recorded.method == "CONNECT" or not recorded.target.startswith("/")
            or host not in LOOPBACK_HOSTS)


def git_repository(folder: Path) -> Path:
    """A git repository with one commit."""
    folder.mkdir(parents=True)
    git = ["git", "-C", str(folder), "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "init", "-q"], check=True, timeout=30)
    (folder / "README.md").write_text("shop\n", encoding="utf-8")
    subprocess.run([*git, "add", "README.md"], check=True, timeout=30)
    subprocess.run([*git, "commit", "-q", "-m", "start"], check=True, timeout=30)
    return folder


def ctxdb(*args: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([str(CTXDB), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"ctxdb {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


def store_critical(repo: Path, env: dict[str, str], text: str) -> None:
    """A CRITICAL item in the project of ``repo`` (created as a hook would create it)."""
    from ctxdb.repo_identity import repo_identity
    from ctxdb.service import Ctxdb
    from ctxdb.settings import load_settings

    settings = load_settings(env=env, url=env["CTXDB_URL"], actor="user:test")
    with Ctxdb.open(settings) as db:
        project = db.sessions.resolve_project(repo_identity(str(repo)))
        db.context.store(project["project_id"], text, "CRITICAL")


def diagnosis(env: dict[str, str]) -> str:
    """What ctxdb saw, for a failure message: the sessions, handoffs and the hook log."""
    with sqlite3.connect(env["CTXDB_URL"]) as conn:
        sessions = conn.execute("SELECT session_id, status FROM instances").fetchall()
        handoffs = conn.execute("SELECT instance_id, kind, handoff_id, created_at "
                                "FROM handoffs").fetchall()
        injections = conn.execute("SELECT session_id, source, handoff_id, characters, "
                                  "created_at FROM injections").fetchall()
        events = conn.execute("SELECT action, entity_id, occurred_at FROM audit_log "
                              "ORDER BY audit_id").fetchall()
    hook_log = Path(env["CTXDB_HOOK_LOG"])
    log = hook_log.read_text(encoding="utf-8") if hook_log.exists() else "(empty)"
    return (f"sessions (id, status): {sessions}; handoffs: {handoffs}; injections: "
            f"{injections}; audit: {events}; hook log: {log}")


def query(env: dict[str, str], sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(env["CTXDB_URL"]) as conn:
        return conn.execute(sql, params).fetchall()
