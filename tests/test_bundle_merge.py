"""Project bundles moved between databases that both hold projects (issue: an import with
--replace overwrote another project's rows). The numbers of items, tasks, audit entries …
overlap between the two databases; every other project's records stay byte for byte what they
were, the moved project reads the same, its references follow its new numbers, moving it
back changes nothing, and every audit chain verifies. On both backends, across backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bundle_data import populate
from ctxdb.errors import BundleError, ImportConflictError
from ctxdb.service import Ctxdb
from test_bundles import open_db, records


def populate_other(db: Ctxdb) -> str:
    """A team database's own project, numbered from 1 like any other database."""
    pid = db.projects.create("Team", "the team's own project")["project_id"]
    phase = db.phases.create(pid, 1, "plan", 5)["phase_id"]
    db.instances.launch(pid, phase, instance_id="team-lead")
    db.context.store(pid, {"rule": "never deploy on Fridays"}, "CRITICAL",
                     created_by="team-lead")
    old = db.context.store(pid, {"api": "v1"}, "HIGH")
    db.context.supersede(old["item_id"], {"api": "v2"})
    for number in range(5):
        db.context.store(pid, {"note": number}, "MEDIUM")
    parent = db.tasks.create(pid, "migrate")["task_id"]
    child = db.tasks.create(pid, "migrate users", parent_task_id=parent)["task_id"]
    db.tasks.create(pid, "announce", depends_on=[child])
    sent = db.messages.send(pid, "instance", "team-lead", {"ping": 1}, sender="ops")
    db.messages.inbox("team-lead", 30)
    db.messages.ack(sent["message_id"], "team-lead")
    chat = db.conversations.create(pid, "support", "u-9")["session_id"]
    db.conversations.append(chat, "user", {"text": "hello team"})
    db.approvals.request(pid, "deploy", {"env": "staging"})
    db.checkpoints.save("team-lead", {"cursor": 3}, label="start")
    db.memories.put(pid, "team", "style", {"tabs": False})
    db.audit_chain.seal()
    return str(pid)


def project_records(db: Ctxdb, project_id: str, path: Path) -> list[bytes]:
    """The project's records, as a project bundle holds them (ids and content)."""
    db.bundles.export(path, project_id, overwrite=True)
    return records(path)


def snapshot(db: Ctxdb, tmp_path: Path, name: str) -> dict[str, list[bytes]]:
    return {p["project_id"]: project_records(db, p["project_id"], tmp_path / f"{name}.jsonl")
            for p in db.projects.list()}


def assert_chains_verify(db: Ctxdb) -> dict[str, Any]:
    report = db.audit_chain.verify()
    assert report["ok"] and report["problem_count"] == 0, report["problems"]
    return report


def critical(db: Ctxdb, project_id: str) -> list[Any]:
    return [item["content"] for item in db.context.full(project_id)["CRITICAL"]]


@pytest.fixture
def laptop(tmp_path: Path) -> Iterator[tuple[Ctxdb, str]]:
    """A second database (SQLite) holding the populated projects: (its db, the shop's id)."""
    source = open_db(str(tmp_path / "laptop.db"), tmp_path)
    ids = populate(source, tmp_path)
    yield source, str(ids["project_id"])
    source.close()


def test_a_project_bundle_moves_next_to_other_projects_without_touching_them(
    db: Ctxdb, laptop: Any, tmp_path: Path
) -> None:
    source, shop = laptop
    team = populate_other(db)
    team_before = project_records(db, team, tmp_path / "team.jsonl")
    team_critical = critical(db, team)
    exported = source.bundles.export(tmp_path / "shop.jsonl", shop)
    plan = db.bundles.import_bundle(tmp_path / "shop.jsonl", dry_run=True)
    assert project_records(db, team, tmp_path / "team.jsonl") == team_before
    # What the issue did: --replace, as the old conflict message suggested.
    result = db.bundles.import_bundle(tmp_path / "shop.jsonl", replace=True)
    assert {k: plan[k] for k in ("inserted", "renumbered", "resealed")} == {
        k: result[k] for k in ("inserted", "renumbered", "resealed")}
    assert (result["inserted"], result["replaced"], result["conflicts"]) == (
        exported["records"], 0, 0)
    assert result["renumbered"] > 0 and result["resealed"][shop]["seals"] > 0
    assert project_records(db, team, tmp_path / "team.jsonl") == team_before
    assert critical(db, team) == team_critical
    # The moved project reads the same (but for numbers) and its references follow them.
    assert _without_ids(db.context.full(shop)) == _without_ids(source.context.full(shop))
    assert [t["title"] for t in db.tasks.list(shop)] == [t["title"]
                                                         for t in source.tasks.list(shop)]
    _assert_references_follow(db, shop, tmp_path)
    report = assert_chains_verify(db)
    assert report["chains"][shop]["head"] == result["resealed"][shop]["head"]
    assert report["chains"][shop]["seals"] == source.audit_chain.verify()["chains"][shop]["seals"]
    # New rows of either project are numbered after everything.
    added = db.context.store(team, {"after": "the move"}, "HIGH")
    assert added["item_id"] > max(i["item_id"] for items in db.context.full(shop).values()
                                  for i in items if i["item_id"] != added["item_id"])
    # Importing it again changes nothing, with or without --replace.
    for replace in (False, True):
        again = db.bundles.import_bundle(tmp_path / "shop.jsonl", replace=replace)
        assert (again["inserted"], again["replaced"]) == (0, 0), again["tables"]
        assert again["skipped"] == exported["records"]


def test_project_bundles_moved_both_ways_and_back(
    db: Ctxdb, laptop: Any, tmp_path: Path
) -> None:
    source, shop = laptop
    team = populate_other(db)
    laptop_before = snapshot(source, tmp_path, "laptop-before")
    team_db_before = snapshot(db, tmp_path, "team-before")
    source.bundles.export(tmp_path / "shop.jsonl", shop)
    db.bundles.export(tmp_path / "team.jsonl", team)
    db.bundles.import_bundle(tmp_path / "shop.jsonl")
    source.bundles.import_bundle(tmp_path / "team.jsonl")
    laptop_after = snapshot(source, tmp_path, "laptop-after")
    team_db_after = snapshot(db, tmp_path, "team-after")
    assert {p: r for p, r in laptop_after.items() if p != team} == laptop_before
    assert {p: r for p, r in team_db_after.items() if p != shop} == team_db_before
    assert_chains_verify(db)
    assert_chains_verify(source)
    # And back: each project into the database it came from, where it still is: nothing new.
    db.bundles.export(tmp_path / "shop-moved.jsonl", shop)
    source.bundles.export(tmp_path / "team-moved.jsonl", team)
    assert records(tmp_path / "shop-moved.jsonl") != records(tmp_path / "shop.jsonl")
    for target, bundle in ((source, "shop-moved.jsonl"), (db, "team-moved.jsonl")):
        back = target.bundles.import_bundle(tmp_path / bundle)
        assert back["inserted"] == 0 and back["skipped"] == back["records"], back["tables"]
    assert snapshot(source, tmp_path, "laptop-back") == laptop_after
    assert snapshot(db, tmp_path, "team-back") == team_db_after
    assert_chains_verify(db)
    assert_chains_verify(source)
    # Into an empty database a project bundle keeps its numbers exactly.
    with open_db(str(tmp_path / "third.db"), tmp_path) as third:
        third.bundles.import_bundle(tmp_path / "shop-moved.jsonl")
        assert project_records(third, shop, tmp_path / "third.jsonl") == records(
            tmp_path / "shop-moved.jsonl")
        assert_chains_verify(third)


def test_replace_only_overwrites_rows_of_the_bundle_s_project(
    db: Ctxdb, laptop: Any, tmp_path: Path
) -> None:
    source, shop = laptop
    team = populate_other(db)
    source.bundles.export(tmp_path / "shop.jsonl", shop)
    db.bundles.import_bundle(tmp_path / "shop.jsonl")
    db.projects.update(shop, description="changed on the team database")
    with pytest.raises(ImportConflictError, match="lose their changes") as refused:
        db.bundles.import_bundle(tmp_path / "shop.jsonl")
    assert refused.value.details["project_id"] == shop
    with pytest.raises(ImportConflictError, match="lose their changes") as planned:
        db.bundles.import_bundle(tmp_path / "shop.jsonl", dry_run=True)
    assert planned.value.details["examples"] == [
        {"table": "projects", "key": {"project_id": shop}}]
    team_before = project_records(db, team, tmp_path / "team.jsonl")
    replaced = db.bundles.import_bundle(tmp_path / "shop.jsonl", replace=True)
    assert replaced["replaced"] == 1 and replaced["inserted"] == 0
    assert db.projects.get(shop)["description"] == source.projects.get(shop)["description"]
    assert project_records(db, team, tmp_path / "team.jsonl") == team_before
    assert_chains_verify(db)


def test_a_key_held_by_another_project_is_refused_even_with_replace(
    db: Ctxdb, laptop: Any, tmp_path: Path
) -> None:
    source, shop = laptop
    team = db.projects.create("Team")["project_id"]
    db.instances.launch(team, instance_id="coder")  # the laptop's Shop has a "coder" too
    source.bundles.export(tmp_path / "shop.jsonl", shop)
    before = project_records(db, team, tmp_path / "team.jsonl")
    for replace in (False, True):
        with pytest.raises(ImportConflictError, match="never overwrites another project"):
            db.bundles.import_bundle(tmp_path / "shop.jsonl", replace=replace)
        with pytest.raises(ImportConflictError, match="with or without --replace"):
            db.bundles.import_bundle(tmp_path / "shop.jsonl", replace=replace, dry_run=True)
    assert project_records(db, team, tmp_path / "team.jsonl") == before
    assert [p["project_id"] for p in db.projects.list()] == [team]


def test_a_bundle_whose_chain_does_not_verify_is_not_sealed_again(
    db: Ctxdb, laptop: Any, tmp_path: Path
) -> None:
    source, shop = laptop
    populate_other(db)
    source.storage.write(lambda tx: tx.execute_raw(
        "UPDATE audit_log SET actor = 'someone-else' WHERE audit_id = "
        "(SELECT max(audit_id) FROM audit_seals WHERE chain = :chain)", {"chain": shop}))
    assert not source.audit_chain.verify(shop)["ok"]
    source.bundles.export(tmp_path / "shop.jsonl", shop)
    with pytest.raises(BundleError, match="does not verify"):
        db.bundles.import_bundle(tmp_path / "shop.jsonl")
    assert shop not in {p["project_id"] for p in db.projects.list()}


def _without_ids(full: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
    return {priority: [(i["sequence_number"], json.dumps(i["content"], sort_keys=True),
                        i["token_count"]) for i in items] for priority, items in full.items()}


def _assert_references_follow(db: Ctxdb, project_id: str, folder: Path) -> None:
    """References between the moved rows point at the moved rows."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for line in project_records(db, project_id, folder / "refs.jsonl"):
        record = json.loads(line)
        rows.setdefault(record["table"], []).append(record["row"])
    numbers = {name: {row[key] for row in rows.get(name, [])} for name, key in (
        ("context_items", "item_id"), ("archived_context_items", "item_id"),
        ("tasks", "task_id"), ("phases", "phase_id"), ("audit_log", "audit_id"),
        ("handoffs", "handoff_id"), ("messages", "message_id"))}
    items = numbers["context_items"] | numbers["archived_context_items"]
    superseded = [row for name in ("context_items", "archived_context_items")
                  for row in rows.get(name, []) if row.get("superseded_by") is not None]
    assert superseded and all(row["superseded_by"] in items for row in superseded)
    assert all(row.get("phase_id") in numbers["phases"] | {None}
               for name in ("instances", "context_items", "checkpoints", "approval_gates")
               for row in rows.get(name, []))
    assert all({row["task_id"], row["depends_on_task_id"]} <= numbers["tasks"]
               for row in rows["task_dependencies"])
    assert all(row["message_id"] in numbers["messages"] for row in rows["message_deliveries"])
    assert all(row["audit_id"] in numbers["audit_log"] for row in rows["audit_seals"])
    assert all(set(row["item_ids"]) <= items and row.get("handoff_id") in (
        numbers["handoffs"] | {None}) for row in rows.get("injections", []))
    items = {i["item_id"]: i for items in db.context.full(project_id).values() for i in items}
    tasks = {t["task_id"]: t for t in db.tasks.list(project_id)}
    child = next(t for t in tasks.values() if t["title"] == "card form")
    assert tasks[child["parent_task_id"]]["title"] == "checkout"
    for item in items.values():  # the audit names each item by its number here
        entries = db.audit_log(project_id, entity_id=str(item["item_id"]))
        stored = [e for e in entries if e["action"] in ("context.store", "context.supersede")]
        assert stored and all(e["entity_type"] == "context_item" for e in stored)
        assert all(e["details"]["sequence_number"] == item["sequence_number"]
                   for e in stored if e["action"] == "context.store")


def test_a_project_bundle_with_rows_of_another_project_is_refused(
    db: Ctxdb, laptop: Any, tmp_path: Path
) -> None:
    """A bundle re-signed after its rows were given to another project (which no checksum
    catches) cannot write into that project."""
    from test_bundles import _resigned

    source, shop = laptop
    team = populate_other(db)
    source.bundles.export(tmp_path / "shop.jsonl", shop)

    def into_team(table: str, row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "project_id": team} if table == "context_items" else row

    forged = tmp_path / "forged.jsonl"
    forged.write_bytes(_resigned((tmp_path / "shop.jsonl").read_bytes(), into_team))
    before = project_records(db, team, tmp_path / "team.jsonl")
    for replace in (False, True):
        with pytest.raises(BundleError, match=f"belongs to project {team}, not to the bundle"):
            db.bundles.import_bundle(forged, replace=replace)
    assert project_records(db, team, tmp_path / "team.jsonl") == before


def test_a_whole_database_bundle_joins_a_database_with_its_own_chains(
    db: Ctxdb, laptop: Any, tmp_path: Path
) -> None:
    """Both databases have a chain of audit entries of no project: the bundle's entries are
    sealed at the end of this database's chain, whose own seals stay as they are."""
    from ctxdb.service.common import audit

    source, shop = laptop
    team = populate_other(db)
    # Entries of their own in each: written the same way within the same clock tick, the
    # two would be one entry to the merge (it recognises an audit entry by its content).
    for store, entity in ((source, "laptop-note"), (db, "team-note")):
        store.storage.write(lambda tx, entity=entity: audit(tx, "user:test", "test.note",
                                                            "database", entity, None))
        store.audit_chain.seal()
    before = snapshot(db, tmp_path, "before")
    own_chain = assert_chains_verify(db)["chains"][""]
    source.bundles.export(tmp_path / "laptop.jsonl")
    result = db.bundles.import_bundle(tmp_path / "laptop.jsonl")
    assert result["resealed"][""]["seals"] == source.audit_chain.verify()["chains"][""]["seals"]
    report = assert_chains_verify(db)
    assert report["chains"][""]["seals"] == own_chain["seals"] + result["resealed"][""]["seals"]
    assert {p: r for p, r in snapshot(db, tmp_path, "after").items() if p in before} == before
    assert {shop, team} <= {p["project_id"] for p in db.projects.list()}
    again = db.bundles.import_bundle(tmp_path / "laptop.jsonl")
    assert again["inserted"] == 0 and again["skipped"] == again["records"], {
        name: t for name, t in again["tables"].items() if t["inserted"]}
    assert_chains_verify(db)


def test_a_moved_project_changed_at_its_source_is_recognised_by_its_natural_keys(
    db: Ctxdb, laptop: Any, tmp_path: Path
) -> None:
    """Moved again after changes at its source, its changed rows (numbered otherwise here)
    are conflicts found by their natural keys, which --replace settles in place: no row is
    duplicated and the other project is not touched."""
    source, shop = laptop
    team = populate_other(db)
    source.bundles.export(tmp_path / "shop.jsonl", shop)
    assert db.bundles.import_bundle(tmp_path / "shop.jsonl")["renumbered"] > 0
    team_before = project_records(db, team, tmp_path / "team.jsonl")
    newest = source.context.full(shop)["HIGH"][-1]
    source.context.supersede(newest["item_id"], {"file": "src/renamed.py"})
    release = next(t for t in source.tasks.list(shop) if t["title"] == "release")
    source.tasks.cancel(release["task_id"])
    source.audit_chain.seal()
    source.bundles.export(tmp_path / "shop-later.jsonl", shop)
    with pytest.raises(ImportConflictError, match="lose their changes") as planned:
        db.bundles.import_bundle(tmp_path / "shop-later.jsonl", dry_run=True)
    assert {c["table"] for c in planned.value.details["examples"]} == {
        "projects", "context_items", "tasks"}
    with pytest.raises(ImportConflictError, match=r"^projects .* is here with different"):
        db.bundles.import_bundle(tmp_path / "shop-later.jsonl")
    result = db.bundles.import_bundle(tmp_path / "shop-later.jsonl", replace=True)
    assert result["replaced"] == 3 and result["conflicts"] == 0  # project, old item, task
    assert _without_ids(db.context.full(shop)) == _without_ids(source.context.full(shop))
    assert sorted((t["title"], t["status"]) for t in db.tasks.list(shop)) == sorted(
        (t["title"], t["status"]) for t in source.tasks.list(shop))
    assert project_records(db, team, tmp_path / "team.jsonl") == team_before
    _assert_references_follow(db, shop, tmp_path)
    report = assert_chains_verify(db)
    assert report["chains"][shop]["seals"] == source.audit_chain.verify()["chains"][shop]["seals"]
    again = db.bundles.import_bundle(tmp_path / "shop-later.jsonl")
    assert again["inserted"] == 0 and again["skipped"] == again["records"]
