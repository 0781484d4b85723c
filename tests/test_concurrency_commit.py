"""A PostgreSQL COMMIT whose answer is lost: the change must count exactly once.

When a connection dies after COMMIT was sent, the client cannot tell whether the server
committed. Running the unit of work again would repeat a change that did commit: a second
audit row, or an error ("already deleted", "already has a phase number 1") for a call that
succeeded. A small TCP proxy between ctxdb and the server makes this happen on demand: it
lets one COMMIT through, waits for the server's answer, and cuts the connection instead of
passing the answer on.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from ctxdb.service import Ctxdb
from item_numbers import check_numbers

pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)])

# The query text of psycopg's COMMIT, as the wire carries it both in a simple-query message
# ('Q', length 11, "COMMIT\0") and in the Parse message of a pipeline, where it travels with
# the deferred statements (audit and history rows) that precede it.
COMMIT_MESSAGE = b"COMMIT\x00"


def _shut(sock: socket.socket) -> None:
    # shutdown, not just close: it wakes a thread blocked in recv or accept on the socket.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class CommitAnswerCutter:
    """TCP proxy to PostgreSQL; when armed, the next COMMIT's answer never reaches the client.

    When frozen, it forwards nothing more either way, yet keeps every connection open and
    accepts new ones: to the client, a server that froze (or a network that lost its packets
    while the kernel still acknowledges them)."""

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._armed = False
        self._freeze_at_commit = False
        self.frozen = threading.Event()
        self.cut = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self) -> None:
        with self._lock:
            self._armed = True

    def freeze(self) -> None:
        self.frozen.set()

    def freeze_at_commit(self) -> None:
        """Let the next COMMIT reach the server, then freeze: it commits, and its answer
        (and everything after) never comes back."""
        with self._lock:
            self._freeze_at_commit = True

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self._upstream)
            self._sockets += [client, server]
            cutting = threading.Event()
            threading.Thread(target=self._to_server, args=(client, server, cutting),
                             daemon=True).start()
            threading.Thread(target=self._to_client, args=(server, client, cutting),
                             daemon=True).start()

    def _to_server(self, client: socket.socket, server: socket.socket,
                   cutting: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                with self._lock:
                    if self._armed and COMMIT_MESSAGE in data:
                        self._armed = False
                        cutting.set()
                    freezing = self._freeze_at_commit and COMMIT_MESSAGE in data
                    if freezing:
                        self._freeze_at_commit = False
                if freezing:
                    # Frozen before the COMMIT goes out: the server's answer could otherwise
                    # reach the client between the send and the freeze.
                    self.frozen.set()
                    server.sendall(data)
                elif not self.frozen.is_set():
                    server.sendall(data)
        except OSError:
            pass
        _shut(server)

    def _to_client(self, server: socket.socket, client: socket.socket,
                   cutting: threading.Event) -> None:
        try:
            while data := server.recv(65536):
                if cutting.is_set():  # the server has answered the COMMIT: drop it
                    with self._lock:
                        self.cut += 1
                    break
                if not self.frozen.is_set():
                    client.sendall(data)
        except OSError:
            pass
        _shut(client)
        _shut(server)

    def close(self) -> None:
        _shut(self._listener)
        for sock in self._sockets:
            _shut(sock)


@dataclass
class Scene:
    db: Ctxdb
    cutter: CommitAnswerCutter
    project_id: str
    phase_id: int
    instance_id: str
    item_id: int

    def new_audit_actions(self, call: Callable[[Ctxdb], Any]) -> tuple[Any, list[str]]:
        """Run ``call`` with the COMMIT's answer cut; returns its result and new audit rows."""
        before = max(row["audit_id"] for row in self.db.audit_log(limit=1))
        self.cutter.arm()
        result = call(self.db)
        assert self.cutter.cut == 1, "the COMMIT's answer was not cut"
        rows = [r for r in self.db.audit_log(limit=100) if r["audit_id"] > before]
        return result, sorted(row["action"] for row in rows)


def through_proxy(url: str, cutter: CommitAnswerCutter) -> str:
    """``url`` with the proxy as its server."""
    parts = urlsplit(url)
    # No TLS or GSS encryption, so that the proxy can see the COMMIT go by.
    netloc = f"{parts.username}@127.0.0.1:{cutter.port}"
    return urlunsplit(parts._replace(netloc=netloc, query="sslmode=disable&gssencmode=disable"))


@contextlib.contextmanager
def proxy_to(url: str) -> Iterator[CommitAnswerCutter]:
    parts = urlsplit(url)
    cutter = CommitAnswerCutter(parts.hostname or "127.0.0.1", parts.port or 5432)
    try:
        yield cutter
    finally:
        cutter.close()


@pytest.fixture
def scene(make_settings: Any) -> Iterator[Scene]:
    settings = make_settings()
    parts = urlsplit(settings.url)
    cutter = CommitAnswerCutter(parts.hostname or "127.0.0.1", parts.port or 5432)
    url = through_proxy(settings.url, cutter)
    try:
        with Ctxdb.open(settings.replace(url=url, pool_min_size=1, pool_max_size=1)) as db:
            project_id = db.projects.create("cut answers")["project_id"]
            phase_id = db.phases.create(project_id, 1, "build")["phase_id"]
            instance_id = db.instances.launch(project_id)["instance_id"]
            item_id = db.context.store(project_id, {"n": 0})["item_id"]
            db.memories.put(project_id, "notes", "plan", "first")
            yield Scene(db, cutter, project_id, phase_id, instance_id, item_id)
    finally:
        cutter.close()


def test_store_after_a_lost_commit_answer_is_stored_once(scene: Scene) -> None:
    item, actions = scene.new_audit_actions(
        lambda db: db.context.store(scene.project_id, {"n": 1}))
    assert actions == ["context.store"]
    stored = [i for items in scene.db.context.full(scene.project_id).values() for i in items]
    numbers = sorted(i["sequence_number"] for i in stored)
    assert len(numbers) == 2 and numbers[-1] == item["sequence_number"]  # stored once
    check_numbers(scene.db, numbers)


USE_CASES: dict[str, tuple[Callable[[Scene, Ctxdb], Any], list[str]]] = {
    "create project": (lambda s, db: db.projects.create("second"), ["project.create"]),
    "archive project": (lambda s, db: db.projects.archive(s.project_id), ["project.archive"]),
    "create phase": (lambda s, db: db.phases.create(s.project_id, 2, "test"),
                     ["phase.create"]),
    "start phase": (lambda s, db: db.phases.start(s.phase_id), ["phase.active"]),
    "launch instance": (lambda s, db: db.instances.launch(s.project_id), ["instance.launch"]),
    "heartbeat": (lambda s, db: db.instances.heartbeat(s.instance_id), ["instance.heartbeat"]),
    "end instance": (lambda s, db: db.instances.end(s.instance_id), ["instance.completed"]),
    "update usage": (lambda s, db: db.tokens.update_usage(s.instance_id, 7), ["tokens.update"]),
    "clear and reload": (lambda s, db: db.tokens.clear_and_reload(s.instance_id),
                         ["tokens.clear_and_reload"]),
    "supersede item": (lambda s, db: db.context.supersede(s.item_id, {"n": 9}),
                       ["context.store", "context.supersede"]),
    "delete item": (lambda s, db: db.context.delete(s.item_id), ["context.delete"]),
    # A put of a live memory is one statement that answers with the transaction's id itself
    # (no statement of its own); a first put tries that statement, which writes nothing, and
    # then asks for the id before its COMMIT.
    "put memory": (lambda s, db: db.memories.put(s.project_id, "notes", "plan", "second"),
                   ["memory.put"]),
    "put new memory": (lambda s, db: db.memories.put(s.project_id, "notes", "new", "first"),
                       ["memory.put"]),
}


@pytest.mark.parametrize("use_case", sorted(USE_CASES))
def test_every_use_case_counts_once_after_a_lost_commit_answer(
    scene: Scene, use_case: str
) -> None:
    call, expected = USE_CASES[use_case]
    result, actions = scene.new_audit_actions(lambda db: call(scene, db))
    assert result is not None
    assert actions == sorted(expected)
