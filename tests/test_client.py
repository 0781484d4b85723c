"""``ctxdb.connect()`` against a real uvicorn server in a thread, on both backends: the same
script run on ``ctxdb.open()``'s facade and on the remote one gives the same results and the
same typed errors."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import ctxdb
from ctxdb import errors
from ctxdb.client import RemoteCtxdb
from ctxdb.client.transport import Transport, error_of
from ctxdb.domain.pack_formats import pack_payload
from ctxdb.service import Ctxdb
from remote_server import served

GLOBAL_ID = re.compile(r"(proj|inst|sess)_\d{8}_\d{6}_[0-9a-f]+|mem_[0-9a-f]{32}")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d")
# What differs between two runs by design: clocks, processes, who is audited, generated keys,
# relevance scores (the index's statistics cover every project in the database).
VOLATILE = {"hostname", "process_id", "actor", "created_by", "requested_by", "decided_by",
            "sender", "idempotency_key", "score", "rank", "duration_ms", "token_id", "updated_by",
            "written_by"}


@pytest.fixture
def server_url(db: Ctxdb) -> Iterator[str]:
    with served(db) as url:
        yield url


def failure(call: Callable[[], Any]) -> tuple[str, str]:
    try:
        call()
    except errors.CtxdbError as exc:
        return type(exc).__name__, exc.code
    raise AssertionError("no error")


def as_payload(pack: Any, project_id: str) -> Any:
    return pack if isinstance(pack, dict) else pack_payload(project_id, pack)


def script(store: Any, pid: str) -> list[Any]:
    """Every everyday service, in the order an agent's day uses them."""
    out: list[Any] = []
    rec = out.append
    phase = store.phases.create(pid, 1, "build")
    rec([phase, store.phases.start(phase["phase_id"])])
    inst = store.instances.launch(pid, model="m", context_window=1000)
    iid = inst["instance_id"]
    rec([inst, store.instances.heartbeat(iid), store.tokens.update_usage(iid, 400),
         store.tokens.check_usage(iid)])
    item = store.context.store(pid, {"rule": "use sqlite"}, "CRITICAL", "decision",
                               idempotency_key="c1")
    rec([item, store.context.store(pid, {"rule": "use sqlite"}, "CRITICAL", "decision",
                                   idempotency_key="c1"), store.context.get(item["item_id"])])
    rec(failure(lambda: store.context.store(pid, {"rule": "other"}, "CRITICAL", "decision",
                                            idempotency_key="c1")))
    rec(store.context.supersede(item["item_id"], {"rule": "use postgres"}))
    rec([store.context.page(pid, "CRITICAL"), store.context.full(pid),
         as_payload(store.context.pack(pid, 2000), pid)])
    rec(store.memories.put(pid, "team", "plan", {"v": 1}, expected_version=0))
    rec(failure(lambda: store.memories.put(pid, "team", "plan", {"v": 2}, expected_version=0)))
    rec([store.memories.get(pid, "team", "plan"), store.memories.history(pid, "team", "plan"),
         store.memories.list(pid)])
    rec(store.tasks.create(pid, "ship", priority=2, idempotency_key="t1"))
    rec(store.tasks.create(pid, "ship", priority=2, idempotency_key="t1"))
    claimed = store.tasks.claim(pid, iid, 60)
    rec([claimed, store.tasks.complete(claimed["task_id"], claimed["epoch"], {"ok": True})])
    rec(failure(lambda: store.tasks.complete(claimed["task_id"], claimed["epoch"])))
    rec([store.tasks.claim(pid, iid, 60), store.tasks.list(pid)])
    rec(store.messages.send(pid, "broadcast", None, {"hi": 1}))
    inbox = store.messages.inbox(iid)
    rec([inbox, store.messages.ack(inbox[0]["message_id"], iid)])
    gate = store.approvals.request(pid, "deploy", {"to": "prod"}, title="ship it")
    rec([gate, store.approvals.list(pid, status="pending"),
         store.approvals.approve(gate["gate_id"], {"ok": True})])
    rec([failure(lambda: store.approvals.reject(gate["gate_id"])),
         store.approvals.wait(gate["gate_id"], 0)])
    session = store.conversations.create(pid, "app", "user", state={"step": 1})
    sid = session["session_id"]
    rec([session, store.conversations.append(sid, "user", "hello sqlite"),
         store.conversations.events(sid), store.conversations.close(sid)])
    rec(failure(lambda: store.conversations.append(sid, "user", "too late")))
    run = store.commands.queue(pid, "pytest", ["-q"])
    rec([run, store.commands.start(run["run_id"]),
         store.commands.finish(run["run_id"], exit_code=0, output="ok"),
         store.commands.get(run["run_id"]), store.commands.list(pid)])
    checkpoint = store.checkpoints.save(iid, {"step": 3}, label="l")
    rec([checkpoint, store.checkpoints.latest(pid), store.checkpoints.list(pid)])
    rec([store.tokens.record_handoff(iid, summary="next: deploy"),
         store.tokens.latest_handoff(project_id=pid)])
    rec(store.search.search(pid, "sqlite"))
    rec([failure(lambda: store.context.get(999_999)), failure(lambda: store.tasks.get(999_998)),
         failure(lambda: store.phases.create(pid, 1, "again"))])
    rec(store.instances.end(iid))
    actions = [entry["action"] for entry in store.audit_log(pid, limit=1000)]
    verified = store.audit_chain.verify(pid)
    # Less the remote run's own token: one entry more, unsealed.
    rec([[a for a in actions if not a.startswith("api_token.")], verified["ok"],
         verified["unsealed"] - actions.count("api_token.create")])
    return out


ITEM_NUMBERS = ("sequence_number", "next_after_sequence")


def normalized(value: Any, seen: dict[Any, str], key: str = "") -> Any:
    """``value`` with volatile fields left out and ids numbered in order of appearance."""
    if isinstance(value, dict):
        return {k: normalized(v, seen, k) for k, v in sorted(value.items())
                if k not in VOLATILE and not (isinstance(v, str) and TIMESTAMP.match(v))}
    if isinstance(value, list | tuple):
        return [normalized(v, seen, key) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and (
            key.endswith("_id") or key in ("id", "superseded_by", "depends_on")):
        return seen.setdefault((key, value), f"<{key} {len(seen)}>")
    if isinstance(value, int) and key in ITEM_NUMBERS:
        # Numbered in order of appearance too: PostgreSQL's item numbers have gaps and come
        # from one sequence for every project, so the two projects' numbers differ there.
        return seen.setdefault(("item number", value), f"<item number {len(seen)}>")
    if isinstance(value, str):
        return GLOBAL_ID.sub(lambda m: seen.setdefault(m[0], f"<id {len(seen)}>"), value)
    return value


def test_the_same_script_gives_the_same_results_locally_and_remotely(
        db: Ctxdb, server_url: str) -> None:
    local = script(db, db.projects.create("local")["project_id"])
    with ctxdb.connect(server_url, db.access_tokens.create(None, "admin")["secret"]) as fleet:
        project = fleet.projects.create("remote", idempotency_key="p1")
        assert fleet.projects.create("remote", idempotency_key="p1") == project
    token = db.access_tokens.create(project["project_id"], "write")["secret"]
    with ctxdb.connect(server_url, token) as remote:
        far = script(remote, project["project_id"])
    assert len(far) == len(local)
    for step, (mine, theirs) in enumerate(zip(local, far, strict=True)):
        assert normalized(theirs, {}) == normalized(mine, {}), f"step {step}"
    assert normalized(far, {}) == normalized(local, {})


def test_errors_are_the_local_classes(db: Ctxdb, server_url: str) -> None:
    pid = db.projects.create("p")["project_id"]
    with ctxdb.connect(server_url, "ctxdb_" + "x" * 43) as stranger, \
            pytest.raises(errors.AuthenticationError):
        stranger.projects.list()
    reader = ctxdb.connect(server_url, db.access_tokens.create(pid, "read")["secret"])
    with pytest.raises(errors.PermissionDeniedError, match="needs write"):
        reader.tasks.create(pid, "t")
    with pytest.raises(errors.ProjectNotFoundError):
        reader.tasks.list("proj_20200101_000000_000000000000")
    reader.close()
    secret = db.access_tokens.create(pid, "write")["secret"]
    with ctxdb.connect(server_url, secret) as writer, pytest.raises(errors.InvalidPriorityError):
        writer.context.store(pid, "x", "URGENT")


def test_an_unreachable_server_is_a_typed_error_soon() -> None:
    started = time.monotonic()
    with ctxdb.connect("http://127.0.0.1:9", "ctxdb_x", timeout=2) as nowhere, \
            pytest.raises(errors.DatabaseUnavailableError, match="did not answer"):
        nowhere.projects.list()
    assert time.monotonic() - started < 5


def test_an_unknown_code_is_the_class_of_its_status() -> None:
    answer = httpx.Response(409, json={"code": "from_a_newer_server", "detail": "d", "n": 1})
    error = error_of(answer)
    assert type(error) is errors.ConflictError and error.details["n"] == 1
    known = error_of(httpx.Response(404, json={"code": "task_not_found", "detail": "gone"}))
    assert type(known) is errors.TaskNotFoundError and known.message == "gone"


class LosesFirstAnswer(httpx.HTTPTransport):
    """Sends each request to the server, but loses the answer of the first create: what a
    client sees when the connection drops after the server committed."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = super().handle_request(request)
        if request.method == "POST" and not self.lost:
            answer.read()
            self.lost += 1
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return answer


def test_a_create_whose_answer_was_lost_is_sent_again_without_a_duplicate(
        db: Ctxdb, server_url: str) -> None:
    pid = db.projects.create("p")["project_id"]
    lossy = LosesFirstAnswer()
    secret = db.access_tokens.create(pid, "write")["secret"]
    with RemoteCtxdb(Transport(server_url, secret, http_transport=lossy)) as remote:
        task = remote.tasks.create(pid, "exactly once")
        assert lossy.lost == 1
    assert [t["task_id"] for t in db.tasks.list(pid)] == [task["task_id"]]
