"""Realistic data for the bundle and db copy tests, written through the services.

Two projects with a bit of everything: phases, instances, context items with supersede and
delete (and an archived one), a clear-and-reload handoff, an agent session with its
injection, an ingested transcript (usage, compactions, observations), memories with versions,
a tombstone and a JSON null, conversation sessions and events, tasks with a parent and dependencies,
messages with deliveries, approvals, command runs, checkpoints, API tokens, and the audit
log of all of it. Values include the awkward ones: non-ASCII text, floats, nested JSON, NULLs.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from ctxdb.domain.agents import AgentSession, RepoIdentity
from ctxdb.service import Ctxdb

FIXTURES = Path(__file__).parent / "fixtures" / "claude-code"
# A main transcript with 139 API responses and a compaction boundary.
TRANSCRIPT = FIXTURES / "spotter" / "4d5611e5-241a-462a-8d15-5122611a9569.jsonl"


def populate(db: Ctxdb, workdir: Path, *, archive: bool = True) -> dict[str, Any]:
    """Fill ``db``; returns the ids the tests refer to."""
    shop = db.projects.create("Shop", "e-commerce rewrite — «naïve» café ✓", 300,
                              metadata={"team": ["ana", "bo"], "ratio": 0.25})
    blog = db.projects.create("Blog", "second project")
    pid, other = shop["project_id"], blog["project_id"]
    phase = db.phases.create(pid, 1, "design", 13)["phase_id"]
    db.phases.create(pid, 2, "build", 40)
    db.phases.start(phase)
    coder = db.instances.launch(pid, phase, instance_id="coder", metadata={"role": "coder"},
                                context_window=1000)["instance_id"]
    db.instances.launch(pid, instance_id="reviewer", metadata={"role": "reviewer"})
    db.instances.launch(other, instance_id="writer")
    _context(db, pid, other, coder)
    db.tokens.update_usage(coder, 900)
    db.tokens.auto_manage(coder, summary="cart done", next_steps=["checkout"],
                          working_set={"files": ["cart.py"]})
    _agent_session(db, workdir)
    _memories(db, pid, other)
    _conversations(db, pid)
    _tasks(db, pid, coder)
    _messages(db, pid, coder)
    _workflow(db, pid, coder)
    # API tokens (hashes only): one of the project, a revoked one, a fleet-wide one.
    db.access_tokens.create(pid, "write", name="ci ✓", ttl_seconds=86_400)
    revoked = db.access_tokens.create(other, "read")
    db.access_tokens.revoke(revoked["token_id"])
    db.access_tokens.create(None, "admin", name="operators")
    if archive:
        _archive(db, pid)
    db.audit_chain.seal()  # the hash chains over the audit log so far (audit_seals)
    return {"project_id": pid, "other_project_id": other, "instance_id": coder}


def _context(db: Ctxdb, pid: str, other: str, coder: str) -> None:
    first = db.context.store(pid, {"decision": "payments via Stripe", "cost": 1.5e-7},
                             "CRITICAL", created_by=coder)
    db.context.supersede(first["item_id"], {"decision": "payments via Adyen", "n": [1, 2.0]})
    gone = db.context.store(pid, "plain text note ✓", "LOW", content_type="note")
    db.context.delete(gone["item_id"])
    for number in range(12):
        db.context.store(pid, {"file": f"src/m{number}.py", "z": None, "a": {"b": number}},
                         ["HIGH", "MEDIUM", "LOW"][number % 3], metadata={"n": number})
    db.context.store(other, {"post": "hello"}, "HIGH")


def _agent_session(db: Ctxdb, workdir: Path) -> None:
    transcript = workdir / TRANSCRIPT.name
    shutil.copy(TRANSCRIPT, transcript)
    repo = RepoIdentity("git:example.com/acme/blog@0123456789ab", "blog", "/src/blog", "main")
    session = AgentSession("claude-code", "s-1", str(transcript), "/src/blog")
    db.sessions.start(session, "startup", repo)
    db.transcripts.ingest(transcript, session_id="s-1")  # the session's: it has observations


def _memories(db: Ctxdb, pid: str, other: str) -> None:
    db.memories.put(pid, "user:prefs", "theme", {"dark": True})
    db.memories.put(pid, "user:prefs", "theme", {"dark": False, "font": "mono"})
    db.memories.put(pid, "user:prefs", "nothing", None)
    db.memories.put(pid, "app:config", "limits", [1, 2.5, "x"], memory_type="procedural")
    db.memories.delete(pid, "app:config", "limits")
    db.memories.put(pid, "episodes", "standup", "daily", memory_type="episodic",
                    ttl_seconds=3600)
    db.memories.put(other, "user:prefs", "theme", "light")


def _conversations(db: Ctxdb, pid: str) -> None:
    chat = db.conversations.create(pid, "support", "u-1", instance_id="coder",
                                   state={"step": 1})["session_id"]
    db.conversations.append(chat, "user", {"text": "hi"})
    db.conversations.append(chat, "assistant", "hello", metadata={"model": "m"})
    db.conversations.update_state(chat, {"step": 2, "done": False})
    db.conversations.close(chat)
    db.conversations.create(pid, "support", "u-2")


def _tasks(db: Ctxdb, pid: str, coder: str) -> None:
    parent = db.tasks.create(pid, "checkout", priority=5)["task_id"]
    child = db.tasks.create(pid, "card form", parent_task_id=parent)["task_id"]
    db.tasks.create(pid, "release", depends_on=[parent, child])
    claimed = db.tasks.claim(pid, coder, 60)
    assert claimed is not None
    db.tasks.complete(claimed["task_id"], claimed["epoch"], {"ok": True, "ms": 12.5})


def _messages(db: Ctxdb, pid: str, coder: str) -> None:
    direct = db.messages.send(pid, "instance", coder, {"fix": ["a.py", 3]}, subject="bug",
                              sender="reviewer")
    db.messages.send(pid, "broadcast", None, "deploy at 5")
    db.messages.send(pid, "role", "reviewer", {"review": 42})
    db.messages.inbox(coder, 30)
    db.messages.ack(direct["message_id"], coder)
    db.messages.inbox("reviewer", 30)


def _workflow(db: Ctxdb, pid: str, coder: str) -> None:
    gate = db.approvals.request(pid, "deploy", {"env": "prod"}, title="ship it",
                                instance_id=coder)
    db.approvals.approve(gate["gate_id"], {"by": "lead"})
    db.approvals.request(pid, "plan", None)
    db.commands.record(pid, "pytest", ["-q", "tests"], exit_code=0, output="ok\n",
                       duration_ms=1200, instance_id=coder)
    db.commands.queue(pid, "make", ["bench"])
    db.checkpoints.save(coder, {"cursor": 17, "open": ["a.py"]}, label="before refactor")


def _archive(db: Ctxdb, pid: str) -> None:
    """Old MEDIUM/LOW items move to archived_context_items (``ctxdb gc``)."""
    time.sleep(1.1)
    aging = Ctxdb(db.storage, db.settings.replace(retention_context_items=1))  # not closed:
    result = aging.retention.collect(pid)  # the storage is db's
    assert result["kinds"]["context_items"]["done"] > 0, result


def assert_search_index_works(db: Ctxdb, project_id: str) -> None:
    """After a bulk load: the index agrees with the records, finds them, and keeps up with
    new writes (its triggers are on again)."""
    status = db.search.index_status()
    assert all(should == indexed for should, indexed in status.values()), status
    assert all(should > 0 for should, _indexed in status.values()), status
    assert db.search.search(project_id, "Adyen")
    added = db.context.store(project_id, {"note": "zebracorn after the load"}, "HIGH")
    hits = db.search.search(project_id, "zebracorn")
    assert [(hit["kind"], hit["id"]) for hit in hits] == [("context", added["item_id"])]
