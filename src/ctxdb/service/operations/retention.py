"""Retention (``ctxdb gc``): what is old enough to leave the working set, and where it goes.

Five kinds (the fifth, idempotency keys, in ``idempotency_retention.py``), each collected in
batches; every batch is one transaction with its audit row (docs/retention.md has the policy
and the reasons). A batch changes at most ``batch_size`` records, whatever they are, so that
gc holds the write lock (SQLite's: the whole database's) only briefly, while agents work:

- ``memories``: expired memories are removed with their versions (the memory sweep);
- ``instances``: completed or crashed instances that ended more than ``retention_instances``
  seconds ago and hold no live task lease are removed; the rows that name them (handoffs,
  items, sessions, checkpoints …) keep their history with the instance set to NULL, which is
  what their foreign keys say. gc sets them to NULL itself, a batch at a time, and deletes
  the instance once nothing names it: an instance named by 100,000 items is many short
  transactions, not one long one;
- ``session_events``: the events of conversation sessions closed more than
  ``retention_session_events`` seconds ago are removed; the session row (its state, its
  counters) stays. Open sessions are never touched: their log is still being written;
- ``context_items``: items created more than ``retention_context_items`` seconds ago whose
  priority is in ``retention_context_priorities`` (never CRITICAL unless listed) are moved,
  unchanged and with their ids, to ``archived_context_items``; :meth:`RetentionService.
  unarchive` puts them back. An item another remaining item points at (``superseded_by``)
  stays, so that no reference dangles.

A dry run counts what would go and changes nothing.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

from ctxdb.domain.checks import check_batch_size
from ctxdb.domain.validation import (
    MAX_INTEGER,
    check_identifier,
    check_limit,
    check_non_negative_int,
)
from ctxdb.errors import ConflictError, ContextItemNotFoundError
from ctxdb.progress import NoProgress, Progress
from ctxdb.service.common import Service, audit, decode, decode_all
from ctxdb.service.operations.idempotency_retention import collect_idempotency_keys
from ctxdb.service.usecases.projects import require_project
from ctxdb.storage import Row, Tx

BATCH = 500  # records changed per transaction of gc, unless the caller says otherwise
MAX_PAGE = 1_000
# Every table whose rows name an instance, with the column (queries forget_instance_in_*);
# tests/test_retention.py checks it against the schema's foreign keys.
INSTANCE_REFERENCES = {
    "context_items": "created_by", "handoffs": "instance_id", "injections": "instance_id",
    "transcripts": "instance_id", "api_usage": "instance_id", "compactions": "instance_id",
    "sessions": "instance_id", "tasks": "lease_owner", "approval_gates": "instance_id",
    "command_runs": "instance_id", "checkpoints": "instance_id",
    "message_deliveries": "instance_id", "observations": "instance_id",
}


@dataclass(frozen=True)
class _Run:
    """One gc run, as each kind's collector needs it."""

    scope: str  # a project id, or '' for every project
    dry_run: bool
    actor: str
    progress: Progress
    batch: int  # records one transaction may change


def _kind_report(age: int | None, found: int, done: int, dry_run: bool, batches: int = 0,
                 **extra: Any) -> dict[str, Any]:
    """What one kind did: ``removed``/``archived`` counts are what *was* (or would be) done,
    in ``batches`` transactions."""
    return {"enabled": age != 0, "age_seconds": age, "found": found,
            "done": 0 if dry_run else done, "batches": 0 if dry_run else batches, **extra}


class RetentionService(Service):
    """``db.retention``: collects old records per the retention settings (docs/retention.md)."""

    def policy(self) -> dict[str, Any]:
        s = self.settings
        return {
            "memories": "expired (memory_ttl_* or the put's TTL)",
            "instances_after_seconds": s.retention_instances,
            "session_events_after_seconds": s.retention_session_events,
            "context_items_after_seconds": s.retention_context_items,
            "context_priorities": list(s.archivable_priorities),
            "idempotency_keys_after_seconds": s.retention_idempotency_keys,
        }

    def collect(self, project_id: str | None = None, *, dry_run: bool = False,
                actor: str | None = None, progress: Progress | None = None,
                batch_size: int = BATCH) -> dict[str, Any]:
        """Run every kind (or count, with ``dry_run``); returns counts per kind.

        ``progress`` hears of a phase per kind (``gc:memories`` …; totals unknown) and of the
        records each batch removed or archived. ``batch_size`` (1 to 1,000) bounds the
        records one transaction changes; the report counts each kind's ``batches``.
        """
        if project_id is not None:
            check_identifier(project_id, "project_id")
        check_batch_size(batch_size, MAX_PAGE)
        if project_id is not None:
            self.storage.read(lambda tx: require_project(tx, project_id))
        run = _Run(project_id or "", dry_run,
                   check_identifier(actor or self.settings.actor, "actor"),
                   progress or NoProgress(), batch_size)
        collectors = {"memories": self._memories, "instances": self._instances,
                      "session_events": self._session_events,
                      "context_items": self._context_items,
                      "idempotency_keys": lambda run: collect_idempotency_keys(
                          self.storage, self.settings.retention_idempotency_keys, run),
                      "audit_entries": self._audit_entries}
        kinds = {}
        for kind, collect_kind in collectors.items():
            run.progress.start(f"gc:{kind}", None)
            kinds[kind] = collect_kind(run)
        return {"dry_run": dry_run, "project_id": project_id, "policy": self.policy(),
                "kinds": kinds, "optimize": None if dry_run else self._optimize()}

    def _optimize(self) -> dict[str, Any]:
        """Rows were just removed and archived: refresh statistics, reclaim the space."""
        from ctxdb.service.operations.maintenance import MaintenanceService

        return MaintenanceService(self.storage, self.settings).optimize()

    # --- audit entries ---------------------------------------------------------------------

    def _audit_entries(self, run: _Run) -> dict[str, Any]:
        """Seal the audit entries written since the last sealing (of the project's chain, or
        of every chain), after the other kinds wrote theirs."""
        from ctxdb.service.operations.audit_chain import AuditChainService

        chains = AuditChainService(self.storage, self.settings)
        if run.dry_run:
            found, sealed = chains.unsealed(run.scope or None), 0
        else:
            found = sealed = chains.seal_new(run.scope or None, run.progress)
        return {"enabled": True, "age_seconds": None, "found": found, "done": sealed,
                "action": "sealed", "note": "written since the last sealing (docs/audit.md)"}

    # --- memories --------------------------------------------------------------------------

    def _memories(self, run: _Run) -> dict[str, Any]:
        found = int(self.storage.read(
            lambda tx: tx.value("count_expired_memories", project_id=run.scope)))
        removed = batches = 0
        if not run.dry_run and found:
            from ctxdb.service.usecases.memories import MemoryService

            sweeper = MemoryService(self.storage, self.settings)
            while batch := sweeper.sweep_expired(run.scope or None, limit=run.batch,
                                                 actor=run.actor):
                removed += batch  # each sweep: one transaction, a memory.expire row per memory
                batches += 1
                run.progress.advance(batch)
        return _kind_report(None, found, removed, run.dry_run, batches, action="removed")

    # --- instances -------------------------------------------------------------------------

    def _instances(self, run: _Run) -> dict[str, Any]:
        age = self.settings.retention_instances
        if not age:
            return _kind_report(age, 0, 0, run.dry_run, action="removed")
        if run.dry_run:
            found = len(self.storage.read(lambda tx: tx.all(
                "ended_instances", project_id=run.scope, age_seconds=age, limit=MAX_INTEGER)))
            return _kind_report(age, found, 0, True, action="removed")
        removed = batches = 0
        while (batch := self.storage.write(
                lambda tx: _remove_instances(tx, run, age))) is not None:
            removed, batches = removed + batch, batches + 1
            run.progress.advance(batch)
        return _kind_report(age, removed, removed, False, batches, action="removed")

    # --- session events --------------------------------------------------------------------

    def _session_events(self, run: _Run) -> dict[str, Any]:
        age = self.settings.retention_session_events
        if not age:
            return _kind_report(age, 0, 0, run.dry_run, action="removed", sessions=0)
        if run.dry_run:
            closed = self.storage.read(lambda tx: tx.all(
                "closed_sessions_with_events", project_id=run.scope, age_seconds=age,
                limit=MAX_INTEGER))
            found = sum(int(s["events"]) for s in closed)
            return _kind_report(age, found, 0, True, action="removed", sessions=len(closed))
        events = batches = 0
        sessions: set[str] = set()
        cursor = ""
        while True:
            def unit(tx: Tx, cursor: str = cursor) -> dict[str, int]:
                return _remove_events(tx, run, age, cursor)

            counts = self.storage.write(unit)
            if not counts:
                break
            cursor = max(counts)  # it may have more events: the next batch starts there
            sessions.update(counts)
            events, batches = events + sum(counts.values()), batches + 1
            run.progress.advance(sum(counts.values()))
        return _kind_report(age, events, events, False, batches, action="removed",
                            sessions=len(sessions))

    # --- context items ---------------------------------------------------------------------

    def _priority_params(self) -> dict[str, str]:
        names = list(self.settings.archivable_priorities) + [""] * 4
        return {f"p{n + 1}": names[n] for n in range(4)}

    def _context_items(self, run: _Run) -> dict[str, Any]:
        age = self.settings.retention_context_items
        if not age or not self.settings.archivable_priorities:
            return _kind_report(0, 0, 0, run.dry_run, action="archived", kept_referenced=0)
        archived = kept = batches = 0
        after = 0
        gone: set[int] = set()  # a dry run's "archived" items, which stay in the table
        while True:
            def unit(tx: Tx, after: int = after) -> tuple[int, int, int] | None:
                return self._archive_batch(tx, run, age, after, gone)

            batch = (self.storage.read if run.dry_run else self.storage.write)(unit)
            if batch is None:
                break
            moved, pinned, after = batch
            archived, kept, batches = archived + moved, kept + pinned, batches + 1
            run.progress.advance(moved)
        return _kind_report(age, archived, archived, run.dry_run, batches, action="archived",
                            kept_referenced=kept)

    def _archive_batch(self, tx: Tx, run: _Run, age: int, after: int,
                       gone: set[int]) -> tuple[int, int, int] | None:
        """Archive one batch of candidates after ``after``; (moved, kept, last id) or None."""
        candidates = tx.all("archive_candidates", project_id=run.scope, age_seconds=age,
                            after_item_id=after, limit=run.batch, **self._priority_params())
        if not candidates:
            return None
        last = int(candidates[-1]["item_id"])
        referrers = tx.all("archive_candidate_referrers", after_item_id=after,
                           last_item_id=last)
        movable = _movable({int(c["item_id"]) for c in candidates}, referrers, gone)
        moving = [c for c in candidates if int(c["item_id"]) in movable]
        if run.dry_run:
            gone.update(movable)
        elif moving:
            for row in moving:
                tx.execute("copy_item_to_archive", item_id=row["item_id"], actor=run.actor)
                tx.execute("delete_archived_item", item_id=row["item_id"])
            audit(tx, run.actor, "retention.context_items", "retention", "context_items",
                  run.scope or None, age_seconds=age, archived=[r["item_id"] for r in moving])
        return len(moving), len(candidates) - len(moving), last

    # --- archived items --------------------------------------------------------------------

    def archived(self, project_id: str, *, after_item_id: int = 0,
                 limit: int = 100) -> builtins.list[dict[str, Any]]:
        """A page of a project's archived items, in id order after ``after_item_id``."""
        check_identifier(project_id, "project_id")
        check_non_negative_int(after_item_id, "after_item_id", MAX_INTEGER)
        check_limit(limit, MAX_PAGE)

        def unit(tx: Tx) -> builtins.list[dict[str, Any]]:
            require_project(tx, project_id)
            return decode_all(tx.all("list_archived_items", project_id=project_id,
                                     after_item_id=after_item_id, limit=limit))

        return self.storage.read(unit)

    def unarchive(self, item_id: int, *, project_id: str | None = None,
                  actor: str | None = None) -> builtins.list[dict[str, Any]]:
        """Put an archived item back into the context, unchanged, with its id.

        The items it was superseded by that are archived too come back with it (its
        ``superseded_by`` must point at a live row). Returns the items restored.
        """
        check_non_negative_int(item_id, "item_id", MAX_INTEGER)
        if project_id is not None:
            check_identifier(project_id, "project_id")
        actor = check_identifier(actor or self.settings.actor, "actor")

        def unit(tx: Tx) -> builtins.list[dict[str, Any]]:
            chain = _archived_chain(tx, item_id, project_id)
            for row in reversed(chain):  # the newest first: each points at a live row
                _check_key_free(tx, row)
                tx.execute("restore_archived_item", item_id=row["item_id"])
                tx.execute("forget_archived_item", item_id=row["item_id"])
            audit(tx, actor, "context.unarchive", "context_item", item_id,
                  chain[0]["project_id"], restored=[r["item_id"] for r in chain])
            return [decode(row) for row in chain]

        return self.storage.write(unit)


def _remove_instances(tx: Tx, run: _Run, age: int) -> int | None:
    """One batch: forget the references to ended instances (what ``ON DELETE SET NULL``
    would do) and delete those no row names any more, ``run.batch`` rows in all. Returns how
    many instances went, or None when there was nothing to do."""
    budget = run.batch
    removed: builtins.list[Row] = []
    forgotten: dict[str, int] = {}
    for row in tx.all("ended_instances", project_id=run.scope, age_seconds=age,
                      limit=run.batch):
        instance_id = row["instance_id"]
        count = _forget_instance(tx, instance_id, budget)
        if count:
            forgotten[instance_id] = count
        budget -= count
        if budget == 0:
            break  # it may be named by more rows: the next batch goes on with it
        if tx.execute("delete_ended_instance", instance_id=instance_id, age_seconds=age):
            removed.append(row)
            budget -= 1
        if budget == 0:
            break
    if not removed and not forgotten:
        return None
    audit(tx, run.actor, "retention.instances", "retention", "instances", run.scope or None,
          age_seconds=age, removed=[(r["instance_id"], r["status"]) for r in removed],
          references_forgotten=forgotten)
    return len(removed)


def _forget_instance(tx: Tx, instance_id: str, budget: int) -> int:
    """Set up to ``budget`` rows that name the instance to NULL (its message deliveries are
    deleted: their foreign key cascades); returns how many."""
    done = 0
    for table in INSTANCE_REFERENCES:
        done += tx.execute(f"forget_instance_in_{table}", instance_id=instance_id,
                           limit=budget - done)
        if done == budget:
            break
    return done


def _remove_events(tx: Tx, run: _Run, age: int, cursor: str) -> dict[str, int]:
    """One batch: up to ``run.batch`` events of sessions closed long ago, from the session
    ``cursor`` on; returns the events removed per session."""
    budget = run.batch
    counts: dict[str, int] = {}
    for session in tx.all("closed_sessions_holding_events", project_id=run.scope,
                          age_seconds=age, from_session_id=cursor, limit=run.batch):
        count = tx.execute("delete_session_events", session_id=session["session_id"],
                           age_seconds=age, limit=budget)
        if count:
            counts[session["session_id"]] = count
        budget -= count
        if budget == 0:
            break
    if counts:
        audit(tx, run.actor, "retention.session_events", "retention", "session_events",
              run.scope or None, age_seconds=age, removed=counts)
    return counts


def _movable(candidates: set[int], referrers: builtins.list[Row],
             gone: set[int]) -> set[int]:
    """The candidates that can leave: none may be pointed at by an item that stays.

    ``gone`` are items an earlier batch of a dry run would have moved: no longer referrers.
    """
    pointing: dict[int, set[int]] = {}
    for row in referrers:
        if int(row["item_id"]) in gone:
            continue
        pointing.setdefault(int(row["superseded_by"]), set()).add(int(row["item_id"]))
    movable = set(candidates)
    changed = True
    while changed:  # keeping one item can pin the item it points at, and so on
        pinned = {c for c in movable if not pointing.get(c, set()) <= movable}
        movable -= pinned
        changed = bool(pinned)
    return movable


def _archived_chain(tx: Tx, item_id: int, project_id: str | None) -> builtins.list[Row]:
    """The archived item and, following ``superseded_by``, its archived successors."""
    row = tx.one("get_archived_item", item_id=item_id)
    if row is None or (project_id is not None and row["project_id"] != project_id):
        raise ContextItemNotFoundError(f"no archived context item {item_id}"
                                       + (f" in project {project_id}" if project_id else ""),
                                       item_id=item_id)
    chain = [row]
    while chain[-1]["superseded_by"] is not None:
        successor = tx.one("get_archived_item", item_id=chain[-1]["superseded_by"])
        if successor is None:
            break
        chain.append(successor)
    return chain


def _check_key_free(tx: Tx, row: Row) -> None:
    taken = tx.one("live_item_with_key", project_id=row["project_id"],
                   idempotency_key=row["idempotency_key"])
    if taken is not None:
        raise ConflictError(
            f"archived item {row['item_id']} cannot come back: its idempotency key is now "
            f"used by item {taken['item_id']}", item_id=row["item_id"],
            taken_by=taken["item_id"])
