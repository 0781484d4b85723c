"""The bad-input corpus's shared parts: one world per test, the fingerprint that proves bad
input changed nothing, the poisons (Hypothesis strategies of values that must be refused) and
the count of generated cases.

The corpus drives generated bad input through the four entry points (the library facade, the
CLI, the hook and the MCP server: ``test_bad_input_corpus_*.py``), at least ``sum(EXAMPLES)``
cases per run; ``conftest.py`` prints how many ran. Each case is a valid call with one of its
arguments replaced by a poison. A poison says which error categories (``ctxdb.errors``) may
answer it and, for the limits, words the message must hold; a poison that a read may accept
(odd search words) says so. Bad input changes nothing, so one database serves a whole test
function: the fingerprint taken after every case must equal the one taken before the first.
"""

from __future__ import annotations

import hashlib
import math
import re
import reprlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ctxdb.errors import CtxdbError
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings

# Examples per entry point: together at least 10,000 generated cases per run. Each test
# checks that its share really ran (Hypothesis stops early when a strategy runs out).
EXAMPLES = {"library": 4_000, "cli": 1_600, "hook": 2_600, "mcp": 2_000}
assert sum(EXAMPLES.values()) >= 10_000, "the corpus promises 10,000 cases a run"
POSTGRES_EXAMPLES = 150
# How many cases ran in this process, per entry point (printed by conftest.py).
RAN: Counter[str] = Counter()
MAX_CONTENT_BYTES = 4_000
LONG = 100_001  # characters: over every text and identifier limit
CORPUS_SETTINGS = settings(
    deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example],
)

INVALID = frozenset({"invalid"})
NOT_FOUND = frozenset({"not_found"})
INVALID_OR_NOT_FOUND = INVALID | NOT_FOUND
# A well-formed value that the state refuses (a wrong version, a stale epoch) is a conflict.
ANY_REFUSAL = INVALID | NOT_FOUND | frozenset({"conflict"})


class Poison:
    """A bad value for one argument: the error categories that may answer it, words the
    message must hold (the limit it names), and whether a read may accept it instead.
    (A plain class: Hypothesis prints a failing case's dataclasses field by field, and a
    poison's value may be 100 kB.)"""

    def __init__(self, value: Any, label: str, categories: frozenset[str] = INVALID,
                 says: str = "", may_succeed: bool = False) -> None:
        self.value = value
        self.label = label
        self.categories = categories
        self.says = says
        self.may_succeed = may_succeed

    def __repr__(self) -> str:  # short: Hypothesis prints the failing case
        return f"Poison({self.label!r}, {reprlib.repr(self.value)})"

    def check(self, error: CtxdbError) -> None:
        assert error.category in self.categories, (
            f"{self.label}: {type(error).__name__} ({error.category}) {error.message!r}")
        assert error.message and "internal error" not in error.message
        if self.says:
            assert re.search(self.says, error.message), f"{self.label}: {error.message!r}"


# --- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    """A project with one of everything, and another project whose ids are foreign to it."""

    db: Ctxdb
    settings: Settings
    home: Path
    project: str
    phase: int
    instance: str
    item: int
    task: int
    gate: int
    checkpoint: int
    message: int
    session: str
    other: dict[str, Any] = field(default_factory=dict)


def corpus_settings(url: str, home: Path) -> Settings:
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    return load_settings(env=env, url=url, actor="user:test", auto_migrate=True,
                         max_content_bytes=MAX_CONTENT_BYTES)


def _populate(db: Ctxdb, name: str) -> dict[str, Any]:
    project = db.projects.create(name)["project_id"]
    phase = db.phases.create(project, 1, "Build")["phase_id"]
    instance = db.instances.launch(project)["instance_id"]
    return {
        "project": project, "phase": phase, "instance": instance,
        "item": db.context.store(project, {"decision": "use sqlite"}, "HIGH")["item_id"],
        "task": db.tasks.create(project, "write the parser")["task_id"],
        "gate": db.approvals.request(project, "deploy", {"plan": 1})["gate_id"],
        "checkpoint": db.checkpoints.save(instance, {"step": 1})["checkpoint_id"],
        "message": db.messages.send(project, "broadcast", None, "hello")["message_id"],
        "session": db.conversations.create(project, "app", "user")["session_id"],
    }


def build_world(url: str, home: Path) -> World:
    settings_ = corpus_settings(url, home)
    db = Ctxdb.open(settings_)
    ours = _populate(db, "corpus")
    db.memories.put(ours["project"], "user:prefs", "theme", {"dark": True})
    other = _populate(db, "someone else's")
    return World(db=db, settings=settings_, home=home, other=other, **ours)


# --- the fingerprint ---------------------------------------------------------------------------

_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
    "postgres": "SELECT table_name AS name FROM information_schema.tables "
                "WHERE table_schema = current_schema() ORDER BY table_name",
}


@dataclass(frozen=True)
class Fingerprint:
    """The content hash of every table (rows in any order) and the audit log's row count."""

    sha256: str
    audit_rows: int


def table_names(db: Ctxdb) -> list[str]:
    return db.storage.read(lambda tx: [row["name"] for row in
                                       tx.all_raw(_TABLES[db.storage.dialect.name], {})])


def fingerprint(db: Ctxdb, names: list[str] | None = None) -> Fingerprint:
    names = table_names(db) if names is None else names

    def unit(tx: Any) -> Fingerprint:
        digest = hashlib.sha256()
        audit_rows = -1
        for name in names:
            rows = sorted(repr(tuple(row.values())) for row in
                          tx.all_raw(f'SELECT * FROM "{name}"', {}))
            digest.update(f"{name}:{len(rows)}:".encode())
            digest.update("\n".join(rows).encode("utf-8", "backslashreplace"))
            if name == "audit_log":
                audit_rows = len(rows)
        assert audit_rows >= 0, "no audit_log table"
        return Fingerprint(digest.hexdigest(), audit_rows)

    result: Fingerprint = db.storage.read(unit)
    return result


class Unchanged:
    """Asserts after each case that the database is as it was before the first."""

    def __init__(self, db: Ctxdb) -> None:
        self.db = db
        self.names = table_names(db)
        # On SQLite a search first gives the documents waiting for their index terms theirs
        # (derived rows, written once): given here, so that a case's search changes nothing.
        db.search.index_status()
        self.before = fingerprint(db, self.names)

    def check(self, what: str) -> None:
        assert table_names(self.db) == self.names, f"{what}: a table came or went"
        after = fingerprint(self.db, self.names)
        before, self.before = self.before, after  # one change fails one case, not the rest
        assert after.audit_rows == before.audit_rows, f"{what}: an audit row was written"
        assert after == before, f"{what}: the database changed"


def counted(entry_point: str) -> Callable[[], None]:
    """A function to call once per case; ``RAN`` is what conftest.py prints."""

    def count() -> None:
        RAN[entry_point] += 1

    return count


# --- poisons -----------------------------------------------------------------------------------


def deep(levels: int, as_object: bool, leaf: Any = 1) -> Any:
    """A value nested ``levels`` deep, built without recursion."""
    value = leaf
    for _ in range(levels):
        value = {"k": value} if as_object else [value]
    return value


def too_deep(most: int = 3_000) -> st.SearchStrategy[Poison]:
    return st.builds(
        lambda levels, as_object: Poison(deep(levels, as_object), f"nested {levels}",
                                         says="nested deeper than the limit of 100 levels"),
        st.integers(101, most), st.booleans())


def _wrap(inner: Any, how: int) -> Any:
    """``inner`` placed a little way into a JSON value (so bad parts hide inside good ones)."""
    return [inner, inner] if how == 0 else {"x": [1, {"y": inner}]} if how == 1 else inner


ODD_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)


def text_with(bad: str) -> st.SearchStrategy[str]:
    return st.builds(lambda a, b: a + bad + b, ODD_TEXT, ODD_TEXT)


LONE_SURROGATE = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff", "\udc80"])


def _content_poisons(python_only: bool) -> list[st.SearchStrategy[Poison]]:
    """Values no JSON column may hold; ``python_only`` adds those only Python can pass (and
    nesting deeper than ``json.dumps`` writes)."""
    found = [
        too_deep(3_000 if python_only else 600),
        st.builds(lambda text, how: Poison(_wrap(text, how), "NUL in content",
                                           says="NUL character"), text_with("\x00"),
                  st.integers(0, 2)),
        st.builds(lambda s, text, how: Poison(_wrap(text + s, how), "lone surrogate",
                                              says="lone surrogate"),
                  LONE_SURROGATE, ODD_TEXT, st.integers(0, 2)),
        st.builds(lambda size: Poison("x" * size, f"{size} characters", says="over the limit "
                                      f"of {MAX_CONTENT_BYTES} bytes"),
                  st.integers(MAX_CONTENT_BYTES, 3 * MAX_CONTENT_BYTES)),
    ]
    if python_only:
        found += [
            st.builds(lambda value, how: Poison(_wrap(value, how), "not JSON",
                                                says="not JSON-serializable"),
                      st.sampled_from([math.nan, math.inf, -math.inf, {1, 2}, b"raw",
                                       object(), 1j, frozenset()]), st.integers(0, 2)),
            st.builds(lambda digits, how: Poison(_wrap(7 * (10**digits - 1) // 9, how),
                                                 f"{digits}-digit integer", says="4300"),
                      st.integers(4_301, 6_000), st.integers(0, 2)),
        ]
    return found


def bad_content(python_only: bool = True) -> st.SearchStrategy[Poison]:
    return st.one_of(_content_poisons(python_only))


def _bad_strings(what: str, categories: frozenset[str] = INVALID) -> list[
        st.SearchStrategy[Poison]]:
    return [
        st.builds(lambda text: Poison(text, f"NUL in {what}", categories, "NUL"),
                  text_with("\x00")),
        st.builds(lambda s, text: Poison(text + s, f"surrogate in {what}", categories,
                                         "lone surrogate"), LONE_SURROGATE, ODD_TEXT),
        st.builds(lambda n: Poison("i" * n, f"long {what}", categories, "longer than"),
                  st.sampled_from([LONG, LONG * 3])),
    ]


def _wrong_types(what: str, json_only: bool = False) -> st.SearchStrategy[Poison]:
    values: list[Any] = [7, 2**70, 1.5, True, ["x"], {"a": 1}]
    if not json_only:
        values += [b"bytes", ("t",), {"s"}]
    return st.builds(lambda v: Poison(v, f"{what} of type {type(v).__name__}"),
                     st.sampled_from(values))


def bad_identifier(what: str, json_only: bool = False) -> st.SearchStrategy[Poison]:
    """An identifier (content type, gate type, memory key, …) no row may carry."""
    return st.one_of(*_bad_strings(what), _wrong_types(what, json_only),
                     st.just(Poison("", f"empty {what}", says="must not be empty")))


def unknown_id(prefix: str, what: str) -> st.SearchStrategy[Poison]:
    # Refused as unknown, or as not the project of another argument (checked first).
    return st.builds(lambda tail: Poison(prefix + tail, f"unknown {what}", INVALID_OR_NOT_FOUND),
                     st.text("abcdef0123456789", min_size=6, max_size=24))


def bad_project(json_only: bool = False) -> st.SearchStrategy[Poison]:
    return st.one_of(bad_identifier("project_id", json_only), unknown_id("proj_", "project"))


def bad_instance(world: World, json_only: bool = False) -> st.SearchStrategy[Poison]:
    return st.one_of(bad_identifier("instance_id", json_only), unknown_id("inst_", "instance"),
                     st.just(Poison(world.other["instance"], "another project's instance",
                                    INVALID_OR_NOT_FOUND)))


def bad_number(what: str, *, foreign: int | None = None, unknown: bool = True,
               json_only: bool = False, low: int = 1) -> st.SearchStrategy[Poison]:
    """An integer argument: out of range, of another type, or naming nothing (``unknown``)
    or another project's record (``foreign``)."""
    found = [
        # Zero may be refused as out of range or as naming nothing: both are typed.
        st.builds(lambda n: Poison(n, f"{what} below {low}", INVALID_OR_NOT_FOUND,
                                   f"{what}|unknown"),
                  st.integers(max_value=low - 1)),
        st.builds(lambda n: Poison(n, f"{what} over BIGINT", says="at most|must be"),
                  st.integers(min_value=2**63, max_value=2**200)),
        st.builds(lambda v: Poison(v, f"{what} of type {type(v).__name__}", says=what),
                  st.sampled_from(["12", 2.5, True, [1]])),
    ]
    if unknown:
        found.append(st.builds(lambda n: Poison(n, f"unknown {what}", NOT_FOUND),
                               st.integers(10**9, 2**62)))
    if foreign is not None:
        found.append(st.just(Poison(foreign, f"another project's {what}", NOT_FOUND)))
    return st.one_of(found)


def bad_limit(maximum: int, json_only: bool = False) -> st.SearchStrategy[Poison]:
    return st.one_of(
        st.builds(lambda n: Poison(n, "limit", says="limit|at least|greater|less"),
                  st.one_of(st.integers(max_value=0), st.integers(maximum + 1, 2**80))),
        st.builds(lambda v: Poison(v, "limit of another type"),
                  st.sampled_from(["5", 2.5, True] if json_only else ["5", 2.5, True, None])))


def bad_seconds(json_only: bool = False) -> st.SearchStrategy[Poison]:
    values: list[Any] = [0, -1, -0.5, 10**12, 1e300, "30", True]
    if not json_only:
        values += [math.nan, math.inf, -math.inf, None]
    return st.builds(lambda v: Poison(v, f"seconds {v!r}"), st.sampled_from(values))


BAD_PRIORITY = st.builds(
    lambda text: Poison(text, "priority", says="priority"),
    st.text(max_size=12).filter(lambda t: t.upper() not in
                                ("CRITICAL", "HIGH", "MEDIUM", "LOW")))


def odd_query() -> st.SearchStrategy[Poison]:
    """Search words a read may answer (found or not) or refuse, but never fail on."""
    syntax = st.text(alphabet='"()*:^+-{}, NEARANDORNOT\\\'abc.;-_#@!&|~/', max_size=40)
    return st.one_of(
        st.builds(lambda q: Poison(q, "odd query", may_succeed=True), syntax),
        st.builds(lambda q: Poison(q, "odd text", may_succeed=True), ODD_TEXT),
        st.builds(lambda n: Poison("word " * n, "many words", may_succeed=True),
                  st.integers(30, 199)),
    )


def bad_query() -> st.SearchStrategy[Poison]:
    return st.one_of(odd_query(), *_bad_strings("query"),
                     st.just(Poison("q" * 1_001, "query over 1000", says="longer than")))
