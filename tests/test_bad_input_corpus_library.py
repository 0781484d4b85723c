"""The bad-input corpus through the library facade (see ``bad_input_corpus.py``).

Every call is a valid one with one argument poisoned: it must raise a typed ctxdb error of the
poison's category (naming the limit, for the limits), never anything else, and leave the
database as it was. Reads may accept the odd search words they are given, never fail on them.
One PostgreSQL variant runs a few of the cases: its storage errors are mapped apart.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bad_input_corpus import (
    ANY_REFUSAL,
    BAD_PRIORITY,
    CORPUS_SETTINGS,
    EXAMPLES,
    POSTGRES_EXAMPLES,
    Poison,
    Unchanged,
    World,
    bad_content,
    bad_identifier,
    bad_instance,
    bad_limit,
    bad_number,
    bad_project,
    bad_query,
    bad_seconds,
    build_world,
    counted,
    unknown_id,
)
from ctxdb.errors import CtxdbError

Args = dict[str, Any]
Poisons = Callable[[World], st.SearchStrategy[Poison]]


def _damaged(good: bytes) -> st.SearchStrategy[Poison]:
    """A bundle damaged the ways a disk, a transfer or an editor damages one."""

    def flip(at: int, byte: int) -> Poison:
        at %= len(good)
        new = byte if byte != good[at] else (byte + 1) % 256
        return Poison(good[:at] + bytes([new]) + good[at + 1:], f"byte {at} changed")

    return st.one_of(
        st.builds(flip, st.integers(0, 10**6), st.integers(0, 255)),
        st.builds(lambda at: Poison(good[:at % len(good)], f"cut at {at % len(good)}"),
                  st.integers(0, 10**6)),
        st.builds(lambda at, junk: Poison(good[:at % len(good)] + junk + good[at % len(good):],
                                          "junk inserted"),
                  st.integers(0, 10**6), st.binary(min_size=1, max_size=20)),
        st.builds(lambda n: Poison(good.replace(b'"format_version":1',
                                                b'"format_version":' + b"9" * n, 1),
                                   f"a {n}-digit format version"), st.integers(19, 5_000)),
        st.builds(lambda data: Poison(data, "not a bundle"), st.binary(max_size=200)),
    )


def _import(world: World, data: bytes) -> Any:
    path = world.home / "case.jsonl"
    path.write_bytes(data)
    return world.db.bundles.import_bundle(path)


@dataclass(frozen=True)
class Operation:
    """A facade call: its valid arguments, and a poison for each of them."""

    name: str
    call: Callable[[World, Args], Any]
    valid: Callable[[World], Args]
    poisons: dict[str, Poisons]


def _const(strategy: st.SearchStrategy[Poison]) -> Poisons:
    return lambda _world: strategy


PROJECT = _const(bad_project())
CONTENT = _const(bad_content())
INSTANCE: Poisons = bad_instance
LIMIT = _const(bad_limit(200))
SECONDS = _const(bad_seconds())
VERSION_OR_EPOCH = _const(st.one_of(
    bad_number("n", unknown=False, low=0),
    st.builds(lambda n: Poison(n, "a version that is not the current one", ANY_REFUSAL),
              st.integers(2, 10**6))))


def _text(what: str) -> Poisons:
    return _const(bad_identifier(what).filter(lambda p: p.value != ""))


def _foreign(key: str, what: str, low: int = 1) -> Poisons:
    return lambda world: bad_number(what, foreign=world.other[key], low=low)


OPERATIONS = [
    Operation(
        "bundles.import_bundle", lambda w, a: _import(w, a["data"]),
        lambda w: {"data": w.other["bundle"]}, {"data": lambda w: _damaged(w.other["bundle"])}),
    Operation(
        "context.store",
        lambda w, a: w.db.context.store(
            a["project_id"], a["content"], a["priority"], a["content_type"], a["phase_id"],
            metadata=a["metadata"], created_by=a["created_by"], token_count=a["token_count"],
            idempotency_key=a["key"]),
        lambda w: {"project_id": w.project, "content": {"note": "fine"}, "priority": "HIGH",
                   "content_type": "note", "phase_id": w.phase, "metadata": {"m": 1},
                   "created_by": w.instance, "token_count": 10, "key": None},
        {"project_id": PROJECT, "content": CONTENT, "priority": _const(BAD_PRIORITY),
         "content_type": _const(bad_identifier("content_type")),
         "phase_id": _foreign("phase", "phase_id", low=0), "created_by": INSTANCE,
         "metadata": _const(st.one_of(st.builds(
             lambda p: Poison({"m": p.value}, p.label, p.categories, p.says), bad_content()),
             st.builds(
             lambda v: Poison(v, "metadata not an object", says="metadata"),
             st.sampled_from([[1], "text", 3])))),
         "token_count": _const(bad_number("token_count", unknown=False, low=0)),
         # An empty key is no key (a new one is made), as documented.
         "key": _const(bad_identifier("idempotency_key").filter(lambda p: p.value != ""))}),
    Operation(
        "context.get", lambda w, a: w.db.context.get(a["item_id"], a["project_id"]),
        lambda w: {"item_id": w.item, "project_id": w.project},
        {"item_id": _foreign("item", "item_id"), "project_id": PROJECT}),
    Operation(
        "context.search",
        lambda w, a: w.db.context.search(a["project_id"], a["query"], priority=a["priority"],
                                         limit=a["limit"]),
        lambda w: {"project_id": w.project, "query": "sqlite", "priority": None, "limit": 5},
        {"project_id": PROJECT, "query": _const(bad_query()),
         "priority": _const(BAD_PRIORITY), "limit": LIMIT}),
    Operation(
        "search",
        lambda w, a: w.db.search.search(a["project_id"], a["query"], kinds=a["kinds"],
                                        since=a["since"], limit=a["limit"], raw=a["raw"]),
        lambda w: {"project_id": w.project, "query": "sqlite", "kinds": ("context",),
                   "since": None, "limit": 5, "raw": False},
        {"project_id": PROJECT, "query": _const(bad_query()), "limit": LIMIT,
         "raw": _const(st.builds(lambda q: Poison(q.value, "raw " + q.label, may_succeed=True),
                                 bad_query())),
         "kinds": _const(st.builds(lambda v: Poison(v, "kinds", says="kind"),
                                   st.sampled_from([("contxt",), ("event", "x"), "ctx", ()]))),
         "since": _const(st.builds(lambda v: Poison(v, "since", says="since|time|age"),
                                   st.sampled_from(["7x", "2025-13-45", "-1d", "7 days ago",
                                                    "yesterday", "1e999d", "\x00", 3])))}),
    Operation(
        "memories.put",
        lambda w, a: w.db.memories.put(
            a["project_id"], a["namespace"], a["key"], a["value"], memory_type=a["type"],
            expected_version=a["version"], ttl_seconds=a["ttl"]),
        lambda w: {"project_id": w.project, "namespace": "user:prefs", "key": "theme",
                   "value": {"dark": False}, "type": None, "version": 1, "ttl": None},
        {"project_id": PROJECT, "value": CONTENT, "key": _const(bad_identifier("key")),
         "namespace": _const(st.one_of(bad_identifier("namespace"), st.builds(
             lambda v: Poison(v, "not a namespace path", says="namespace"),
             st.sampled_from(["a b", "::", "user:", ":x", "ü", "a/b", "a;b"])))),
         "type": _const(st.builds(lambda v: Poison(v, "memory type", says="memory type"),
                                  st.sampled_from(["longterm", "", 3]))),
         "version": VERSION_OR_EPOCH,
         "ttl": _const(bad_number("ttl_seconds", unknown=False))}),
    Operation(
        "messages.send",
        lambda w, a: w.db.messages.send(a["project_id"], "instance", a["to"], a["body"],
                                        subject=a["subject"]),
        lambda w: {"project_id": w.project, "to": w.instance, "body": {"hi": 1},
                   "subject": "s"},
        {"project_id": PROJECT, "to": INSTANCE, "body": CONTENT,
         "subject": _text("subject")}),
    Operation(
        "tasks.create",
        lambda w, a: w.db.tasks.create(a["project_id"], a["title"], priority=a["priority"],
                                       parent_task_id=a["parent"], depends_on=a["depends_on"]),
        lambda w: {"project_id": w.project, "title": "t", "priority": 5, "parent": None,
                   "depends_on": [w.task]},
        {"project_id": PROJECT, "title": _text("title"),
         "priority": _const(st.one_of(BAD_PRIORITY.filter(lambda p: not isinstance(p.value,
                                                                                   int)),
                                      st.builds(lambda n: Poison(n, "task priority",
                                                                 says="priority"),
                                                st.integers(10**6 + 1, 2**90)))),
         "parent": _foreign("task", "parent_task_id"),
         "depends_on": lambda w: st.one_of(
             st.builds(lambda p: Poison([w.task, p.value], "depends_on " + p.label,
                                        p.categories),
                       bad_number("depends_on", foreign=w.other["task"])),
             st.just(Poison("12", "depends_on a string", says="depends_on")),
             st.just(Poison(list(range(1, 1_002)), "too many dependencies",
                            says="at most 1000")))}),
    Operation(
        "tasks.claim",
        lambda w, a: w.db.tasks.claim(a["project_id"], a["instance"], a["lease"]),
        lambda w: {"project_id": w.project, "instance": w.instance, "lease": 60.0},
        {"project_id": PROJECT, "instance": INSTANCE, "lease": SECONDS}),
    Operation(
        "tasks.complete",
        lambda w, a: w.db.tasks.complete(a["task"], a["epoch"], a["result"],
                                         project_id=a["project_id"]),
        lambda w: {"task": w.task, "epoch": 1, "result": {"ok": True},
                   "project_id": w.project},
        {"task": _foreign("task", "task_id"), "epoch": VERSION_OR_EPOCH, "result": CONTENT,
         "project_id": PROJECT}),
    Operation(
        "approvals.request",
        lambda w, a: w.db.approvals.request(a["project_id"], a["type"], a["request"],
                                            title=a["title"], phase_id=a["phase"],
                                            instance_id=a["instance"]),
        lambda w: {"project_id": w.project, "type": "deploy", "request": {"plan": 2},
                   "title": "t", "phase": w.phase, "instance": w.instance},
        {"project_id": PROJECT, "type": _const(bad_identifier("gate_type")),
         "request": CONTENT, "title": _text("title"),
         "phase": _foreign("phase", "phase_id", low=0), "instance": INSTANCE}),
    Operation(
        "approvals.approve",
        lambda w, a: w.db.approvals.approve(a["gate"], a["response"],
                                            project_id=a["project_id"]),
        lambda w: {"gate": w.gate, "response": {"ok": 1}, "project_id": w.project},
        {"gate": _foreign("gate", "gate_id"), "response": CONTENT, "project_id": PROJECT}),
    Operation(
        "checkpoints.save",
        lambda w, a: w.db.checkpoints.save(a["instance"], a["state"], label=a["label"],
                                           project_id=a["project_id"]),
        lambda w: {"instance": w.instance, "state": {"step": 2}, "label": "l",
                   "project_id": w.project},
        {"instance": INSTANCE, "state": CONTENT, "label": _text("label"),
         "project_id": PROJECT}),
    Operation(
        "checkpoints.get",
        lambda w, a: w.db.checkpoints.get(a["checkpoint"], project_id=a["project_id"]),
        lambda w: {"checkpoint": w.checkpoint, "project_id": w.project},
        {"checkpoint": _foreign("checkpoint", "checkpoint_id"), "project_id": PROJECT}),
    Operation(
        "conversations.append",
        lambda w, a: w.db.conversations.append(a["session"], a["role"], a["content"],
                                               project_id=a["project_id"]),
        lambda w: {"session": w.session, "role": "user", "content": "hi",
                   "project_id": w.project},
        {"session": lambda w: st.one_of(bad_identifier("session_id"),
                                        unknown_id("sess_", "session")),
         "role": _const(st.builds(lambda v: Poison(v, "role", says="role"),
                                  st.sampled_from(["robot", "", "USERS", 1]))),
         "content": CONTENT, "project_id": PROJECT}),
]


def cases(world: World,
          operations: list[Operation]) -> st.SearchStrategy[tuple[Operation, str, Poison]]:
    """Every operation with each of its arguments poisoned in turn (strategies built once)."""
    return st.one_of([st.tuples(st.just(operation), st.just(argument), poisons(world))
                      for operation in operations
                      for argument, poisons in sorted(operation.poisons.items())])


def run_case(world: World, case: tuple[Operation, str, Poison]) -> Callable[[], None]:
    """Run the case; returns the check of its outcome (run after the database's)."""
    operation, argument, poison = case
    arguments = {**operation.valid(world), argument: poison.value}
    try:
        operation.call(world, arguments)
    except CtxdbError as error:
        return functools.partial(poison.check, error)

    def accepted() -> None:
        assert poison.may_succeed, f"{operation.name}({argument}={poison.label}) was accepted"

    return accepted


def drive(world: World, examples: int, entry_point: str) -> None:
    unchanged = Unchanged(world.db)
    count = counted(entry_point)
    ran = 0

    @settings(CORPUS_SETTINGS, max_examples=examples)
    @given(case=cases(world, OPERATIONS))
    def corpus(case: tuple[Operation, str, Poison]) -> None:
        nonlocal ran
        outcome = run_case(world, case)
        unchanged.check(f"{case[0].name}({case[1]}={case[2].label})")
        outcome()
        ran += 1
        count()

    corpus()
    assert ran >= examples, f"only {ran} of {examples} cases ran"


@pytest.fixture
def world(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    url = str(tmp_path / "corpus.db") if backend == "sqlite" else request.getfixturevalue(
        "make_settings")().url
    made = build_world(url, tmp_path)
    made.db.bundles.export(tmp_path / "good.jsonl")  # before the fingerprint: it may audit
    made.other["bundle"] = (tmp_path / "good.jsonl").read_bytes()
    try:
        yield made
    finally:
        made.db.close()


def test_bad_input_through_the_library_is_refused_and_changes_nothing(
        world: World, backend: str) -> None:
    drive(world, EXAMPLES["library"] if backend == "sqlite" else POSTGRES_EXAMPLES,
          "library" if backend == "sqlite" else "library (PostgreSQL)")
