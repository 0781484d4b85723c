"""``ctxdb doctor`` (db.doctor / service.doctor.diagnose) on both backends.

A healthy database passes every check; each kind of damage is made for real behind ctxdb's
back (bytes overwritten in a page of a copy of the file, an index dropped, a stored checksum
altered, an orphan row, silent instances, a grown WAL) and must be reported, and repaired by
``fix`` where that is safe. Damage is only ever done to a database of the test's own.
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from ctxdb.errors import ValidationError
from ctxdb.service import Ctxdb
from ctxdb.service.operations.doctor import diagnose
from ctxdb.service.operations.doctor_report import FAIL, PASS, SKIP, WARN, Check, DoctorReport
from ctxdb.service.operations.query_plans import HOT_QUERIES, plan_uses_index
from ctxdb.settings import Settings, load_settings
from ctxdb.storage import connect_storage
from ctxdb.storage.dialect import POSTGRES, SQLITE
from ctxdb.storage.health import IndexRef, declared_indexes
from ctxdb.storage.migrate import Migration, load_migrations
from ctxdb.storage.queries import raw_queries
from test_audit_chain import raw

CHECKS = ["connection", "schema", "writable", "integrity", "foreign_keys", "indexes",
          "query_plans", "search_index", "stale_instances", "reload_budget", "audit_chain",
          "change_feed", "size", "statistics"]
STALE = 0.05  # seconds


def healthy(backend: str) -> dict[str, str]:
    """Each check's status on a healthy database, in order: on PostgreSQL, row_security warns
    until `ctxdb db secure` ran (tests/test_row_security.py); SQLite has no such check."""
    if backend == "sqlite":
        return dict.fromkeys(CHECKS, PASS)
    last = CHECKS.index("size")  # row_security comes before size and statistics
    # Without the amcheck extension (as on a new database) the integrity check is skipped.
    return {**dict.fromkeys(CHECKS[:last], PASS), "integrity": SKIP, "row_security": WARN,
            **dict.fromkeys(CHECKS[last:], PASS)}


SEARCH_MIGRATION = 8


def check(report: DoctorReport, name: str) -> Check:
    return next(c for c in report.checks if c.name == name)


def statuses(report: DoctorReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def raw_execute(url: str, *statements: str) -> None:
    """Run SQL with the driver itself, behind ctxdb's back (to damage a database)."""
    if url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())
        return
    conn = sqlite3.connect(url)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


def fill(settings: Settings, items: int = 300) -> str:
    """A project with enough context items to span many pages; returns the project id."""
    with Ctxdb.open(settings) as db:
        project_id: str = db.projects.create("Doctor", "patient", 10)["project_id"]
        for n in range(items):
            db.context.store(project_id, {"n": n, "text": "lorem ipsum " * 20},
                             priority="HIGH")
    return project_id


def copy_database(source: Path, target: Path) -> Path:
    """A copy of a closed SQLite database (its WAL folded in on close)."""
    assert not Path(f"{source}-wal").exists()
    shutil.copy(source, target)
    return target


def leaf_pages(path: Path, btree: str) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno",
            (btree,))]
    finally:
        conn.close()


def rewrite_page(path: Path, page: int, change: Callable[[bytearray], None]) -> None:
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with path.open("r+b") as handle:
        handle.seek((page - 1) * page_size)
        data = bytearray(handle.read(page_size))
        change(data)
        handle.seek((page - 1) * page_size)
        handle.write(data)


# --- a healthy database --------------------------------------------------------------------


def test_a_healthy_database_passes_every_check(db: Ctxdb, project: dict[str, Any]) -> None:
    db.context.store(project["project_id"], {"note": "fine"}, priority="CRITICAL")
    db.instances.launch(project["project_id"])
    report = db.doctor.run()
    expected = healthy(db.storage.dialect.name)
    assert [c.name for c in report.checks] == list(expected)
    assert statuses(report) == expected, report.to_dict()
    assert report.ok and report.backend == db.storage.dialect.name
    assert not any(c.fixed for c in report.checks)
    plans = check(report, "query_plans").data["queries"]
    assert [q["query"] for q in plans] == [h.query for h in HOT_QUERIES]
    assert all(q["uses_index"] and q["plan"] for q in plans)
    # Each database names the indexes behind UNIQUE constraints and the full-text one itself.
    index_of = {q["query"]: q["index"] for q in plans}
    sqlite = db.storage.dialect.name == "sqlite"
    assert index_of["get_memory"] == ("sqlite_autoindex_memories_2" if sqlite
                                      else "memories_project_id_namespace_key_key")
    assert index_of["list_session_events"] == ("sqlite_autoindex_session_events_1" if sqlite
                                               else "session_events_session_id_sequence_key")
    assert index_of["search_hits"] == ("search_fts" if sqlite
                                       else "idx_search_documents_vector")
    schema = check(report, "schema").data
    assert schema["current_version"] == schema["latest_version"] >= 1
    assert check(report, "indexes").data["missing"] == []


def test_diagnose_opens_the_database_itself(settings: Settings) -> None:
    Ctxdb.open(settings).close()
    report = diagnose(settings, fix=True, thorough=True)
    assert report.ok and (report.fix, report.thorough) == (True, True)
    assert check(report, "integrity").detail.startswith(
        "integrity_check" if report.backend == "sqlite" else ("amcheck", "not verified"))


def test_a_missing_sqlite_file_is_reported_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "ctxdb.db"
    settings = load_settings(env={"HOME": str(tmp_path)}, url=str(path))
    report = diagnose(settings)
    assert not report.ok and statuses(report) == {"connection": FAIL}
    assert "ctxdb init" in report.checks[0].detail
    assert not path.exists() and not path.parent.exists()


def test_a_file_that_is_no_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are not the pages you are looking for\n" * 200)
    report = diagnose(load_settings(env={"HOME": str(tmp_path)}, url=str(path)))
    assert statuses(report) == {"connection": FAIL}
    assert "not a usable SQLite database" in report.checks[0].detail


def test_an_unreachable_server_is_reported(tmp_path: Path) -> None:
    settings = load_settings(env={"HOME": str(tmp_path)},
                             url="postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    report = diagnose(settings)
    assert statuses(report) == {"connection": FAIL} and not report.ok


def test_every_hot_query_exists_and_names_its_index() -> None:
    queries = raw_queries()
    latest = len(load_migrations(SQLITE))
    for hot in HOT_QUERIES:
        assert hot.query in queries, hot.query
        assert 1 <= hot.since <= latest
        # A named index is called the same on both backends: each one's migrations declare it.
        for dialect in (SQLITE, POSTGRES):
            assert not hot.index.name or hot.index.name in declared_indexes(
                load_migrations(dialect)), (hot.query, dialect.name)
    with pytest.raises(ValueError, match="UNIQUE"):
        IndexRef(name="idx_items_live", full_text=True)
    assert plan_uses_index(["SEARCH t USING INDEX idx_items_live (project_id=?)"],
                           "idx_items_live")
    assert not plan_uses_index(["SEARCH t USING INDEX idx_items_live_phase (project_id=?)"],
                               "idx_items_live")


def test_declared_indexes_follow_creates_and_drops() -> None:
    first = Migration(1, "one", "CREATE TABLE t (a INT);\n-- CREATE INDEX idx_comment ON t(a);\n"
                      "CREATE INDEX idx_a ON t(a)\n    WHERE a > 0;\n"
                      "CREATE UNIQUE INDEX IF NOT EXISTS idx_b ON t(a);\n"
                      "CREATE TABLE u (b INT);\nCREATE INDEX idx_u ON u(b)", "")
    second = Migration(2, "two", "DROP INDEX IF EXISTS idx_b;\nDROP TABLE u;\n"
                       "CREATE INDEX idx_c ON t(a);", "")
    assert sorted(declared_indexes([first])) == ["idx_a", "idx_b", "idx_u"]
    declared = declared_indexes([first, second])
    assert sorted(declared) == ["idx_a", "idx_c"]
    assert declared["idx_a"].table == "t"
    assert declared["idx_a"].sql == "CREATE INDEX idx_a ON t(a)\n    WHERE a > 0;"


# --- damage --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_corrupted_page_fails_the_integrity_check(scratch: Settings, tmp_path: Path) -> None:
    fill(scratch)
    damaged = copy_database(scratch.sqlite_path, tmp_path / "damaged.db")
    pages = leaf_pages(damaged, "context_items")
    assert len(pages) > 4

    def scribble(data: bytearray) -> None:
        data[100:300] = b"\xff" * 200  # cell pointers and cells; the file header is page 1's

    rewrite_page(damaged, pages[len(pages) // 2], scribble)
    settings = scratch.replace(url=str(damaged))
    for fix in (False, True):
        report = diagnose(settings, fix=fix)
        integrity = check(report, "integrity")
        assert integrity.status == FAIL and not report.ok
        assert integrity.detail.startswith("quick_check found")
        assert "restore a backup" in integrity.detail and integrity.fixed == ""
        assert integrity.data["problems"]
    assert check(diagnose(settings, thorough=True), "integrity").status == FAIL
    # The original was never touched.
    assert diagnose(scratch, thorough=True).ok


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_damaged_index_is_found_by_the_thorough_check_and_rebuilt(
    scratch: Settings, tmp_path: Path
) -> None:
    fill(scratch)
    damaged = copy_database(scratch.sqlite_path, tmp_path / "damaged.db")

    def change_last_key(data: bytearray) -> None:
        # The last key of the page is a created_at text ending in "Z"; one digit of it
        # changes, so that one row's index entry no longer matches the row.
        end = data.rfind(b"Z")
        data[end - 1] = ord("9") if data[end - 1] != ord("9") else ord("8")

    rewrite_page(damaged, leaf_pages(damaged, "idx_items_created")[-1], change_last_key)
    settings = scratch.replace(url=str(damaged))
    assert check(diagnose(settings), "integrity").status == PASS  # quick_check cannot see it
    found = check(diagnose(settings, thorough=True), "integrity")
    assert found.status == FAIL and found.data["damaged_indexes"] == ["idx_items_created"]
    assert "--fix" in found.detail
    repaired = check(diagnose(settings, thorough=True, fix=True), "integrity")
    assert (repaired.status, repaired.fixed) == (PASS, "rebuilt index(es) idx_items_created")
    assert diagnose(settings, thorough=True).ok
    with Ctxdb.open(settings) as db:
        assert [row["action"] for row in db.audit_log(entity_id="idx_items_created")] == [
            "doctor.reindex"]


def test_a_dropped_index_fails_and_fix_recreates_it(scratch: Settings) -> None:
    raw_execute(scratch.url, "DROP INDEX idx_tasks_claim")
    report = diagnose(scratch)
    assert statuses(report)["indexes"] == statuses(report)["query_plans"] == FAIL
    assert check(report, "indexes").data["missing"] == ["idx_tasks_claim"]
    plans = check(report, "query_plans")
    assert "next_claimable_task" in plans.detail and "idx_tasks_claim" in plans.detail
    wrong = [q["query"] for q in plans.data["queries"] if not q["uses_index"]]
    assert wrong == ["next_claimable_task"]

    fixed = diagnose(scratch, fix=True)
    assert fixed.ok, fixed.to_dict()
    assert check(fixed, "indexes").fixed == "recreated index(es) idx_tasks_claim"
    assert check(fixed, "query_plans").status == PASS
    with Ctxdb.open(scratch) as db:
        audit = db.audit_log(entity_id="idx_tasks_claim")
    assert [row["action"] for row in audit] == ["doctor.create_index"]
    assert audit[0]["details"]["sql"].startswith("CREATE INDEX idx_tasks_claim ON tasks")
    assert diagnose(scratch).ok


def test_an_altered_migration_checksum_fails(scratch: Settings) -> None:
    raw_execute(scratch.url,
                f"UPDATE schema_migrations SET checksum = '{'0' * 64}' WHERE version = 3")
    for fix in (False, True):
        report = diagnose(scratch, fix=fix)
        schema = check(report, "schema")
        assert schema.status == FAIL and not report.ok
        assert "0003_memories" in schema.detail and "checksum" in schema.detail
        assert schema.data["migrations"]["0003"] == "modified" and schema.fixed == ""


def test_a_schema_behind_is_reported_without_upgrading_it(scratch: Settings) -> None:
    with Ctxdb.open(scratch) as db:
        latest = db.migrator().latest_version
        db.migrator().downgrade(latest - 1)
    report = diagnose(scratch, fix=True)
    schema = check(report, "schema")
    assert "ctxdb db upgrade" in schema.detail
    # SQLite upgrades itself when opened; a PostgreSQL database refuses to open until upgraded.
    assert schema.status == (WARN if report.backend == "sqlite" else FAIL)
    assert schema.data["current_version"] == latest - 1


def test_rows_or_constraints_that_break_foreign_keys_fail(scratch: Settings) -> None:
    if scratch.is_postgres:
        raw_execute(scratch.url, "ALTER TABLE tasks DISABLE TRIGGER ALL")
        expected = "tasks_project_id_fkey of tasks is not enforced"
    else:
        # foreign_keys is off on a plain sqlite3 connection: the orphan gets in.
        raw_execute(scratch.url,
                    "INSERT INTO phases (project_id, phase_number, name, status, created_at) "
                    "VALUES ('proj_gone', 1, 'orphan', 'pending', '2024-01-01T00:00:00.000Z')")
        expected = "phases row 1 refers to a missing projects row"
    foreign_keys = check(diagnose(scratch), "foreign_keys")
    assert foreign_keys.status == FAIL and expected in foreign_keys.detail


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_amcheck_verifies_the_indexes_when_installed(scratch: Settings) -> None:
    fill(scratch, items=20)
    unverified = check(diagnose(scratch), "integrity")
    assert (unverified.status, unverified.detail.startswith("not verified")) == (SKIP, True)
    raw_execute(scratch.url, "CREATE EXTENSION amcheck")
    for thorough in (False, True):
        integrity = check(diagnose(scratch, thorough=thorough), "integrity")
        assert (integrity.status, integrity.detail) == (PASS, "amcheck: ok")


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_amcheck_that_the_role_may_not_run_is_not_a_finding(scratch: Settings) -> None:
    role = f"ctxdb_doctor_{secrets.token_hex(3)}"
    raw_execute(scratch.url, "CREATE EXTENSION amcheck", f'CREATE ROLE "{role}" LOGIN',
                f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
    try:
        as_role = scratch.replace(url=urlunsplit(urlsplit(scratch.url)._replace(
            netloc=f"{role}@{urlsplit(scratch.url).hostname}:{urlsplit(scratch.url).port}")))
        integrity = check(diagnose(as_role), "integrity")
        assert integrity.status == SKIP
        assert integrity.detail == ("not verified: this role may not run amcheck's "
                                    "bt_index_check (GRANT EXECUTE on it)")
    finally:
        raw_execute(scratch.url, f'DROP OWNED BY "{role}"', f'DROP ROLE "{role}"')


def test_the_full_text_index_is_checked_and_fix_rebuilds_it(scratch: Settings) -> None:
    fill(scratch, items=5)
    search = check(diagnose(scratch), "search_index")
    assert search.status == PASS and search.data["context"] == {"rows": 5, "entries": 5}
    raw_execute(scratch.url, "DELETE FROM search_documents WHERE item_id = "
                             "(SELECT min(item_id) FROM context_items)")
    found = check(diagnose(scratch), "search_index")
    assert found.status == FAIL and "context: 5 rows, 4 index entries" in found.detail
    assert "--fix" in found.detail

    fixed = check(diagnose(scratch, fix=True), "search_index")
    assert fixed.status == PASS and fixed.data["context"] == {"rows": 5, "entries": 5}
    assert fixed.fixed.startswith("rebuilt the full-text index: context 5")
    with Ctxdb.open(scratch) as db:
        assert db.search.search(db.projects.list()[0]["project_id"], "lorem")


def test_a_database_before_full_text_search_has_no_search_check(scratch: Settings) -> None:
    with Ctxdb.open(scratch) as db:
        db.migrator().downgrade(SEARCH_MIGRATION - 1)
    report = diagnose(scratch)
    assert "search_index" not in statuses(report)
    plans = check(report, "query_plans")
    assert plans.status == PASS, plans.detail
    assert "search_hits" not in [q["query"] for q in plans.data["queries"]]


# --- housekeeping --------------------------------------------------------------------------


def test_stale_instances_warn_and_fix_marks_them_crashed(
    make_settings: Callable[..., Settings], project: dict[str, Any], db: Ctxdb
) -> None:
    silent = db.instances.launch(project["project_id"])["instance_id"]
    time.sleep(STALE * 4)
    settings = make_settings(stale_after=STALE)
    with Ctxdb.open(settings) as patient:
        found = check(patient.doctor.run(), "stale_instances")
        assert found.status == WARN and silent in found.detail
        assert found.data["instances"] == [silent]
        assert db.instances.get(silent)["status"] == "active"  # nothing changed without fix

        fixed = check(patient.doctor.run(fix=True), "stale_instances")
        assert (fixed.status, fixed.fixed) == (PASS, f"marked 1 instance(s) crashed: {silent}")
    assert db.instances.get(silent)["status"] == "crashed"
    assert "instance.crashed" in [row["action"] for row in db.audit_log(entity_id=silent)]


def test_projects_whose_critical_items_exceed_the_reload_budget_warn(
    make_settings: Callable[..., Settings], db: Ctxdb
) -> None:
    """The reload budget is pack_budget_fraction of the smallest window an agent of the
    project reloads with: the default window, or a live instance's smaller one."""
    over = db.projects.create("Over")["project_id"]
    narrow = db.projects.create("Narrow")["project_id"]
    fine = db.projects.create("Fine")["project_id"]
    archived = db.projects.create("Archived")["project_id"]
    for tokens in (30_000, 25_000):  # 55,000 > a quarter of the default 200,000 window
        db.context.store(over, "rule", "CRITICAL", token_count=tokens)
        db.context.store(archived, "rule", "CRITICAL", token_count=tokens)
    db.projects.archive(archived)
    gone = db.context.store(fine, "old rule", "CRITICAL", token_count=90_000)["item_id"]
    db.context.delete(gone)  # deleted items are not reloaded
    db.context.store(fine, "rule", "CRITICAL", token_count=40_000)
    db.context.store(fine, "lots", "HIGH", token_count=90_000)  # only CRITICAL must fit
    db.context.store(narrow, "rule", "CRITICAL", token_count=6_000)
    db.instances.launch(narrow, context_window=10_000)  # its reload budget is 2,500
    db.instances.launch(fine, context_window=500_000)  # a larger window does not count
    found = check(db.doctor.run(), "reload_budget")
    assert found.status == WARN
    assert found.data["projects"] == sorted([
        {"project_id": over, "name": "Over", "critical_items": 2, "critical_tokens": 55_000,
         "context_window": 200_000, "reload_budget": 50_000},
        {"project_id": narrow, "name": "Narrow", "critical_items": 1, "critical_tokens": 6_000,
         "context_window": 10_000, "reload_budget": 2_500},
    ], key=lambda row: row["project_id"])
    assert f"{over} (Over): 2 CRITICAL item(s) of 55000 tokens" in found.detail
    assert "reload budget of 50000 (25% of a 200000-token window)" in found.detail
    assert f"{narrow} (Narrow)" in found.detail and archived not in found.detail
    assert fine not in found.detail
    assert "names the rest" in found.detail
    db.context.store(fine, "one more", "CRITICAL", token_count=10_001)  # 50,001 now
    assert fine in check(db.doctor.run(), "reload_budget").detail
    with Ctxdb.open(make_settings(pack_budget_fraction=0.5)) as roomy:
        assert [p["project_id"] for p in check(roomy.doctor.run(), "reload_budget").data[
            "projects"]] == [narrow]
    for item in db.context.full(over)["CRITICAL"] + db.context.full(narrow)["CRITICAL"] \
            + db.context.full(fine)["CRITICAL"]:
        db.context.delete(item["item_id"])
    passed = check(db.doctor.run(), "reload_budget")
    assert passed.status == PASS and passed.data["projects"] == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_large_wal_warns_and_fix_checkpoints_it(db: Ctxdb, project: dict[str, Any]) -> None:
    for n in range(20):
        db.context.store(project["project_id"], {"n": n}, priority="LOW")
    wal = Path(f"{db.settings.sqlite_path}-wal")
    assert wal.stat().st_size > 0
    size = check(db.doctor.run(wal_warn_bytes=1), "size")
    assert size.status == WARN and "--fix" in size.detail
    assert size.data["wal_bytes"] == wal.stat().st_size > size.data["wal_warn_bytes"]

    # A reader in the middle of a transaction keeps the WAL from being truncated.
    reader = sqlite3.connect(db.settings.sqlite_path)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM context_items").fetchone()
        busy = check(db.doctor.run(fix=True, wal_warn_bytes=1), "size")
        assert busy.status == WARN and busy.fixed.startswith("could not truncate the WAL")
    finally:
        reader.close()

    fixed = check(db.doctor.run(fix=True, wal_warn_bytes=1), "size")
    assert fixed.status == PASS and fixed.fixed.startswith("checkpointed the WAL")
    assert fixed.data["wal_bytes"] == wal.stat().st_size == 0
    live = db.context.full(project["project_id"])
    assert sum(len(items) for items in live.values()) == 20  # every write is still there


def test_a_negative_wal_limit_is_refused(db: Ctxdb) -> None:
    with pytest.raises(ValidationError, match="wal_warn_bytes must not be negative"):
        db.doctor.run(wal_warn_bytes=-1)


def test_the_size_is_reported(db: Ctxdb) -> None:
    size = check(db.doctor.run(), "size")
    assert size.status == PASS and size.data["database_bytes"] > 0
    if db.storage.dialect.name == "postgres":
        assert size.data["wal_bytes"] is None and "server's" in size.detail
    else:
        assert "WAL" in size.detail and size.data["wal_bytes"] >= 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_synchronous_normal_is_a_warning(make_settings: Callable[..., Settings]) -> None:
    with Ctxdb.open(make_settings(sqlite_synchronous="NORMAL")) as db:
        connection = check(db.doctor.run(), "connection")
    assert connection.status == WARN and "synchronous=NORMAL" in connection.detail
    assert connection.data["synchronous"] == "NORMAL"


def test_doctor_finds_a_changed_audit_entry(db: Ctxdb, project: dict[str, Any]) -> None:
    unsealed = db.doctor.run()
    chain = next(c for c in unsealed.checks if c.name == "audit_chain")
    assert chain.status == PASS and "not sealed yet (`ctxdb audit seal`" in chain.detail
    db.audit_chain.seal()
    entry = db.audit_log(project["project_id"], limit=1)[0]["audit_id"]
    raw(db, f"UPDATE audit_log SET actor = 'user:mallory' WHERE audit_id = {entry}")
    report = db.doctor.run()
    chain = next(c for c in report.checks if c.name == "audit_chain")
    assert chain.status == FAIL and not report.ok
    assert f"audit entry {entry} was changed after it was sealed" in chain.detail


def test_a_database_that_refuses_every_write_fails_the_writable_check(
        db: Ctxdb, project: dict[str, Any]) -> None:
    assert check(db.doctor.run(), "writable").status == PASS
    before = db.storage.read(lambda tx: tx.all_raw(
        "SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version", {}))
    # What a read-only file (or directory, or mount) is to SQLite, and a standby or a
    # read-only default to PostgreSQL: reads work, every write is refused.
    with Ctxdb(connect_storage(db.settings, read_only=True), db.settings) as read_only:
        report = read_only.doctor.run()
    writable = check(report, "writable")
    assert writable.status == FAIL and not report.ok
    assert writable.detail.startswith("every write fails: ")
    assert "read" in writable.detail.lower()  # "readonly database" / "read-only transaction"
    assert {c.name for c in report.checks if c.status == FAIL} == {"writable"}
    after = db.storage.read(lambda tx: tx.all_raw(
        "SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version", {}))
    assert after == before  # the probe of the writable database left nothing either


def test_sealed_entries_lost_from_the_tail_fail_the_audit_chain_check(
        db: Ctxdb, project: dict[str, Any]) -> None:
    project_id = project["project_id"]
    for number in range(6):
        db.context.store(project_id, {"n": number})
    db.audit_chain.seal()
    sealed = [row["audit_id"] for row in reversed(db.audit_log(project_id, limit=100))]
    lost = sealed[-4:]
    # The newest writes gone, as after SQLite's recovery cut a damaged write-ahead log short
    # (their seals were checkpointed before): removed behind ctxdb's back.
    raw(db, f"DELETE FROM audit_log WHERE audit_id IN ({', '.join(map(str, lost))})")
    report = db.doctor.run()
    chain = check(report, "audit_chain")
    assert chain.status == FAIL and not report.ok
    first_seal = len(sealed) - 3
    assert (f"chain {project_id!r}: audit entries {lost[0]} to {lost[-1]} (4 entries, seals "
            f"{first_seal} to {len(sealed)}) were removed after they were sealed; they were "
            "the newest sealed entries of the chain") in chain.detail
    assert chain.data["problem_count"] == 4


def test_the_change_feed_check_finds_a_missing_key_and_on_postgresql_a_silent_trigger(
        scratch: Settings) -> None:
    report = diagnose(scratch)
    feed = check(report, "change_feed")
    assert feed.status == PASS and feed.data["sealing_key"], feed
    assert ("NOTIFY trigger" if scratch.is_postgres else "poll") in feed.detail
    if scratch.is_postgres:
        raw_execute(scratch.url, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_notify")
        feed = check(diagnose(scratch), "change_feed")
        assert feed.status == WARN and "audit_log_notify on audit_log is disabled" in feed.detail
        raw_execute(scratch.url, "DROP TRIGGER audit_log_notify ON audit_log")
        feed = check(diagnose(scratch), "change_feed")
        assert feed.status == WARN and "audit_log_notify on audit_log is missing" in feed.detail
    raw_execute(scratch.url, "DELETE FROM change_feed_keys")
    feed = check(diagnose(scratch), "change_feed")
    assert feed.status == FAIL and "sealing key is missing" in feed.detail
