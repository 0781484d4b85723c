"""The live siblings a new session is told about: the newest MAX_SIBLINGS of the project's
live instances, ties in heartbeat broken by id, across both live statuses (the query reads
each status apart from its MAX_SIBLINGS-th newest heartbeat on: issue 12)."""

from __future__ import annotations

from typing import Any

from ctxdb.service import Ctxdb
from ctxdb.service.usecases.continuity import MAX_SIBLINGS


def _raw(db: Ctxdb, sql: str, **params: Any) -> None:
    compiled = db.storage.dialect.compile(sql)
    db.storage.write(lambda tx: tx.execute_raw(compiled, params))


def test_the_newest_live_siblings_with_ties_across_both_statuses(db: Ctxdb) -> None:
    project_id = db.projects.create("fleet")["project_id"]
    ids = [f"inst-{n:02d}" for n in range(30)]
    for instance_id in ids:
        db.instances.launch(project_id, instance_id=instance_id)
    idle = set(ids[::3])
    for instance_id in idle:
        db.instances.set_status(instance_id, "idle")
    # Three heartbeats, each shared by ten instances of both statuses (one statement each:
    # one clock reading), so that the 20th newest falls inside a tie.
    ages = {instance_id: (5, 8, 12)[n % 3 if n < 27 else 2] for n, instance_id in
            enumerate(reversed(ids))}
    for age in (5, 8, 12):
        members = [instance_id for instance_id, a in ages.items() if a == age]
        slots = {f"i{n}": instance_id for n, instance_id in enumerate(members)}
        _raw(db, "UPDATE instances SET last_heartbeat = $AGO(:age) WHERE instance_id IN ("
             + ", ".join(f":{slot}" for slot in slots) + ")", age=age, **slots)
    _raw(db, "UPDATE instances SET last_heartbeat = $AGO(:age) WHERE instance_id = :id",
         age=3600, id=ids[7])  # silent: not live any more

    for own in ("", ids[4], ids[9]):
        expected = sorted((instance_id for instance_id in ids
                           if instance_id not in (own, ids[7])),
                          key=lambda instance_id: (ages[instance_id], instance_id))
        siblings = db.continuity.siblings(project_id, own or None)
        assert [row["instance_id"] for row in siblings] == expected[:MAX_SIBLINGS], own
        assert {row["instance_id"] for row in siblings if row["status"] == "idle"} == \
            idle.intersection(expected[:MAX_SIBLINGS])


def test_each_sibling_comes_with_the_tasks_it_holds_a_live_lease_on(db: Ctxdb) -> None:
    """The leases come with the siblings, in one statement (issue 12): each sibling's live
    ones, in task order; none of an expired lease, of another instance, nor a done task."""
    project_id = db.projects.create("fleet")["project_id"]
    for instance_id in ("a", "b", "c", "d"):
        db.instances.launch(project_id, instance_id=instance_id)
    tasks = [db.tasks.create(project_id, f"task {n}")["task_id"] for n in range(5)]
    for instance_id in ("a", "a", "b", "c", "d"):
        db.tasks.claim(project_id, instance_id, 600)
    _raw(db, "UPDATE tasks SET lease_expires_at = $AGO(:age) WHERE task_id = :id",
         age=60, id=tasks[3])  # c's lease ran out
    done = db.tasks.get(tasks[4])
    db.tasks.complete(tasks[4], done["epoch"])  # d's task is done: no lease held
    held = {row["instance_id"]: row["tasks"] for row in db.continuity.siblings(project_id, "b")}
    assert set(held) == {"a", "c", "d"}
    assert held["a"] == [{"task_id": task_id, "title": db.tasks.get(task_id)["title"],
                          "status": "claimed", "lease_owner": "a"}
                         for task_id in sorted(tasks[:2])]
    assert held["c"] == [] and held["d"] == []
