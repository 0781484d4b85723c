"""The storage contract: what every service relies on of ``Storage`` and ``Tx``, on both backends.

Services never see a backend. They hand a unit of work (a function of a ``Tx``) to
``Storage.write``, ``read`` or ``snapshot`` and rely on this, whichever database is behind it:

- a write unit that returns is committed, once, and visible to every other connection;
- a unit that raises commits nothing, and its own exception comes out unchanged;
- a transient failure (SQLite: the database is locked; PostgreSQL: the connection died) runs
  the whole unit again from its start, on a fresh transaction that sees nothing of the
  failed attempt;
- a unique constraint refuses a change with the same typed error on both backends
  (``ConflictError``, code ``conflict``), never retried;
- a storage opened read-only refuses every write at once (a ``StorageError``, not retried)
  and still reads;
- ``Tx.defer``'d statements run in order, before any later statement and the commit, and
  one that fails fails the unit;
- ``snapshot`` sees one consistent state however many commits happen meanwhile.

Plus the static half of the contract: every named query the code uses exists in
``storage/queries/*.sql``, and every query defined there is used.
"""

from __future__ import annotations

import ast
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctxdb.errors import ConflictError, StorageError, TransientStorageError
from ctxdb.settings import Settings
from ctxdb.storage import Storage, Tx, connect_storage, open_storage
from ctxdb.storage.base import raw
from ctxdb.storage.queries import raw_queries

SRC = Path(__file__).resolve().parents[1] / "src" / "ctxdb"
PROJECT = "proj_contract"


@pytest.fixture
def storage(settings: Settings) -> Iterator[Storage]:
    with open_storage(settings) as opened:
        yield opened


@pytest.fixture
def other(storage: Storage, settings: Settings) -> Iterator[Storage]:
    """A second storage on the same database: another process, as far as the first knows."""
    with connect_storage(settings) as second:
        yield second


def add_project(tx: Tx, project_id: str = PROJECT) -> None:
    tx.execute("insert_project", project_id=project_id, name=project_id, description="",
               total_story_points=0, repo_key=None, metadata="{}")


def add_phase(tx: Tx, number: int, name: str = "phase") -> None:
    tx.one("insert_phase", project_id=PROJECT, phase_number=number, name=name,
           description="", story_points=0, metadata="{}")


def phase_names(store: Storage) -> list[str]:
    rows = store.read(lambda tx: tx.all("list_phases", project_id=PROJECT))
    return [str(row["name"]) for row in rows]


def audit_row(action: str, actor: str | None = "user:contract") -> dict[str, Any]:
    return {"actor": actor, "action": action, "entity_type": "contract", "entity_id": "1",
            "project_id": None, "details": "{}"}


def audited(tx: Tx) -> list[str]:
    rows = tx.all("list_audit", project_id="", entity_id="1", limit=100)
    return [str(row["action"]) for row in rows if row["entity_type"] == "contract"]


def fail_transiently(store: Storage, tx: Tx, settings: Settings) -> None:
    """Make the backend's own transient failure happen inside the unit ``tx`` belongs to."""
    if store.dialect.name == "sqlite":
        # Another connection that may not wait for the write lock this unit holds: SQLite's
        # busy error, raised by the driver as any locked database raises it.
        intruder = sqlite3.connect(settings.sqlite_path, timeout=0, isolation_level=None)
        try:
            intruder.execute("BEGIN IMMEDIATE")
        finally:
            intruder.close()
    else:
        # The server ends this unit's connection (admin_shutdown, 57P01) mid-transaction.
        raw(tx).one_raw("SELECT pg_terminate_backend(pg_backend_pid())", {})
    raise AssertionError("the backend did not fail")


# --- commit once, roll back on error ---------------------------------------------------------


def test_a_write_that_returns_is_committed_once_and_seen_by_every_connection(
        storage: Storage, other: Storage) -> None:
    runs: list[int] = []

    def unit(tx: Tx) -> str:
        runs.append(1)
        add_project(tx)
        add_phase(tx, 1, "first")
        return "done"

    assert storage.write(unit) == "done"
    assert runs == [1]
    assert phase_names(other) == ["first"]
    assert other.read_one("get_project", project_id=PROJECT) is not None


def test_a_unit_that_raises_commits_nothing_and_its_error_comes_out_unchanged(
        storage: Storage, other: Storage) -> None:
    storage.write(add_project)

    class Refused(Exception):
        pass

    def unit(tx: Tx) -> None:
        add_phase(tx, 1, "never")
        tx.defer("insert_audit", **audit_row("contract.never"))
        raise Refused("a rule said no")

    with pytest.raises(Refused, match="a rule said no"):
        storage.write(unit)
    assert phase_names(other) == [] and phase_names(storage) == []
    assert other.read(audited) == []
    storage.write(lambda tx: add_phase(tx, 1, "after"))  # the connection is usable again
    assert phase_names(other) == ["after"]


# --- retry of transient errors as a whole unit -----------------------------------------------


def test_a_transient_failure_runs_the_whole_unit_again_on_a_fresh_transaction(
        storage: Storage, other: Storage, settings: Settings) -> None:
    storage.write(add_project)
    attempts: list[list[str]] = []

    def unit(tx: Tx) -> int:
        attempts.append(phase_names_in(tx))
        add_phase(tx, 1, f"attempt {len(attempts)}")
        if len(attempts) == 1:
            fail_transiently(storage, tx, settings)
        return len(attempts)

    assert storage.write(unit) == 2
    # The second attempt started from the beginning and saw nothing of the first one.
    assert attempts == [[], []]
    assert phase_names(other) == ["attempt 2"]


def test_a_transient_failure_every_time_is_reported_as_transient(
        storage: Storage, other: Storage, settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ctxdb.storage import retry

    monkeypatch.setattr(retry, "MAX_ATTEMPTS", 2)
    storage.write(add_project)
    runs: list[int] = []

    def unit(tx: Tx) -> None:
        runs.append(1)
        add_phase(tx, len(runs))
        fail_transiently(storage, tx, settings)

    with pytest.raises(TransientStorageError):
        storage.write(unit)
    assert runs == [1, 1] and phase_names(other) == []


def phase_names_in(tx: Tx) -> list[str]:
    return [str(row["name"]) for row in tx.all("list_phases", project_id=PROJECT)]


# --- unique violations, read-only refusal ----------------------------------------------------


def test_a_unique_violation_is_the_same_typed_error_on_every_backend(
        storage: Storage, other: Storage) -> None:
    storage.write(lambda tx: (add_project(tx), add_phase(tx, 1, "first")))
    runs: list[int] = []

    def duplicate(tx: Tx) -> None:
        runs.append(1)
        add_phase(tx, 2, "second")
        add_phase(tx, 1, "the same number again")  # UNIQUE (project_id, phase_number)

    with pytest.raises(ConflictError) as refused:
        storage.write(duplicate)
    assert type(refused.value) is ConflictError and refused.value.code == "conflict"
    assert runs == [1]  # the same the next time: never retried
    assert phase_names(other) == ["first"]  # and the unit's other change is gone too


def test_a_read_only_storage_refuses_every_write_and_still_reads(
        storage: Storage, settings: Settings) -> None:
    storage.write(add_project)
    runs: list[int] = []

    def unit(tx: Tx) -> None:
        runs.append(1)
        add_phase(tx, 1, "refused")

    with connect_storage(settings, read_only=True) as read_only:
        with pytest.raises(StorageError) as refused:
            read_only.write(unit)
        assert not isinstance(refused.value, TransientStorageError)
        assert "read" in refused.value.message.lower()  # "readonly" / "read-only"
        assert runs == [1]
        assert read_only.read_one("get_project", project_id=PROJECT) is not None
        assert phase_names(read_only) == []
    assert phase_names(storage) == []


# --- deferred statements ---------------------------------------------------------------------


def test_deferred_statements_run_in_order_before_later_statements_and_the_commit(
        storage: Storage, other: Storage) -> None:
    def unit(tx: Tx) -> list[str]:
        tx.defer("insert_audit", **audit_row("contract.one"))
        tx.defer("insert_audit", **audit_row("contract.two"))
        seen = audited(tx)
        tx.defer("insert_audit", **audit_row("contract.last"))  # left for the commit
        return seen

    assert storage.write(unit) == ["contract.two", "contract.one"]  # newest first
    assert other.read(audited) == ["contract.last", "contract.two", "contract.one"]


@pytest.mark.parametrize("at_commit", [True, False], ids=["at-commit", "mid-unit"])
def test_a_failing_deferred_statement_fails_the_unit(
        storage: Storage, other: Storage, at_commit: bool) -> None:
    storage.write(add_project)

    def unit(tx: Tx) -> None:
        add_phase(tx, 1, "kept only if all succeed")
        tx.defer("insert_audit", **audit_row("contract.refused", actor=None))  # NOT NULL
        if not at_commit:
            audited(tx)

    with pytest.raises(ConflictError):
        storage.write(unit)
    assert phase_names(other) == [] and other.read(audited) == []


# --- snapshot reads --------------------------------------------------------------------------


def test_a_snapshot_sees_one_state_while_others_commit(
        storage: Storage, other: Storage) -> None:
    storage.write(lambda tx: (add_project(tx), add_phase(tx, 1, "before")))

    def unit(tx: Tx) -> tuple[list[str], list[str]]:
        first = phase_names_in(tx)
        other.write(lambda tx2: add_phase(tx2, 2, "meanwhile"))  # committed by another
        return first, phase_names_in(tx)

    first, second = storage.snapshot(unit)
    assert first == second == ["before"]
    assert phase_names(storage) == ["before", "meanwhile"]


# --- named queries: every one used exists, every one defined is used -------------------------

# The Tx and Storage methods whose first argument is a query's name.
_NAMED_QUERY_METHODS = {"one", "all", "stream", "execute", "defer", "value", "read_one"}
_QUERY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _sources() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text("utf-8")) for path in sorted(SRC.rglob("*.py"))}


def _first_argument(node: ast.Call) -> tuple[str, bool] | None:
    """The literal query name a call starts with, and whether it is only a prefix (an
    f-string such as ``f"forget_instance_in_{table}"``: one of a family of queries)."""
    if not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return (first.value, False) if _QUERY_NAME.match(first.value) else None
    if (isinstance(first, ast.JoinedStr) and first.values
            and isinstance(first.values[0], ast.Constant)
            and isinstance(first.values[0].value, str)
            and _QUERY_NAME.match(first.values[0].value)):
        return first.values[0].value, True
    return None


def named_query_calls() -> dict[tuple[str, bool], list[str]]:
    """(query name or prefix, is a prefix) -> where it is used, for every call of a Tx (or
    Storage.read_one) method whose first argument names a query."""
    calls: dict[tuple[str, bool], list[str]] = {}
    for path, tree in _sources().items():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in _NAMED_QUERY_METHODS):
                continue
            named = _first_argument(node)
            if named is not None:
                calls.setdefault(named, []).append(f"{path.relative_to(SRC)}:{node.lineno}")
    return calls


def string_constants() -> set[str]:
    """Every string literal of the package, the leading parts of f-strings included: a query
    handed on by name (a list of queries to run, a hot query the doctor plans) is used too."""
    return {node.value for tree in _sources().values() for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def _used(name: str, constants: set[str], prefixes: set[str]) -> bool:
    return name in constants or any(name.startswith(prefix) for prefix in prefixes)


def test_every_named_query_used_exists() -> None:
    defined = raw_queries()
    calls = named_query_calls()
    assert len(calls) > 100  # the scan finds the code's queries (it is not looking elsewhere)
    missing = {name: where for (name, prefix), where in calls.items()
               if not (any(d.startswith(name) for d in defined) if prefix else name in defined)}
    assert not missing, f"named queries used but not defined in storage/queries: {missing}"


def test_every_defined_query_is_used() -> None:
    constants = string_constants()
    prefixes = {name for name, prefix in named_query_calls() if prefix}
    unused = sorted(name for name in raw_queries() if not _used(name, constants, prefixes))
    assert not unused, f"queries defined in storage/queries/*.sql that nothing uses: {unused}"
