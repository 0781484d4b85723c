"""Tx.defer: a statement whose outcome nobody reads (an audit row, a history row).

PostgreSQL sends deferred statements together with the next statement or with the COMMIT,
in one pipeline; SQLite runs them at once. Either way they keep their order within the
transaction and its all-or-nothing outcome: these tests hold on both backends.
"""

from __future__ import annotations

from typing import Any

import pytest

from ctxdb.errors import CtxdbError
from ctxdb.service import Ctxdb
from ctxdb.storage import Tx

COUNT = "SELECT count(*) AS n FROM audit_log WHERE entity_type = 'defer-test'"


def audit_row(action: str, actor: str | None = "user:test") -> dict[str, Any]:
    return {"actor": actor, "action": action, "entity_type": "defer-test", "entity_id": "1",
            "project_id": None, "details": "{}"}


def committed(db: Ctxdb) -> int:
    row = db.storage.read(lambda tx: tx.one_raw(COUNT, {}))
    assert row is not None
    return int(row["n"])


def ours(tx: Tx) -> int:
    """Our rows, as a named query of the same transaction sees them."""
    rows = tx.all("list_audit", project_id="", entity_id="1", limit=100)
    return sum(row["entity_type"] == "defer-test" for row in rows)


def test_deferred_statements_are_seen_by_every_later_statement(db: Ctxdb) -> None:
    def unit(tx: Tx) -> list[int]:
        seen = []
        tx.defer("insert_audit", **audit_row("defer.one"))
        seen.append(ours(tx))
        tx.defer("insert_audit", **audit_row("defer.two"))
        tx.defer("insert_audit", **audit_row("defer.three"))
        row = tx.one_raw(COUNT, {})  # literal SQL too
        assert row is not None
        seen.append(int(row["n"]))
        return seen

    assert db.storage.write(unit) == [1, 3]
    assert committed(db) == 3
    actions = [row["action"] for row in db.audit_log(entity_id="1")]
    assert actions == ["defer.three", "defer.two", "defer.one"]  # newest first: in order


def test_a_deferred_statement_left_for_the_commit_is_committed(db: Ctxdb) -> None:
    db.storage.write(lambda tx: tx.defer("insert_audit", **audit_row("defer.last")))
    assert committed(db) == 1
    actions = [row["action"] for row in db.audit_log(entity_id="1")]
    assert actions == ["defer.last"]


@pytest.mark.parametrize("last", [True, False], ids=["failing-at-commit", "failing-mid-unit"])
def test_a_failing_deferred_statement_fails_the_unit_and_commits_nothing(
    db: Ctxdb, last: bool
) -> None:
    def unit(tx: Tx) -> None:
        tx.defer("insert_audit", **audit_row("defer.kept-only-if-all-succeed"))
        tx.defer("insert_audit", **audit_row("defer.refused", actor=None))  # NOT NULL
        if not last:
            ours(tx)

    with pytest.raises(CtxdbError):
        db.storage.write(unit)
    assert committed(db) == 0
    # The connection is usable again: the next unit commits.
    db.storage.write(lambda tx: tx.defer("insert_audit", **audit_row("defer.after")))
    assert committed(db) == 1
