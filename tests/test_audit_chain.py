"""Hash chains over the audit log: sealing, verifying, and the tampering verify must find."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from ctxdb.service import Ctxdb
from ctxdb.service.operations.audit_chain import GENESIS, entry_sha256, link_sha256
from test_cli import Cli


def raw(db: Ctxdb, sql: str) -> None:
    """A change made behind ctxdb's back, with foreign keys not enforced, as someone with
    write access to the database could."""
    if db.settings.is_postgres:
        import psycopg

        with psycopg.connect(db.settings.url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")  # no foreign key triggers
            conn.execute(sql.encode())
        return
    conn = sqlite3.connect(db.settings.sqlite_path)  # foreign keys are off by default
    try:
        conn.execute(sql)
        conn.commit()
    finally:
        conn.close()


def some_history(db: Ctxdb) -> tuple[str, str]:
    alpha = db.projects.create("alpha")["project_id"]
    beta = db.projects.create("beta")["project_id"]
    for number in range(3):
        db.context.store(alpha, {"note": number})
        db.memories.put(beta, "team", f"k{number}", number)
    return alpha, beta


def entries(db: Ctxdb, project_id: str | None = None) -> list[dict[str, Any]]:
    return list(reversed(db.audit_log(project_id, limit=1000)))


def test_seal_chains_each_project_and_verify_recomputes_them(db: Ctxdb) -> None:
    alpha, beta = some_history(db)
    assert db.audit_chain.verify()["unsealed"] == len(entries(db))
    sealed = db.audit_chain.seal()
    assert sealed["sealed"] == len(entries(db))
    assert set(sealed["chains"]) >= {alpha, beta}
    assert sealed["chains"][alpha]["seals"] == len(entries(db, alpha))
    # The head of a chain is the hash of its entries in order, each linked to the one before.
    head = GENESIS
    for entry in entries(db, alpha):
        # (the listing hands details over parsed; the stored row holds them as JSON text)
        head = link_sha256(head, entry_sha256(entry | {"details": json.dumps(entry["details"])}))
    assert sealed["chains"][alpha]["head"] == head

    verified = db.audit_chain.verify()
    assert verified["ok"] and verified["problems"] == [] and verified["unsealed"] == 0
    assert verified["chains"] == sealed["chains"]
    assert db.audit_chain.seal()["sealed"] == 0  # nothing new

    db.context.store(alpha, {"note": "later"})
    again = db.audit_chain.seal()
    assert again["sealed"] == 1
    assert again["chains"][alpha]["seals"] == sealed["chains"][alpha]["seals"] + 1
    assert again["chains"][beta] == sealed["chains"][beta]
    assert db.audit_chain.verify()["ok"]


def test_a_changed_entry_is_found_and_named(db: Ctxdb) -> None:
    alpha, _ = some_history(db)
    db.audit_chain.seal()
    victim = entries(db, alpha)[1]["audit_id"]
    raw(db, f"UPDATE audit_log SET actor = 'user:nobody' WHERE audit_id = {victim}")
    verified = db.audit_chain.verify()
    assert not verified["ok"] and verified["problem_count"] == 1, verified["problems"]
    assert verified["problems"] == [
        f"chain {alpha!r}: audit entry {victim} was changed after it was sealed"]


def test_a_removed_entry_and_removed_or_rewritten_seals_are_found(db: Ctxdb) -> None:
    alpha, beta = some_history(db)
    db.audit_chain.seal()
    removed = entries(db, alpha)[-1]["audit_id"]
    raw(db, f"DELETE FROM audit_log WHERE audit_id = {removed}")
    first_of_beta = entries(db, beta)[0]["audit_id"]
    raw(db, f"DELETE FROM audit_seals WHERE audit_id = {first_of_beta}")
    rewritten = entries(db, beta)[-1]["audit_id"]
    raw(db, f"UPDATE audit_seals SET row_sha256 = '{'0' * 64}' WHERE audit_id = {rewritten}")
    problems = db.audit_chain.verify()["problems"]
    assert f"chain {alpha!r}: audit entry {removed} was removed after it was sealed" in problems
    assert any(p.startswith(f"chain {beta!r}: seal 1 is missing") for p in problems)
    assert any(p.startswith(f"chain {beta!r}: seal ") and f"(entry {rewritten}) does not "
               "follow" in p for p in problems)
    assert any(f"audit entry {rewritten} was changed" in p for p in problems)


def test_an_entry_that_commits_after_a_higher_id_was_sealed_is_sealed_next(db: Ctxdb) -> None:
    alpha, beta = some_history(db)
    db.audit_chain.seal()
    # What a PostgreSQL transaction that drew its id early and committed late leaves behind:
    # an unsealed entry below sealed ones (here alpha's last entry; beta's come after it).
    late = entries(db, alpha)[-1]["audit_id"]
    assert entries(db, beta)[-1]["audit_id"] > late
    raw(db, f"DELETE FROM audit_seals WHERE audit_id = {late}")
    assert db.audit_chain.verify() | {"chains": None} == {
        "ok": True, "sealed": len(entries(db)) - 1, "unsealed": 1, "chains": None,
        "problems": [], "problem_count": 0}
    assert db.audit_chain.seal()["sealed"] == 1
    verified = db.audit_chain.verify()
    assert verified["ok"] and verified["unsealed"] == 0


def test_seals_travel_with_an_export_and_verify_in_the_copy(db: Ctxdb, tmp_path: Path) -> None:
    alpha, _ = some_history(db)
    heads = db.audit_chain.seal()["chains"]
    bundle = tmp_path / "alpha.jsonl"
    db.bundles.export(bundle, project_id=alpha)
    # Into SQLite, also from PostgreSQL: the seals hash canonical records, alike on both.
    with Ctxdb.open(db.settings.replace(url=str(tmp_path / "target.db"))) as target:
        target.bundles.import_bundle(bundle)
        verified = target.audit_chain.verify()
    assert verified["ok"], verified["problems"]
    assert verified["chains"] == {alpha: heads[alpha]}


@pytest.mark.parametrize("seals", [0, 1])
def test_verify_of_a_database_without_seals_is_ok(db: Ctxdb, seals: int) -> None:
    some_history(db)
    if seals:
        db.audit_chain.seal()
    verified = db.audit_chain.verify()
    assert verified["ok"] and (verified["unsealed"] == 0) == bool(seals)


def test_cli_lists_seals_and_verifies_with_exit_codes(db: Ctxdb, tmp_path: Path) -> None:
    run = Cli(db.settings.url, tmp_path)
    pid = run.ok("project", "create", "Shop")["project_id"]
    listed = run.ok("audit", "-p", pid, "--limit", "5")  # the group still lists by default
    assert [entry["action"] for entry in listed] == ["project.create"]
    sealed = run.ok("audit", "seal")
    assert sealed["sealed"] == 1 and sealed["chains"][pid]["seals"] == 1
    assert run.ok("audit", "verify") | {"chains": None} == {
        "ok": True, "sealed": 1, "unsealed": 0, "chains": None, "problems": [],
        "problem_count": 0}
    raw(db, f"UPDATE audit_log SET action = 'project.nothing' WHERE entity_id = '{pid}'")
    failed = run("audit", "verify")
    assert failed.exit_code == 7, failed.output
    assert f"audit entry {listed[0]['audit_id']} was changed after it was sealed" in failed.stdout
    assert "FAILED: 1 problem(s)" in failed.stdout


def test_sealers_and_writers_at_once_leave_whole_chains(db: Ctxdb) -> None:
    pid = db.projects.create("busy")["project_id"]
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            with Ctxdb.open(db.settings) as own:
                for step in range(15):
                    own.memories.put(pid, "team", f"w{number}", step)
                    if step % 3 == number % 3:
                        own.audit_chain.seal()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    db.audit_chain.seal()
    verified = db.audit_chain.verify()
    assert verified["ok"], verified["problems"]
    assert verified["unsealed"] == 0 and verified["chains"][pid]["seals"] == 61


def test_sealing_goes_batch_after_batch(db: Ctxdb, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ctxdb.service.operations.audit_chain.SEAL_BATCH", 3)
    some_history(db)
    total = len(entries(db))
    assert total > 3 * 2
    assert db.audit_chain.seal()["sealed"] == total
    verified = db.audit_chain.verify()
    assert verified["ok"] and verified["unsealed"] == 0 and verified["sealed"] == total


def test_verify_of_one_project_checks_its_chain_only(db: Ctxdb, tmp_path: Path) -> None:
    alpha, beta = some_history(db)
    db.audit_chain.seal()
    victim = entries(db, beta)[0]["audit_id"]
    raw(db, f"UPDATE audit_log SET actor = 'user:nobody' WHERE audit_id = {victim}")
    mine = db.audit_chain.verify(alpha)
    assert mine["ok"] and list(mine["chains"]) == [alpha]
    assert mine["sealed"] == len(entries(db, alpha))
    theirs = db.audit_chain.verify(beta)
    assert not theirs["ok"] and theirs["problem_count"] == 1
    run = Cli(db.settings.url, tmp_path)
    assert run("audit", "verify", "-p", alpha).exit_code == 0
    assert run("audit", "verify", "-p", beta).exit_code == 7
