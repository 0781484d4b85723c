"""``ctxdb serve`` as a real uvicorn process on a free loopback port, on both backends:
healthz, readyz, and a graceful shutdown that lets a request in flight finish and commit."""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ctxdb.service import Ctxdb
from ctxdb.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(settings: Settings, db: Ctxdb,
           tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    yield from started(settings, tmp_path)


def started(settings: Settings, tmp_path: Path,
            *options: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    # Logs as JSON lines (docs/configuration.md), every worker and uvicorn line included.
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "CTXDB_LOG_FORMAT": "json"}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "ctxdb"), "--url", settings.url, "serve",
         "--port", str(port), "-v", *options], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(f"the server did not start: {process.communicate()[0]!r}")
    try:
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_healthz_readyz_and_a_graceful_shutdown(
        db: Ctxdb, server: tuple[subprocess.Popen[bytes], str]) -> None:
    process, base = server
    project = db.projects.create("served")["project_id"]
    secret = db.access_tokens.create(project, "write")["secret"]
    assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{base}/readyz").status_code == 401
    ready = httpx.get(f"{base}/readyz", headers={"Authorization": f"Bearer {secret}"})
    assert ready.status_code == 200 and ready.json()["status"] == "ready"

    # A store whose body is still arriving when SIGTERM comes: it finishes and commits.
    body = json.dumps({"content": {"note": "in flight"}, "priority": "CRITICAL"}).encode()
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall((f"POST /v1/projects/{project}/context HTTP/1.1\r\nHost: {host}\r\n"
                      f"Authorization: Bearer {secret}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode())
        conn.sendall(body[:10])
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert process.poll() is None  # still waiting for the request in flight
        conn.sendall(body[10:])
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 201"), answer
    item_id = json.loads(answer.split(b"\r\n\r\n", 1)[1])["item_id"]
    # uvicorn re-raises SIGTERM once it has shut down cleanly, as a process killed by it.
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    logged = [json.loads(line) for line in (process.stdout.read() if process.stdout else b"")
              .decode().splitlines()]  # nothing but JSON lines, uvicorn's too
    messages = [entry["message"] for entry in logged]
    assert "Finished server process" in " ".join(messages)
    serving = [m for m in messages if m.startswith(f"worker {process.pid} serving")]
    assert serving, messages
    # The server extra brings uvloop and httptools, and uvicorn runs on them.
    assert serving[0].endswith("(event loop: uvloop, HTTP parser: httptools)"), serving
    assert any(m.startswith(f"worker {process.pid} stopped") for m in messages), messages
    assert any("GET /healthz" in m for m in messages), messages  # the access log
    assert db.context.get(item_id)["content"] == {"note": "in flight"}
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/healthz", timeout=1)


def test_a_change_feed_stream_ends_at_once_when_the_server_stops(
        db: Ctxdb, server: tuple[subprocess.Popen[bytes], str]) -> None:
    """A stream never ends by itself: without being ended at SIGTERM it would hold the
    graceful shutdown for its whole timeout (30 s) and then be cut."""
    process, base = server
    project = db.projects.create("followed")["project_id"]
    secret = db.access_tokens.create(project, "read")["secret"]
    with httpx.stream("GET", f"{base}/v1/events", timeout=30,
                      headers={"Authorization": f"Bearer {secret}"}) as response:
        lines = response.iter_lines()
        assert next(lines) == "retry: 2000"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        rest = list(lines)  # the stream ends cleanly (no error): the server closed it
    assert time.monotonic() - started < 5, rest
    assert process.wait(timeout=10) in (0, -signal.SIGTERM)
    assert b"timeout graceful shutdown exceeded" not in (
        process.stdout.read() if process.stdout else b"")


def test_no_access_log_leaves_out_the_request_lines_only(
        settings: Settings, db: Ctxdb, tmp_path: Path) -> None:
    project = db.projects.create("quiet")["project_id"]
    secret = db.access_tokens.create(project, "read")["secret"]
    served = started(settings, tmp_path, "--no-access-log")
    process, base = next(served)
    assert httpx.get(f"{base}/healthz").status_code == 200
    assert httpx.get(f"{base}/readyz",
                     headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert httpx.get(f"{base}/readyz").status_code == 401
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    logged = (process.stdout.read() if process.stdout else b"").decode()
    served.close()
    messages = [json.loads(line)["message"] for line in logged.splitlines()]
    assert any(m.startswith(f"worker {process.pid} serving") for m in messages), messages
    assert "Finished server process" in " ".join(messages)
    assert not [m for m in messages if "HTTP/1.1" in m], messages


def test_a_worker_leaves_its_startup_objects_out_of_garbage_collection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from ctxdb.http.server import app_from_environment

    monkeypatch.setenv("CTXDB_SERVE_URL", str(tmp_path / "served.db"))
    monkeypatch.setenv("CTXDB_SERVE_CONFIG", "")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    gc.unfreeze()
    try:
        with TestClient(app_from_environment()) as client:  # runs the worker's start-up
            assert client.get("/healthz").status_code == 200
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


def test_the_core_and_the_hooks_never_import_the_server_stack() -> None:
    code = ("import sys, ctxdb, ctxdb.service, ctxdb.hooks.command, ctxdb.cli.main; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('fastapi', 'starlette', 'uvicorn', 'ctxdb.http') or m.startswith('ctxdb.http')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"
