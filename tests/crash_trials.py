"""What the crash and restart trials of ``ctxdb serve`` share (tests/test_server_crash.py):
server processes, a private PostgreSQL cluster, writers that keep what was acknowledged, and
a change-feed follower.

A writer sends creates with an ``Idempotency-Key`` and remembers, per key, the record the
server acknowledged; a create that got no answer (the server died, the database went away)
is sent again with the same key until it is answered, so that every key ends up with exactly
one record, which the trials then count in the database itself.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

# Imported here, before any fork, so that a forked server starts at once (the MCP SDK's
# import, which the app makes when it is built, takes seconds).
import ctxdb.http.mcp_endpoint  # noqa: F401
from ctxdb.http.app import DEFAULT_MAX_BODY_BYTES
from ctxdb.http.server import serve
from remote_server import free_port


class Server:
    """What ``ctxdb serve`` runs (``ctxdb.http.server.serve``) on a loopback port, in a child
    forked from the test's process, which has imported everything already: it is up in a
    fraction of the time a new interpreter takes. Fork only while no other thread of the
    test runs (a lock another thread holds would stay held in the child)."""

    def __init__(self, url: str, home: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.child = multiprocessing.get_context("fork").Process(
            target=_serve, args=(url, self.port, home), daemon=True)
        self.child.start()

    def wait_up(self, timeout: float = 30) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.child.is_alive():
                raise RuntimeError("the server exited")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("the server did not start")

    def kill(self) -> None:
        self.child.kill()  # SIGKILL: no graceful shutdown, no chance to finish anything
        self.child.join()


def _serve(url: str, port: int, home: Path) -> None:
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the child's until it dies)
    os.environ.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"))
    serve(url=url, config_file=None, host="127.0.0.1", port=port, workers=1,
          max_body_bytes=DEFAULT_MAX_BODY_BYTES)


@contextmanager
def servers(url: str, home: Path, count: int) -> Iterator[list[Server]]:
    """``count`` replicas over one database (forked: call it before starting a thread)."""
    started = [Server(url, home) for _ in range(count)]
    try:
        yield [server.wait_up() for server in started]
    finally:
        for server in started:
            server.kill()


@dataclass
class Writes:
    """Every key a writer sent, the record acknowledged for it, and when answers came."""

    project_id: str
    secret: str
    acknowledged: dict[str, int] = field(default_factory=dict)
    unanswered: set[str] = field(default_factory=set)
    answered_at: list[tuple[str, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, base: str, key: str, timeout: float = 5) -> bool:
        """One create of a context item, keyed ``key``; whether it was acknowledged."""
        body = {"content": {"key": key}, "priority": "HIGH", "content_type": "note"}
        headers = {"Authorization": f"Bearer {self.secret}", "Idempotency-Key": key}
        try:
            answer = httpx.post(f"{base}/v1/projects/{self.project_id}/context", json=body,
                                headers=headers, timeout=timeout)
        except httpx.TransportError:
            answer = None
        with self.lock:
            if answer is None or answer.status_code >= 500:
                self.unanswered.add(key)
                return False
            assert answer.status_code == 201, answer.text  # anything else is a bug
            item_id = answer.json()["item_id"]
            assert self.acknowledged.setdefault(key, item_id) == item_id, key  # same record
            self.unanswered.discard(key)
            self.answered_at.append((key, time.monotonic()))
            return True


def write_until(writes: Writes, bases: list[str], prefix: str, stop: threading.Event,
                pause: float = 0.0) -> None:
    """Keep creating (round robin over ``bases``) until ``stop``; a create that was not
    acknowledged is sent again, with its key, until it is."""
    number = 0
    while not stop.is_set():
        key = f"{prefix}-{number}"
        attempt = 0
        while not writes.send(bases[attempt % len(bases)], key, timeout=2):
            attempt += 1
            if stop.is_set():
                return
            time.sleep(0.05)
        number += 1
        time.sleep(pause)


def start_writers(writes: Writes, bases: list[str], count: int,
                  prefix: str) -> tuple[threading.Event, list[threading.Thread]]:
    stop = threading.Event()
    threads = [threading.Thread(target=write_until, daemon=True,
                                args=(writes, bases[i:] + bases[:i], f"{prefix}{i}", stop))
               for i in range(count)]
    for thread in threads:
        thread.start()
    return stop, threads


def stop_writers(stop: threading.Event, threads: list[threading.Thread]) -> None:
    stop.set()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()


class Follower:
    """A consumer of ``/v1/events`` that reconnects with its last id (to any of ``bases``)
    whenever its stream ends or breaks, as a browser's EventSource does."""

    def __init__(self, bases: list[str], secret: str) -> None:
        self.bases, self.secret = bases, secret
        self.events: list[dict[str, Any]] = []
        self.last_id: str | None = None
        self.stop = threading.Event()
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        attempt = 0
        while not self.stop.is_set():
            headers = {"Authorization": f"Bearer {self.secret}"}
            if self.last_id is not None:
                headers["Last-Event-ID"] = self.last_id
            try:
                with httpx.stream("GET", f"{self.bases[attempt % len(self.bases)]}/v1/events",
                                  params={"max_seconds": 2}, headers=headers,
                                  timeout=httpx.Timeout(5, read=20)) as stream:
                    if stream.status_code == 200:
                        self.connected.set()
                        self._read(stream)
            except httpx.HTTPError:
                pass
            attempt += 1
            time.sleep(0.05)

    def _read(self, stream: httpx.Response) -> None:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                self.events.append(event)
                self.last_id = event["id"]

    def stored_items(self) -> list[int]:
        return [int(e["entity_id"]) for e in self.events
                if e["entity_type"] == "context_item" and e["action"] == "context.store"]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


def unprivileged() -> dict[str, Any]:
    """How to run PostgreSQL's programs, which refuse to run as root: as its own user (or
    nobody) when the tests run as root, as they are otherwise."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    raise RuntimeError("running as root, and no user to run PostgreSQL as")


class Cluster:
    """A PostgreSQL cluster of the test's own (``initdb``, ``pg_ctl``) in a temporary folder,
    on a free loopback port, with trust authentication: it can be crashed and restarted."""

    def __init__(self, initdb: str) -> None:
        self.bin = Path(initdb).parent
        self.folder = Path(tempfile.mkdtemp(prefix="ctxdb-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.as_user = unprivileged()
        if self.as_user:
            os.chown(self.folder, self.as_user["user"], self.as_user["group"])
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        subprocess.run([str(self.bin / program), *args], check=True, capture_output=True,
                       timeout=60, **self.as_user)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   f"-c fsync=on -c max_connections=60")
        self._run("pg_ctl", "start", "-w", "-D", str(self.data), "-l",
                  str(self.folder / "log"), "-o", options)

    def started_at(self) -> str:
        """When the running server started (a new value after each restart)."""
        with psycopg.connect(self.url, connect_timeout=5) as conn:
            row = conn.execute("SELECT pg_postmaster_start_time()::text").fetchone()
        return str(row[0]) if row else ""

    def crash(self) -> None:
        """Stop at once, as a power cut would: no checkpoint, recovery from the WAL at start."""
        self._run("pg_ctl", "stop", "-m", "immediate", "-D", str(self.data))

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self._run("pg_ctl", "stop", "-m", "immediate", "-D", str(self.data))
        shutil.rmtree(self.folder, ignore_errors=True)
