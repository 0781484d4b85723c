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
