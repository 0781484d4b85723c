"""The seed-compatible classes in ``ctxdb.compat``, on both backends.

Each class is built from ``settings.url`` (a SQLite file or the test PostgreSQL database) and
checked against the seed's signatures, defaults and return shapes; results are cross-checked
through the service layer, and bad input must raise a typed error and change nothing.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctxdb.compat import (
    AsyncContextLoader,
    MultiProjectManager,
    SQLiteContextLoader,
    TokenManager,
)
from ctxdb.errors import (
    ConfigError,
    InstanceNotFoundError,
    InvalidContentError,
    InvalidPriorityError,
    PhaseNotFoundError,
    ProjectNotFoundError,
    StorageError,
    TokenUsageOutOfRangeError,
    ValidationError,
)
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings

PROJECT_ID = re.compile(r"proj_\d{8}_\d{6}_[0-9a-f]+")
INSTANCE_ID = re.compile(r"inst_\d{8}_\d{6}_[0-9a-f]+")
SUMMARY_KEYS = {"project_id", "name", "total_story_points", "completed_story_points",
                "active_instances", "total_snapshots", "total_tokens", "created_at",
                "updated_at"}
INSTANCE_KEYS = {"instance_id", "phase_id", "hostname", "process_id", "started_at",
                 "last_heartbeat", "status", "current_token_usage"}
PROJECT_KEYS = {"project_id", "name", "description", "total_story_points",
                "completed_story_points", "total_phases", "created_at", "updated_at"}
USAGE_KEYS = {"instance_id", "project_id", "current_token_usage", "percentage",
              "tokens_remaining"}
RELOAD_KEYS = {"instance_id", "project_id", "tokens_before", "tokens_after",
               "context_items_loaded", "critical_items", "high_items", "medium_items",
               "low_items", "status"}
ITEM_KEYS = {"snapshot_id", "item_id", "project_id", "phase_id", "sequence_number",
             "content_type", "priority", "token_count", "content", "created_at"}


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compat classes read the environment: keep the user's config and data out of it."""
    for name in [n for n in os.environ if n.startswith("CTXDB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / "data"))


@pytest.fixture
def manager(settings: Settings) -> Iterator[MultiProjectManager]:
    with MultiProjectManager(settings.url) as opened:
        yield opened


@pytest.fixture
def loader(settings: Settings) -> Iterator[SQLiteContextLoader]:
    with SQLiteContextLoader(settings.url) as opened:
        yield opened


@pytest.fixture
def tokens(settings: Settings) -> Iterator[TokenManager]:
    with TokenManager(settings.url) as opened:
        yield opened


@pytest.fixture
def project_id(manager: MultiProjectManager) -> str:
    return manager.create_project("Compat project", "made by a fixture", 200)


def snapshot(db: Ctxdb) -> tuple[Any, ...]:
    """Everything a failed call must leave as it was: projects, instances, items, audit."""
    projects = db.projects.list(include_archived=True)
    items = [db.context.full(p["project_id"]) for p in projects]
    return (projects, db.instances.list(), items, db.audit_log(limit=10_000))


# --- MultiProjectManager -------------------------------------------------------------------


def test_create_project_returns_seed_id_and_keeps_seed_default(
    manager: MultiProjectManager, db: Ctxdb
) -> None:
    project_id = manager.create_project("Defaults", "no story points given")
    assert PROJECT_ID.fullmatch(project_id)
    stored = db.projects.get(project_id)
    assert (stored["name"], stored["description"]) == ("Defaults", "no story points given")
    assert stored["total_story_points"] == 1300


def test_launch_instance_and_get_project_instances(
    manager: MultiProjectManager, project_id: str, db: Ctxdb
) -> None:
    phase_id = manager.create_phase(project_id, 1, "Build", 50)
    first = manager.launch_instance(project_id)
    second = manager.launch_instance(project_id, phase_id=phase_id)
    assert INSTANCE_ID.fullmatch(first) and INSTANCE_ID.fullmatch(second)
    db.instances.end(first)
    listed = manager.get_project_instances(project_id)
    assert [i["instance_id"] for i in listed] == [second]  # only active instances
    assert set(listed[0]) >= INSTANCE_KEYS
    assert (listed[0]["phase_id"], listed[0]["status"]) == (phase_id, "active")
    assert (listed[0]["current_token_usage"], isinstance(listed[0]["process_id"], int)) == (
        0, True)


def test_get_project_summary_counts(
    manager: MultiProjectManager, project_id: str, tokens: TokenManager
) -> None:
    other = manager.create_project("Other", "stays empty", 10)
    instance_id = manager.launch_instance(project_id)
    manager.launch_instance(project_id)
    manager.store_context(project_id, {"a": 1}, "CRITICAL")
    manager.store_context(project_id, {"b": 2})
    tokens.update_token_usage(instance_id, 1234)
    rows = {row["project_id"]: row for row in manager.get_project_summary()}
    assert set(rows) == {project_id, other}
    assert all(set(row) >= SUMMARY_KEYS for row in rows.values())
    mine = rows[project_id]
    assert (mine["name"], mine["total_story_points"], mine["completed_story_points"]) == (
        "Compat project", 200, 0)
    assert (mine["active_instances"], mine["total_snapshots"], mine["total_tokens"]) == (
        2, 2, 1234)
    assert (rows[other]["active_instances"], rows[other]["total_snapshots"]) == (0, 0)


def test_get_all_projects_and_create_phase(
    manager: MultiProjectManager, project_id: str, db: Ctxdb
) -> None:
    phase_ids = [manager.create_phase(project_id, n, f"Phase {n}", n * 10) for n in (1, 2)]
    assert all(isinstance(p, int) for p in phase_ids) and len(set(phase_ids)) == 2
    assert [p["story_points"] for p in db.phases.list(project_id)] == [10, 20]
    projects = manager.get_all_projects()
    assert [p["project_id"] for p in projects] == [project_id]
    assert set(projects[0]) >= PROJECT_KEYS
    assert (projects[0]["total_phases"], projects[0]["description"]) == (2, "made by a fixture")
    assert isinstance(projects[0]["created_at"], str)


def test_manager_store_context_returns_snapshot_id(
    manager: MultiProjectManager, project_id: str, db: Ctxdb
) -> None:
    phase_id = manager.create_phase(project_id, 1, "Build")
    snapshot_id = manager.store_context(project_id, {"k": "v"}, "low", "notes", phase_id)
    item = db.context.get(snapshot_id)
    assert (item["priority"], item["content_type"], item["phase_id"], item["content"]) == (
        "LOW", "notes", phase_id, {"k": "v"})
    default = db.context.get(manager.store_context(project_id, {"k": 2}))
    assert (default["priority"], default["content_type"], default["phase_id"]) == (
        "HIGH", "code", None)


def test_manager_bad_input_is_typed_and_changes_nothing(
    manager: MultiProjectManager, project_id: str, db: Ctxdb
) -> None:
    before = snapshot(db)
    with pytest.raises(ProjectNotFoundError, match="proj_missing"):
        manager.launch_instance("proj_missing")
    with pytest.raises(PhaseNotFoundError):
        manager.launch_instance(project_id, phase_id=999)
    with pytest.raises(ProjectNotFoundError):
        manager.create_phase("proj_missing", 1, "x")
    with pytest.raises(ValidationError, match="story_points"):
        manager.create_project("Negative", "bad", -1)
    with pytest.raises(InvalidPriorityError, match="URGENT"):
        manager.store_context(project_id, {"a": 1}, "URGENT")
    with pytest.raises(InvalidContentError):
        manager.store_context(project_id, {"a": {1, 2}})
    assert snapshot(db) == before


# --- SQLiteContextLoader -------------------------------------------------------------------


def test_load_context_for_instance_registers_and_returns_critical(
    loader: SQLiteContextLoader, project_id: str, db: Ctxdb
) -> None:
    critical = loader.store_context(project_id, {"rule": "never"}, "CRITICAL")
    loader.store_context(project_id, {"note": "later"}, "MEDIUM")
    loaded = loader.load_context_for_instance("inst_custom_1", project_id)
    assert set(loaded) == {"instance_id", "project_id", "phase_id", "critical_context",
                           "status", "load_time_ms"}
    assert (loaded["instance_id"], loaded["project_id"], loaded["phase_id"],
            loaded["status"]) == ("inst_custom_1", project_id, None, "ready")
    assert isinstance(loaded["load_time_ms"], float) and loaded["load_time_ms"] >= 0
    [item] = loaded["critical_context"]
    assert set(item) >= ITEM_KEYS
    assert (item["snapshot_id"], item["item_id"], item["content"]) == (
        critical, critical, {"rule": "never"})
    assert db.instances.get("inst_custom_1")["status"] == "active"


def test_get_full_context_groups_by_priority_and_phase(
    loader: SQLiteContextLoader, manager: MultiProjectManager, project_id: str
) -> None:
    one, two = (manager.create_phase(project_id, n, f"P{n}") for n in (1, 2))
    ids = {
        "shared": loader.store_context(project_id, {"x": 0}, "HIGH"),
        "one": loader.store_context(project_id, {"x": 1}, "LOW", phase_id=one),
        "two": loader.store_context(project_id, {"x": 2}, "LOW", phase_id=two),
        "crit": loader.store_context(project_id, {"x": 3}, "CRITICAL"),
    }
    everything = loader.get_full_context(project_id)
    assert list(everything) == ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
    assert [i["snapshot_id"] for i in everything["CRITICAL"]] == [ids["crit"]]
    assert [i["snapshot_id"] for i in everything["HIGH"]] == [ids["shared"]]
    assert everything["MEDIUM"] == []
    assert [i["snapshot_id"] for i in everything["LOW"]] == [ids["one"], ids["two"]]
    in_phase_one = loader.get_full_context(project_id, phase_id=one)
    assert [i["snapshot_id"] for i in in_phase_one["LOW"]] == [ids["one"]]
    assert [i["snapshot_id"] for i in in_phase_one["HIGH"]] == [ids["shared"]]


def test_clear_instance_tokens_resets_usage_and_keeps_context(
    loader: SQLiteContextLoader, tokens: TokenManager, project_id: str, db: Ctxdb
) -> None:
    loader.store_context(project_id, {"keep": True}, "CRITICAL")
    loader.load_context_for_instance("inst_clear", project_id)
    tokens.update_token_usage("inst_clear", 150_000)
    assert loader.clear_instance_tokens("inst_clear") is None
    instance = db.instances.get("inst_clear")
    assert (instance["current_token_usage"], instance["generation"]) == (0, 1)
    handoff = db.tokens.latest_handoff(instance_id="inst_clear")
    assert handoff is not None
    assert (handoff["kind"], handoff["tokens_before"]) == ("clear", 150_000)
    assert [i["content"] for i in loader.get_full_context(project_id)["CRITICAL"]] == [
        {"keep": True}]
    assert db.audit_log(entity_id="inst_clear", limit=1)[0]["action"] == "tokens.clear"


def test_clear_instance_tokens_does_not_read_the_pack(make_settings: Any) -> None:
    """A plain clear reads nothing back, whatever the project's CRITICAL context."""
    settings = make_settings(pack_budget_fraction=0.01)
    with Ctxdb.open(settings) as db, SQLiteContextLoader(settings.url) as loader:
        project_id = db.projects.create("Tight")["project_id"]
        db.context.store(project_id, {"big": "x" * 20_000}, "CRITICAL")
        instance_id = db.instances.launch(project_id)["instance_id"]
        db.tokens.update_usage(instance_id, 9_000)
        loader.clear_instance_tokens(instance_id)
        assert db.instances.get(instance_id)["current_token_usage"] == 0


def test_update_heartbeat(loader: SQLiteContextLoader, project_id: str, db: Ctxdb) -> None:
    loader.load_context_for_instance("inst_beat", project_id)
    before = db.instances.get("inst_beat")["last_heartbeat"]
    db.instances.set_status("inst_beat", "crashed")
    assert loader.update_heartbeat("inst_beat") is None
    after = db.instances.get("inst_beat")
    assert after["status"] == "active" and after["last_heartbeat"] >= before


def test_loader_bad_input_is_typed_and_changes_nothing(
    loader: SQLiteContextLoader, project_id: str, db: Ctxdb
) -> None:
    before = snapshot(db)
    with pytest.raises(ProjectNotFoundError):
        loader.load_context_for_instance("inst_x", "proj_missing")
    with pytest.raises(ProjectNotFoundError):
        loader.get_full_context("proj_missing")
    with pytest.raises(InstanceNotFoundError, match="inst_missing"):
        loader.clear_instance_tokens("inst_missing")
    with pytest.raises(InstanceNotFoundError):
        loader.update_heartbeat("inst_missing")
    with pytest.raises(InvalidPriorityError):
        loader.store_context(project_id, {"a": 1}, priority="urgent")
    with pytest.raises(InvalidContentError):
        loader.store_context(project_id, {"when": object()})
    with pytest.raises(InvalidContentError):
        loader.store_context(project_id, {"nan": float("nan")})
    with pytest.raises(ProjectNotFoundError):
        loader.store_context("proj_missing", {"a": 1})
    assert snapshot(db) == before


# --- TokenManager --------------------------------------------------------------------------


def test_check_and_update_token_usage(
    tokens: TokenManager, manager: MultiProjectManager, project_id: str
) -> None:
    instance_id = manager.launch_instance(project_id)
    assert tokens.update_token_usage(instance_id, 50_000) is None
    usage = tokens.check_token_usage(instance_id)
    assert set(usage) >= USAGE_KEYS
    assert (usage["instance_id"], usage["project_id"]) == (instance_id, project_id)
    assert (usage["current_token_usage"], usage["tokens_remaining"]) == (50_000, 150_000)
    assert usage["percentage"] == pytest.approx(25.0)


def test_usage_is_checked_against_the_instances_own_window(
    tokens: TokenManager, project_id: str, db: Ctxdb
) -> None:
    small = db.instances.launch(project_id, context_window=1_000)["instance_id"]
    tokens.update_token_usage(small, 1_000)
    before = snapshot(db)
    for bad in (1_001, -1):
        with pytest.raises(TokenUsageOutOfRangeError, match="1000"):
            tokens.update_token_usage(small, bad)
    with pytest.raises(TokenUsageOutOfRangeError):
        tokens.update_token_usage(small, "12")  # type: ignore[arg-type]
    with pytest.raises(InstanceNotFoundError):
        tokens.update_token_usage("inst_missing", 1)
    assert snapshot(db) == before
    assert tokens.check_token_usage(small)["percentage"] == pytest.approx(100.0)


def test_clear_and_reload_returns_seed_shape(
    tokens: TokenManager, manager: MultiProjectManager, project_id: str
) -> None:
    instance_id = manager.launch_instance(project_id)
    critical = manager.store_context(project_id, {"c": 1}, "CRITICAL")
    manager.store_context(project_id, {"h": 1}, "HIGH")
    manager.store_context(project_id, {"m": 1}, "MEDIUM")
    tokens.update_token_usage(instance_id, 123_456)
    result = tokens.clear_and_reload(instance_id)
    assert set(result) >= RELOAD_KEYS
    assert (result["tokens_before"], result["tokens_after"], result["status"]) == (
        123_456, 0, "ready")
    assert (result["context_items_loaded"], result["critical_items"], result["high_items"],
            result["medium_items"], result["low_items"]) == (3, 1, 1, 1, 0)
    assert critical in {item["snapshot_id"] for item in result["items"]}
    assert tokens.check_token_usage(instance_id)["current_token_usage"] == 0


def test_the_seed_cycle_goes_on_when_critical_exceeds_the_reload_budget(
    tokens: TokenManager, manager: MultiProjectManager, project_id: str, db: Ctxdb
) -> None:
    """The seed's loop (work to 95%, auto-manage, repeat) with CRITICAL items over 25% of the
    window: every round clears, reloads what fits, and names the rest by snapshot id."""
    instance_id = manager.launch_instance(project_id)
    kept = [db.context.store(project_id, {"rule": n}, "CRITICAL", token_count=20_000)["item_id"]
            for n in range(3)]  # 60,000 tokens: the reload budget is 50,000
    for generation in range(1, 4):
        tokens.update_token_usage(instance_id, 190_000)
        result = tokens.auto_manage_tokens(instance_id)
        assert result is not None and set(result) >= RELOAD_KEYS
        assert (result["tokens_before"], result["tokens_after"], result["status"]) == (
            190_000, 0, "ready")
        assert result["critical_items"] == result["context_items_loaded"] == 2
        assert [i["snapshot_id"] for i in result["items"]] == kept[:2]
        assert [(i["snapshot_id"], i["token_count"]) for i in result["critical_omitted"]] == [
            (kept[2], 20_000)]
        assert db.instances.get(instance_id)["generation"] == generation
    result = tokens.clear_and_reload(instance_id)
    assert [i["snapshot_id"] for i in result["critical_omitted"]] == [kept[2]]
    assert tokens.check_token_usage(instance_id)["current_token_usage"] == 0


def test_auto_manage_tokens_threshold(
    tokens: TokenManager, manager: MultiProjectManager, project_id: str, db: Ctxdb
) -> None:
    instance_id = manager.launch_instance(project_id)
    tokens.update_token_usage(instance_id, 169_999)  # just under 85% of 200k
    assert tokens.auto_manage_tokens(instance_id) is None
    assert db.instances.get(instance_id)["generation"] == 0
    tokens.update_token_usage(instance_id, 170_000)
    result = tokens.auto_manage_tokens(instance_id)
    assert result is not None and (result["tokens_before"], result["tokens_after"]) == (
        170_000, 0)
    tokens.update_token_usage(instance_id, 100_000)
    assert tokens.auto_manage_tokens(instance_id, threshold=0.5) is not None
    before = snapshot(db)
    for bad in (0, 1.5, "high"):
        with pytest.raises(ValidationError, match="threshold"):
            tokens.auto_manage_tokens(instance_id, threshold=bad)  # type: ignore[arg-type]
    with pytest.raises(InstanceNotFoundError):
        tokens.auto_manage_tokens("inst_missing")
    with pytest.raises(InstanceNotFoundError):
        tokens.clear_and_reload("inst_missing")
    with pytest.raises(InstanceNotFoundError):
        tokens.check_token_usage("inst_missing")
    assert snapshot(db) == before


def test_get_all_instance_usage(
    tokens: TokenManager, manager: MultiProjectManager, project_id: str
) -> None:
    assert tokens.get_all_instance_usage() == {
        "instances": [], "total_instances": 0, "total_tokens_used": 0, "average_usage": 0.0}
    calm, busy = manager.launch_instance(project_id), manager.launch_instance(project_id)
    tokens.update_token_usage(calm, 20_000)
    tokens.update_token_usage(busy, 180_000)
    usage = tokens.get_all_instance_usage()
    assert (usage["total_instances"], usage["total_tokens_used"]) == (2, 200_000)
    assert usage["average_usage"] == pytest.approx(100_000)
    by_id = {row["instance_id"]: row for row in usage["instances"]}
    assert all({"instance_id", "project_id", "current_token_usage", "percentage",
                "status"} <= set(row) for row in by_id.values())
    assert (by_id[calm]["status"], by_id[busy]["status"]) == ("healthy", "warning")
    assert by_id[busy]["percentage"] == pytest.approx(90.0)


# --- construction, paths, closing ----------------------------------------------------------


@pytest.mark.parametrize("cls", [SQLiteContextLoader, MultiProjectManager, TokenManager])
def test_closed_objects_refuse_work_and_close_twice(
    cls: type[SQLiteContextLoader | MultiProjectManager | TokenManager], settings: Settings
) -> None:
    opened = cls(settings.url)
    opened.close()
    opened.close()
    with pytest.raises(StorageError, match="closed"):
        _ = opened.db


def test_db_path_must_be_a_string(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="db_path"):
        MultiProjectManager(Path(settings.url))  # type: ignore[arg-type]


def test_relative_sqlite_path_is_resolved_at_construction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite only: where a relative path points is a SQLite question."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    with MultiProjectManager() as manager:  # the seed's default file name
        monkeypatch.chdir(second)
        project_id = manager.create_project("Here", "in the first directory")
        assert manager.db_path == str(first / "ultrathink_context.db")
    assert (first / "ultrathink_context.db").is_file()
    assert not (second / "ultrathink_context.db").exists()
    with MultiProjectManager(str(first / "ultrathink_context.db")) as again:
        assert [p["project_id"] for p in again.get_all_projects()] == [project_id]


def test_classes_share_one_database(
    settings: Settings, manager: MultiProjectManager, project_id: str
) -> None:
    instance_id = manager.launch_instance(project_id)
    with TokenManager(settings.url) as tokens, SQLiteContextLoader(settings.url) as loader:
        tokens.update_token_usage(instance_id, 10)
        loader.store_context(project_id, {"from": "loader"}, "CRITICAL")
        assert manager.get_project_summary()[0]["total_tokens"] == 10
        assert manager.get_project_summary()[0]["total_snapshots"] == 1


# --- AsyncContextLoader --------------------------------------------------------------------


def test_async_loader_methods_are_coroutines_mirroring_the_loader() -> None:
    seed_methods = ["load_context_for_instance", "get_full_context", "store_context",
                    "clear_instance_tokens", "update_heartbeat", "close"]
    for name in seed_methods:
        method = getattr(AsyncContextLoader, name)
        assert inspect.iscoroutinefunction(method), name
        sync = getattr(SQLiteContextLoader, name)
        assert list(inspect.signature(method).parameters) == list(
            inspect.signature(sync).parameters), name


def test_async_loader_round_trip(settings: Settings, project_id: str, db: Ctxdb) -> None:
    async def scenario() -> dict[str, Any]:
        async with AsyncContextLoader(settings.url) as loader:
            stored = await asyncio.gather(*(
                loader.store_context(project_id, {"n": n}, "CRITICAL") for n in range(5)))
            loaded = await loader.load_context_for_instance("inst_async", project_id)
            await loader.update_heartbeat("inst_async")
            full = await loader.get_full_context(project_id)
            db.tokens.update_usage("inst_async", 5_000)
            await loader.clear_instance_tokens("inst_async")
            with pytest.raises(InstanceNotFoundError):
                await loader.update_heartbeat("inst_missing")
            with pytest.raises(InvalidPriorityError):
                await loader.store_context(project_id, {}, "NOPE")
            return {"stored": stored, "loaded": loaded, "full": full}

    result = asyncio.run(scenario())
    assert len(set(result["stored"])) == 5
    assert sorted(i["snapshot_id"] for i in result["loaded"]["critical_context"]) == sorted(
        result["stored"])
    assert sorted(i["content"]["n"] for i in result["full"]["CRITICAL"]) == list(range(5))
    assert result["loaded"]["status"] == "ready"
    assert db.instances.get("inst_async")["current_token_usage"] == 0
    assert db.tokens.latest_handoff(instance_id="inst_async") is not None
