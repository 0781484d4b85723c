"""``db.imports.import_legacy`` on both backends, from a database built with the seed's own
SQLite schema (``legacy_db.SEED_DDL``): ids, priorities, sequence order and timestamps kept;
re-import adds nothing; refusals and failures write nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ctxdb.errors import (
    ConflictError,
    ImportSourceError,
    InvalidLegacyDataError,
    NotALegacyDatabaseError,
    TooManyProjectsError,
)
from ctxdb.service import Ctxdb
from item_numbers import gapless
from legacy_db import BLOG, INSTANCES, SHOP, SNAPSHOTS, build_seed_database


@pytest.fixture
def seed_db(tmp_path: Path) -> Path:
    path = tmp_path / "ultrathink_context.db"
    build_seed_database(path)
    return path


def items_of(db: Ctxdb, project_id: str) -> list[dict[str, Any]]:
    grouped = db.context.full(project_id)
    return sorted((item for group in grouped.values() for item in group),
                  key=lambda item: item["sequence_number"])


def nothing_written(db: Ctxdb) -> bool:
    return (db.projects.list(include_archived=True) == [] and db.audit_log() == []
            and db.instances.list() == [])


def test_ids_priorities_order_and_timestamps_are_kept(db: Ctxdb, seed_db: Path) -> None:
    report = db.imports.import_legacy(str(seed_db))
    assert {kind: c["imported"] for kind, c in report["counts"].items()} == {
        "projects": 2, "phases": 5, "instances": 3, "context_items": 7}
    assert report["projects"] == [SHOP, BLOG] and report["renumbered"] == 0
    assert report["schema_version"][0]["version"] == 1

    shop = db.projects.get(SHOP)
    assert (shop["name"], shop["total_story_points"], shop["completed_story_points"]) == (
        "E-Commerce Platform", 1300, 200)
    assert (shop["created_at"], shop["updated_at"]) == ("2025-11-19T12:00:00.000Z",
                                                        "2025-11-19T13:20:00.000Z")
    assert shop["metadata"]["owner"] == "team-a"
    assert shop["metadata"]["imported_from"]["format"] == "seed-sqlite"

    phases = db.phases.list(SHOP)
    assert [(p["phase_number"], p["name"], p["story_points"], p["status"]) for p in phases] == [
        (1, "Foundation", 200, "completed"), (2, "Core Features", 300, "active"),
        (3, "Advanced Features", 400, "pending"), (4, "Optimization", 200, "pending"),
        (5, "Deployment", 200, "pending")]
    assert (phases[0]["started_at"], phases[0]["completed_at"]) == (
        "2025-11-19T12:01:00.000Z", "2025-11-19T12:50:00.000Z")
    phase_id = {p["phase_number"]: p["phase_id"] for p in phases}

    instances = {i["instance_id"]: i for i in db.instances.list(SHOP)}
    assert sorted(instances) == sorted(INSTANCES)
    first, second, third = (instances[i] for i in INSTANCES)
    assert (first["status"], first["current_token_usage"], first["phase_id"]) == (
        "active", 95_000, phase_id[1])
    assert (first["started_at"], first["last_heartbeat"]) == ("2025-11-19T12:30:00.000Z",
                                                              "2025-11-19T12:40:15.000Z")
    assert (second["status"], second["ended_at"]) == ("completed", "2025-11-19T12:41:15.000Z")
    assert (third["status"], third["hostname"], third["process_id"]) == (
        "crashed", "dev-laptop", 4244)

    items = items_of(db, SHOP)
    expected = [s for s in SNAPSHOTS if s[0] == SHOP]
    assert [i["sequence_number"] for i in items] == [1, 2, 3, 4, 5, 6]
    assert [(i["priority"], i["content_type"], i["content"]) for i in items] == [
        (priority, kind, content) for _, _, kind, priority, content, _ in expected]
    assert items[0]["created_at"] == "2025-11-19T12:05:00.000Z"
    assert items[0]["phase_id"] == phase_id[1] and items[2]["phase_id"] is None
    assert items[3]["phase_id"] == phase_id[2]
    assert all(i["metadata"]["imported_from"]["snapshot_id"] for i in items)
    # New context goes after the imported sequence.
    after = db.context.store(SHOP, {"note": "after import"})["sequence_number"]
    assert after == 7 if gapless(db) else after > 6
    assert [i["sequence_number"] for i in items_of(db, BLOG)] == [1]
    assert {a["action"] for a in db.audit_log(project_id=SHOP)} >= {"import.legacy"}


def test_importing_again_adds_nothing_and_picks_up_new_snapshots(
    db: Ctxdb, seed_db: Path
) -> None:
    db.imports.import_legacy(str(seed_db))
    before = items_of(db, SHOP)
    again = db.imports.import_legacy(str(seed_db))
    assert again["totals"]["imported"] == 0 and again["totals"]["unchanged"] == 17
    assert items_of(db, SHOP) == before
    # The legacy system kept working: its next snapshot arrives with its own number.
    with sqlite3.connect(seed_db) as conn:
        conn.execute("INSERT INTO context_snapshots (project_id, sequence_number, content_type,"
                     " priority, token_count, content) VALUES (?, 7, 'code', 'HIGH', 3, "
                     "'{\"late\": true}')", (SHOP,))
    conn.close()
    later = db.imports.import_legacy(str(seed_db))
    assert later["counts"]["context_items"] == {"imported": 1, "updated": 0, "unchanged": 7,
                                                "skipped": 0}
    assert items_of(db, SHOP)[-1]["sequence_number"] == 7


def test_snapshots_that_collide_are_numbered_after_the_last_in_their_order(
    db: Ctxdb, tmp_path: Path
) -> None:
    path = tmp_path / "dupes.db"
    build_seed_database(path)
    with sqlite3.connect(path) as conn:  # the seed never checked that numbers are unique
        conn.execute("UPDATE context_snapshots SET sequence_number = 1 WHERE project_id = ?",
                     (SHOP,))
    conn.close()
    report = db.imports.import_legacy(str(path))
    assert report["renumbered"] == 6
    items = items_of(db, SHOP)
    assert [i["sequence_number"] for i in items] == [1, 2, 3, 4, 5, 6]
    assert [i["content"] for i in items] == [s[4] for s in SNAPSHOTS if s[0] == SHOP]


def test_a_dry_run_writes_nothing(db: Ctxdb, seed_db: Path) -> None:
    dry = db.imports.import_legacy(str(seed_db), dry_run=True)
    assert dry["dry_run"] is True and dry["totals"]["imported"] == 17
    assert nothing_written(db)


def test_a_file_that_is_not_such_a_database_is_refused(db: Ctxdb, tmp_path: Path,
                                                       settings: Any) -> None:
    text = tmp_path / "notes.db"
    text.write_text("just some text, long enough to not be a database header" * 10)
    with pytest.raises(NotALegacyDatabaseError, match="not a readable SQLite database"):
        db.imports.import_legacy(str(text))
    partial = tmp_path / "partial.db"
    with sqlite3.connect(partial) as conn:
        conn.execute("CREATE TABLE projects (project_id TEXT PRIMARY KEY, name TEXT)")
    conn.close()
    with pytest.raises(NotALegacyDatabaseError, match="no table phases") as caught:
        db.imports.import_legacy(str(partial))
    assert "context_snapshots" in caught.value.details["missing_tables"]
    with pytest.raises(ImportSourceError, match="no such file"):
        db.imports.import_legacy(str(tmp_path / "missing.db"))
    if settings.url.endswith(".db"):  # a ctxdb database is not the seed's
        with pytest.raises(NotALegacyDatabaseError, match="looks like a ctxdb database"):
            db.imports.import_legacy(settings.url)
    assert nothing_written(db)


def test_a_bad_row_is_named_and_nothing_is_written(db: Ctxdb, seed_db: Path) -> None:
    with sqlite3.connect(seed_db) as conn:
        conn.execute("UPDATE context_snapshots SET created_at = 'last tuesday' "
                     "WHERE snapshot_id = 3")
    conn.close()
    with pytest.raises(InvalidLegacyDataError, match="context_snapshots row 3") as caught:
        db.imports.import_legacy(str(seed_db))
    assert "created_at" in caught.value.message
    assert nothing_written(db)


def test_a_failure_half_way_writes_nothing(db: Ctxdb, seed_db: Path) -> None:
    # An instance id already taken by another project is found only after the projects and
    # phases were written in the same transaction: all of it is rolled back.
    other = db.projects.create("Other", "")
    db.instances.launch(other["project_id"], instance_id=INSTANCES[2])
    before = len(db.audit_log())
    with pytest.raises(ConflictError, match="already taken"):
        db.imports.import_legacy(str(seed_db))
    assert [p["project_id"] for p in db.projects.list()] == [other["project_id"]]
    assert len(db.audit_log()) == before


def test_the_project_limit_holds(make_settings: Any, seed_db: Path) -> None:
    with Ctxdb.open(make_settings(max_projects=1)) as db:
        with pytest.raises(TooManyProjectsError):
            db.imports.import_legacy(str(seed_db))
        assert nothing_written(db)
