"""Every kind of bad input gets its typed error, naming the problem, and changes nothing.

One small world (an active and an archived project, a phase, an instance, an item) is built
per backend and shared by all cases: each case compares the whole database before and after,
so a case that changed something fails itself and cannot hide behind the next one.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from ctxdb.errors import (
    ContentTooLargeError,
    CtxdbError,
    InstanceNotFoundError,
    InvalidContentError,
    InvalidIdentifierError,
    InvalidPriorityError,
    InvalidStatusError,
    PhaseNotFoundError,
    ProjectNotFoundError,
    TokenUsageOutOfRangeError,
    TooManyInstancesError,
    TooManyProjectsError,
    ValidationError,
)
from ctxdb.service import Ctxdb
from ctxdb.settings import load_settings
from ctxdb.storage import Tx

MAX_CONTENT_BYTES = 1_000
WINDOW = 5_000
LIST_TABLES = {
    "sqlite": "SELECT group_concat(name) AS names FROM sqlite_master "
              "WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    "postgres": "SELECT string_agg(table_name, ',') AS names FROM information_schema.tables "
                "WHERE table_schema = current_schema()",
}


@dataclass
class World:
    db: Ctxdb
    project: str
    archived: str
    phase: int
    instance: str
    item: int


def build_world(url: str, home: Path) -> World:
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    settings = load_settings(env=env, url=url, actor="user:test", auto_migrate=True,
                             max_content_bytes=MAX_CONTENT_BYTES, max_projects=1,
                             max_instances_per_project=1)
    db = Ctxdb.open(settings)
    archived = db.projects.create("archived")["project_id"]
    db.projects.archive(archived)  # archived projects leave room under the limit
    project = db.projects.create("active")["project_id"]
    phase = db.phases.create(project, 1, "Build")["phase_id"]
    instance = db.instances.launch(project, context_window=WINDOW)["instance_id"]
    item = db.context.store(project, {"k": "v"}, "HIGH", created_by=instance)["item_id"]
    return World(db, project, archived, phase, instance, item)


class Worlds:
    """One world per backend, built on first use in a database of its own."""

    def __init__(self, folder: Path, request: pytest.FixtureRequest) -> None:
        self.folder = folder
        self.request = request
        self.built: dict[str, World] = {}
        self.databases: list[tuple[str, str]] = []  # (server URL, database name) to drop

    def get(self, backend: str) -> World:
        if backend not in self.built:
            self.built[backend] = build_world(self._new_database(backend), self.folder)
        return self.built[backend]

    def _new_database(self, backend: str) -> str:
        if backend == "sqlite":
            return str(self.folder / "bad_input.db")
        import psycopg

        server = self.request.getfixturevalue("pg_url")
        name = f"ctxdb_bad_input_{os.getpid()}_{secrets.token_hex(3)}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        self.databases.append((server, name))
        return urlunsplit(urlsplit(server)._replace(path="/" + name))

    def close(self) -> None:
        for world in self.built.values():
            world.db.close()
        for server, name in self.databases:
            import psycopg

            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Worlds]:
    made = Worlds(tmp_path_factory.mktemp("bad_input"), request)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def world(backend: str, worlds: Worlds) -> World:
    return worlds.get(backend)


def snapshot(world: World) -> dict[str, Any]:
    """Row counts of every table, the audit log and every entity of the world."""
    db = world.db

    def counts(tx: Tx) -> dict[str, int]:
        names = (tx.one_raw(LIST_TABLES[db.storage.dialect.name], {}) or {})["names"]
        return {table: (tx.one_raw(f"SELECT count(*) AS n FROM {table}", {}) or {})["n"]
                for table in sorted(names.split(","))}

    return {
        "counts": db.storage.read(counts),
        "audit": db.audit_log(limit=1_000),
        "projects": db.projects.list(include_archived=True),
        "phases": db.phases.list(world.project),
        "instances": db.instances.list(),
        "item": db.context.get(world.item),
        "full": db.context.full(world.project),
    }


class Unserializable:
    pass


Case = tuple[str, Callable[[World], Any], type[CtxdbError], str]


def deep(levels: int) -> list[Any]:
    """A list nested ``levels`` deep, built without recursion."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


CASES: list[Case] = [
    # unknown things
    ("unknown project: store", lambda w: w.db.context.store("proj_void", "x"),
     ProjectNotFoundError, "unknown project 'proj_void'"),
    ("unknown project: launch", lambda w: w.db.instances.launch("proj_void"),
     ProjectNotFoundError, "proj_void"),
    ("unknown project: phase", lambda w: w.db.phases.create("proj_void", 1, "x"),
     ProjectNotFoundError, "proj_void"),
    ("unknown project: update", lambda w: w.db.projects.update("proj_void", name="x"),
     ProjectNotFoundError, "proj_void"),
    ("unknown instance: heartbeat", lambda w: w.db.instances.heartbeat("inst_ghost"),
     InstanceNotFoundError, "unknown instance 'inst_ghost'"),
    ("unknown instance: usage", lambda w: w.db.tokens.update_usage("inst_ghost", 1),
     InstanceNotFoundError, "inst_ghost"),
    ("unknown instance: created_by",
     lambda w: w.db.context.store(w.project, "x", created_by="inst_ghost"),
     InstanceNotFoundError, "inst_ghost"),
    ("unknown phase: store", lambda w: w.db.context.store(w.project, "x", phase_id=987654),
     PhaseNotFoundError, "unknown phase 987654"),
    ("unknown phase: start", lambda w: w.db.phases.start(987654),
     PhaseNotFoundError, "987654"),
    ("unknown phase: launch", lambda w: w.db.instances.launch(w.project, 987654),
     PhaseNotFoundError, "987654"),
    # priorities and statuses
    ("invalid priority", lambda w: w.db.context.store(w.project, "x", "URGENT"),
     InvalidPriorityError, "invalid priority 'URGENT'"),
    ("priority of the wrong type", lambda w: w.db.context.store(w.project, "x", 1),  # type: ignore[arg-type]
     InvalidPriorityError, "expected one of CRITICAL, HIGH, MEDIUM, LOW"),
    ("invalid priority: page", lambda w: w.db.context.page(w.project, "urgent"),
     InvalidPriorityError, "urgent"),
    ("invalid status", lambda w: w.db.instances.set_status(w.instance, "sleeping"),
     InvalidStatusError, "invalid InstanceStatus 'sleeping'"),
    ("invalid status: list", lambda w: w.db.instances.list(status="zombie"),
     InvalidStatusError, "zombie"),
    # token usage
    ("usage over the window", lambda w: w.db.tokens.update_usage(w.instance, WINDOW + 1),
     TokenUsageOutOfRangeError, f"{WINDOW + 1} is outside 0..{WINDOW}"),
    ("negative usage", lambda w: w.db.tokens.update_usage(w.instance, -1),
     TokenUsageOutOfRangeError, "-1 is outside"),
    ("usage not an integer", lambda w: w.db.tokens.update_usage(w.instance, 2.5),  # type: ignore[arg-type]
     TokenUsageOutOfRangeError, "must be an integer"),
    # content that cannot be stored
    ("content: a set", lambda w: w.db.context.store(w.project, {1, 2}),
     InvalidContentError, "content is not JSON-serializable"),
    ("content: an object", lambda w: w.db.context.store(w.project, Unserializable()),
     InvalidContentError, "content is not JSON-serializable"),
    ("content: NaN", lambda w: w.db.context.store(w.project, {"x": float("nan")}),
     InvalidContentError, "content is not JSON-serializable"),
    ("content: infinity", lambda w: w.db.context.store(w.project, [float("inf")]),
     InvalidContentError, "content is not JSON-serializable"),
    ("content: bytes", lambda w: w.db.context.store(w.project, b"raw"),
     InvalidContentError, "content is not JSON-serializable"),
    ("content: NUL character", lambda w: w.db.context.store(w.project, "a\x00b"),
     InvalidContentError, "content contains a NUL character"),
    ("content: NUL in a key", lambda w: w.db.context.store(w.project, {"k\x00": 1}),
     InvalidContentError, "NUL character"),
    ("content: lone surrogate", lambda w: w.db.context.store(w.project, "\ud800"),
     InvalidContentError, "lone surrogate"),
    ("content: too large", lambda w: w.db.context.store(w.project, "x" * MAX_CONTENT_BYTES),
     ContentTooLargeError, f"over the limit of {MAX_CONTENT_BYTES} bytes"),
    # JSON over the limits (validation.MAX_JSON_DEPTH), whatever the entry point
    ("content: nested too deep", lambda w: w.db.context.store(w.project, deep(5_000)),
     InvalidContentError, "content is nested deeper than the limit of 100 levels"),
    ("content: 101 levels", lambda w: w.db.context.store(w.project, deep(101)),
     InvalidContentError, "nested deeper than the limit of 100 levels"),
    ("metadata: nested too deep",
     lambda w: w.db.context.store(w.project, "x", metadata={"m": deep(500)}),
     InvalidContentError, "metadata is nested deeper than the limit"),
    ("supersede: nested too deep", lambda w: w.db.context.supersede(w.item, deep(2_000)),
     InvalidContentError, "nested deeper than the limit"),
    ("memory: nested too deep",
     lambda w: w.db.memories.put(w.project, "notes", "k", deep(2_000)),
     InvalidContentError, "nested deeper than the limit"),
    ("checkpoint: nested too deep", lambda w: w.db.checkpoints.save(w.instance, deep(2_000)),
     InvalidContentError, "nested deeper than the limit"),
    ("message: nested too deep",
     lambda w: w.db.messages.send(w.project, "broadcast", None, deep(2_000)),
     InvalidContentError, "nested deeper than the limit"),
    ("approval: nested too deep",
     lambda w: w.db.approvals.request(w.project, "deploy", deep(2_000)),
     InvalidContentError, "nested deeper than the limit"),
    ("metadata: a set", lambda w: w.db.context.store(w.project, "x", metadata={"s": {1}}),
     InvalidContentError, "metadata is not JSON-serializable"),
    ("metadata: not an object", lambda w: w.db.context.store(w.project, "x", metadata=[1]),  # type: ignore[arg-type]
     ValidationError, "metadata must be a JSON object"),
    ("supersede: too large",
     lambda w: w.db.context.supersede(w.item, "y" * MAX_CONTENT_BYTES),
     ContentTooLargeError, "over the limit"),
    ("handoff: next steps not JSON",
     lambda w: w.db.tokens.clear_and_reload(w.instance, next_steps=[{1}]),
     InvalidContentError, "next_steps is not JSON-serializable"),
    # NUL bytes in identifiers
    ("NUL in project id", lambda w: w.db.context.store("proj\x00x", "x"),
     InvalidIdentifierError, "project_id contains a NUL byte"),
    ("NUL in instance id", lambda w: w.db.instances.launch(w.project, instance_id="i\x00"),
     InvalidIdentifierError, "instance_id contains a NUL byte"),
    ("NUL in instance id: heartbeat", lambda w: w.db.instances.heartbeat("inst\x00"),
     InvalidIdentifierError, "instance_id contains a NUL byte"),
    ("NUL in content type", lambda w: w.db.context.store(w.project, "x", "HIGH", "co\x00de"),
     InvalidIdentifierError, "content_type contains a NUL byte"),
    ("NUL in idempotency key",
     lambda w: w.db.context.store(w.project, "x", idempotency_key="k\x00"),
     InvalidIdentifierError, "idempotency_key contains a NUL byte"),
    ("NUL in created_by", lambda w: w.db.context.store(w.project, "x", created_by="i\x00"),
     InvalidIdentifierError, "created_by contains a NUL byte"),
    ("NUL in project name", lambda w: w.db.projects.update(w.project, name="a\x00"),
     InvalidIdentifierError, "project name contains a NUL byte"),
    ("NUL in description", lambda w: w.db.projects.update(w.project, description="a\x00"),
     ValidationError, "description contains a NUL byte"),
    ("NUL in branch", lambda w: w.db.instances.launch(w.project, branch="main\x00"),
     ValidationError, "branch contains a NUL byte"),
    ("lone surrogate in project name", lambda w: w.db.projects.create("x\ud800"),
     InvalidIdentifierError, "project name contains a lone surrogate character"),
    ("lone surrogate in instance id", lambda w: w.db.instances.get("inst\udfff"),
     InvalidIdentifierError, "instance_id contains a lone surrogate character"),
    ("lone surrogate in description",
     lambda w: w.db.projects.update(w.project, description="\ud800"),
     ValidationError, "description contains a lone surrogate character"),
    ("lone surrogate in summary",
     lambda w: w.db.tokens.clear_and_reload(w.instance, summary="\ud800"),
     ValidationError, "summary contains a lone surrogate character"),
    ("NUL in actor", lambda w: w.db.projects.update(w.project, name="y", actor="user:\x00"),
     InvalidIdentifierError, "actor contains a NUL byte"),
    ("NUL in actor: delete", lambda w: w.db.context.delete(w.item, actor="user:\x00"),
     InvalidIdentifierError, "actor contains a NUL byte"),
    ("lone surrogate in actor",
     lambda w: w.db.instances.heartbeat(w.instance, actor="\ud800"),
     InvalidIdentifierError, "actor contains a lone surrogate character"),
    ("actor not a string", lambda w: w.db.phases.start(w.phase, actor=7),  # type: ignore[arg-type]
     InvalidIdentifierError, "actor must be a string"),
    ("project id not a string", lambda w: w.db.context.store(42, "x"),  # type: ignore[arg-type]
     InvalidIdentifierError, "project_id must be a string"),
    # limits
    ("too many instances", lambda w: w.db.instances.launch(w.project),
     TooManyInstancesError, "already has 1 live instances, the limit is 1"),
    ("too many instances: load",
     lambda w: w.db.context.load_for_instance("inst_new", w.project),
     TooManyInstancesError, "max_instances_per_project"),
    ("too many projects", lambda w: w.db.projects.create("one more"),
     TooManyProjectsError, "already 1 projects, the limit is 1"),
    # empty names and other bad values
    ("empty project name", lambda w: w.db.projects.create(""),
     InvalidIdentifierError, "project name must not be empty"),
    ("blank project name", lambda w: w.db.projects.update(w.project, name="   "),
     InvalidIdentifierError, "project name must not be empty"),
    ("empty phase name", lambda w: w.db.phases.create(w.project, 2, ""),
     InvalidIdentifierError, "phase name must not be empty"),
    ("empty content type", lambda w: w.db.context.store(w.project, "x", "HIGH", ""),
     InvalidIdentifierError, "content_type must not be empty"),
    ("empty instance id", lambda w: w.db.instances.get(""),
     InvalidIdentifierError, "instance_id must not be empty"),
    ("negative phase number", lambda w: w.db.phases.create(w.project, -1, "x"),
     ValidationError, "phase_number must not be negative"),
    ("negative story points", lambda w: w.db.projects.create("x", total_story_points=-3),
     ValidationError, "total_story_points must not be negative"),
    ("negative token count", lambda w: w.db.context.store(w.project, "x", token_count=-1),
     ValidationError, "token_count must not be negative"),
    ("zero context window", lambda w: w.db.instances.launch(w.project, context_window=0),
     ValidationError, "context_window must be at least 1"),
    ("item id not an integer", lambda w: w.db.context.get("1"),  # type: ignore[arg-type]
     ValidationError, "item_id must be an integer"),
    # integers the databases cannot hold: refused alike on both backends
    ("context window over INTEGER",
     lambda w: w.db.instances.launch(w.project, context_window=2**31),
     ValidationError, "context_window must be at most 2147483647"),
    ("token count over INTEGER",
     lambda w: w.db.context.store(w.project, "x", token_count=2**31),
     ValidationError, "token_count must be at most 2147483647"),
    ("phase number over INTEGER", lambda w: w.db.phases.create(w.project, 2**31, "x"),
     ValidationError, "phase_number must be at most 2147483647"),
    ("story points over INTEGER",
     lambda w: w.db.projects.update(w.project, completed_story_points=2**40),
     ValidationError, "completed_story_points must be at most 2147483647"),
    ("item id over BIGINT", lambda w: w.db.context.get(2**63),
     ValidationError, "item_id must be at most 9223372036854775807"),
    ("phase id over BIGINT", lambda w: w.db.context.store(w.project, "x", phase_id=2**70),
     ValidationError, "phase_id must be at most"),
    ("description too long",
     lambda w: w.db.projects.update(w.project, description="d" * 10_001),
     ValidationError, "description is longer than 10000 characters"),
    ("identifier too long", lambda w: w.db.instances.get("i" * 201),
     InvalidIdentifierError, "longer than 200 characters"),
]


@pytest.mark.parametrize(("what", "call", "error", "message"), CASES,
                         ids=[case[0] for case in CASES])
def test_bad_input_is_refused_and_changes_nothing(
    world: World, what: str, call: Callable[[World], Any], error: type[CtxdbError],
    message: str,
) -> None:
    before = snapshot(world)
    with pytest.raises(error, match=re.escape(message)) as raised:
        call(world)
    assert type(raised.value) is error, f"{what}: {type(raised.value).__name__}"
    assert raised.value.code == error.code
    assert raised.value.to_dict()["message"] == raised.value.message
    assert snapshot(world) == before


def test_the_snapshot_sees_a_change(world: World) -> None:
    # Guards the guard: a real write must show up in the comparison used above.
    before = snapshot(world)
    world.db.tokens.update_usage(world.instance, before["instances"][0]
                                 ["current_token_usage"] + 1)
    after = snapshot(world)
    assert after != before
    assert after["counts"]["audit_log"] == before["counts"]["audit_log"] + 1


@pytest.mark.parametrize("limit", [0, -1, 1_000_001, "5", True])
def test_audit_log_refuses_a_bad_limit(db: Ctxdb, limit: Any) -> None:
    with pytest.raises(ValidationError, match="limit"):
        db.audit_log(limit=limit)
