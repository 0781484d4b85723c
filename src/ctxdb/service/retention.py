"""Retention (``ctxdb gc``): what is old enough to leave the working set, and where it goes.

Four kinds, each collected in batches; every batch is one transaction with its audit row
(see docs/retention.md for the policy and the reasons):

- ``memories``: expired memories are removed with their versions (the memory sweep);
- ``instances``: completed or crashed instances that ended more than ``retention_instances``
  seconds ago and hold no live task lease are removed; the rows that name them (handoffs,
  items, sessions, checkpoints …) keep their history with the instance set to NULL, which is
  what their foreign keys say;
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
from typing import Any

from ctxdb.domain.validation import MAX_INTEGER, check_identifier, check_non_negative_int
from ctxdb.errors import ConflictError, ContextItemNotFoundError, ValidationError
from ctxdb.service.common import Service, audit, decode, decode_all
from ctxdb.service.progress import NoProgress, Progress
from ctxdb.service.projects import require_project
from ctxdb.storage import Row, Tx

BATCH = 500
MAX_PAGE = 1_000
KINDS = ("memories", "instances", "session_events", "context_items")


def _kind_report(age: int | None, found: int, done: int, dry_run: bool,
                 **extra: Any) -> dict[str, Any]:
    """What one kind did: ``removed``/``archived`` counts are what *was* (or would be) done."""
    return {"enabled": age != 0, "age_seconds": age, "found": found,
            "done": 0 if dry_run else done, **extra}


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
        }

    def collect(self, project_id: str | None = None, *, dry_run: bool = False,
                actor: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
        """Run every kind (or count, with ``dry_run``); returns counts per kind.

        ``progress`` hears of a phase per kind (``gc:memories`` …; totals unknown) and of the
        records each batch removed or archived.
        """
        if project_id is not None:
            check_identifier(project_id, "project_id")
            self.storage.read(lambda tx: require_project(tx, project_id))
        actor = check_identifier(actor or self.settings.actor, "actor")
        scope, progress = project_id or "", progress or NoProgress()
        collectors = {"memories": self._memories, "instances": self._instances,
                      "session_events": self._session_events,
                      "context_items": self._context_items,
                      "audit_entries": self._audit_entries}
        kinds = {}
        for kind, collect_kind in collectors.items():
            progress.start(f"gc:{kind}", None)
            kinds[kind] = collect_kind(scope, dry_run, actor, progress)
        return {"dry_run": dry_run, "project_id": project_id, "policy": self.policy(),
                "kinds": kinds}

    # --- audit entries ---------------------------------------------------------------------

    def _audit_entries(self, scope: str, dry_run: bool, actor: str,
                       progress: Progress) -> dict[str, Any]:
        """Seal the audit entries written since the last sealing (of the project's chain, or
        of every chain), after the other kinds wrote theirs."""
        from ctxdb.service.audit_chain import AuditChainService

        chains = AuditChainService(self.storage, self.settings)
        if dry_run:
            found, sealed = chains.unsealed(scope or None), 0
        else:
            found = sealed = chains.seal_new(scope or None, progress)
        return {"enabled": True, "age_seconds": None, "found": found, "done": sealed,
                "action": "sealed", "note": "written since the last sealing (docs/audit.md)"}

    # --- memories --------------------------------------------------------------------------

    def _memories(self, scope: str, dry_run: bool, actor: str,
                  progress: Progress) -> dict[str, Any]:
        found = int(self.storage.read(
            lambda tx: tx.value("count_expired_memories", project_id=scope)))
        removed = 0
        if not dry_run and found:
            from ctxdb.service.memories import MemoryService

            sweeper = MemoryService(self.storage, self.settings)
            while batch := sweeper.sweep_expired(scope or None, limit=BATCH, actor=actor):
                removed += batch  # each sweep: one transaction, a memory.expire row per memory
                progress.advance(batch)
        return {"enabled": True, "age_seconds": None, "found": found,
                "done": removed, "action": "removed"}

    # --- instances -------------------------------------------------------------------------

    def _instances(self, scope: str, dry_run: bool, actor: str,
                   progress: Progress) -> dict[str, Any]:
        age = self.settings.retention_instances
        if not age:
            return _kind_report(age, 0, 0, dry_run, action="removed")
        if dry_run:
            found = len(self._ended_instances(scope, age, MAX_INTEGER))
            return _kind_report(age, found, 0, True, action="removed")
        removed = 0
        while batch := self.storage.write(lambda tx: self._remove_instances(tx, scope, age,
                                                                            actor)):
            removed += batch
            progress.advance(batch)
        return _kind_report(age, removed, removed, False, action="removed")

    def _ended_instances(self, scope: str, age: int, limit: int) -> builtins.list[Row]:
        return self.storage.read(lambda tx: tx.all(
            "ended_instances", project_id=scope, age_seconds=age, limit=limit))

    @staticmethod
    def _remove_instances(tx: Tx, scope: str, age: int, actor: str) -> int:
        rows = tx.all("ended_instances", project_id=scope, age_seconds=age, limit=BATCH)
        removed = [r for r in rows
                   if tx.execute("delete_ended_instance", instance_id=r["instance_id"],
                                 age_seconds=age)]
        if removed:
            audit(tx, actor, "retention.instances", "retention", "instances", scope or None,
                  age_seconds=age, removed=[(r["instance_id"], r["status"]) for r in removed])
        return len(removed)

    # --- session events --------------------------------------------------------------------

    def _session_events(self, scope: str, dry_run: bool, actor: str,
                        progress: Progress) -> dict[str, Any]:
        age = self.settings.retention_session_events
        if not age:
            return _kind_report(age, 0, 0, dry_run, action="removed", sessions=0)
        if dry_run:
            sessions = self.storage.read(lambda tx: tx.all(
                "closed_sessions_with_events", project_id=scope, age_seconds=age,
                limit=MAX_INTEGER))
            found = sum(int(s["events"]) for s in sessions)
            return _kind_report(age, found, 0, True, action="removed", sessions=len(sessions))
        events = sessions_done = 0
        while batch := self.storage.write(lambda tx: self._remove_events(tx, scope, age,
                                                                         actor)):
            sessions_done += batch[0]
            events += batch[1]
            progress.advance(batch[1])
        return _kind_report(age, events, events, False, action="removed",
                            sessions=sessions_done)

    @staticmethod
    def _remove_events(tx: Tx, scope: str, age: int, actor: str) -> tuple[int, int] | None:
        sessions = tx.all("closed_sessions_with_events", project_id=scope, age_seconds=age,
                          limit=BATCH)
        counts = {s["session_id"]: tx.execute("delete_session_events",
                                              session_id=s["session_id"], age_seconds=age)
                  for s in sessions}
        counts = {session: n for session, n in counts.items() if n}
        if not counts:
            return None
        audit(tx, actor, "retention.session_events", "retention", "session_events",
              scope or None, age_seconds=age, removed=counts)
        return len(counts), sum(counts.values())

    # --- context items ---------------------------------------------------------------------

    def _priority_params(self) -> dict[str, str]:
        names = list(self.settings.archivable_priorities) + [""] * 4
        return {f"p{n + 1}": names[n] for n in range(4)}

    def _context_items(self, scope: str, dry_run: bool, actor: str,
                       progress: Progress) -> dict[str, Any]:
        age = self.settings.retention_context_items
        if not age or not self.settings.archivable_priorities:
            return _kind_report(0, 0, 0, dry_run, action="archived", kept_referenced=0)
        archived = kept = 0
        after = 0
        gone: set[int] = set()  # a dry run's "archived" items, which stay in the table
        while True:
            def unit(tx: Tx, after: int = after) -> tuple[int, int, int] | None:
                return self._archive_batch(tx, scope, age, after, actor, dry_run, gone)

            batch = (self.storage.read if dry_run else self.storage.write)(unit)
            if batch is None:
                break
            moved, pinned, after = batch
            archived, kept = archived + moved, kept + pinned
            progress.advance(moved)
        return _kind_report(age, archived, archived, dry_run, action="archived",
                            kept_referenced=kept)

    def _archive_batch(self, tx: Tx, scope: str, age: int, after: int, actor: str,
                       dry_run: bool, gone: set[int]) -> tuple[int, int, int] | None:
        """Archive one batch of candidates after ``after``; (moved, kept, last id) or None."""
        candidates = tx.all("archive_candidates", project_id=scope, age_seconds=age,
                            after_item_id=after, limit=BATCH, **self._priority_params())
        if not candidates:
            return None
        last = int(candidates[-1]["item_id"])
        referrers = tx.all("archive_candidate_referrers", after_item_id=after,
                           last_item_id=last)
        movable = _movable({int(c["item_id"]) for c in candidates}, referrers, gone)
        moving = [c for c in candidates if int(c["item_id"]) in movable]
        if dry_run:
            gone.update(movable)
        elif moving:
            for row in moving:
                tx.execute("copy_item_to_archive", item_id=row["item_id"], actor=actor)
                tx.execute("delete_archived_item", item_id=row["item_id"])
            audit(tx, actor, "retention.context_items", "retention", "context_items",
                  scope or None, age_seconds=age, archived=[r["item_id"] for r in moving])
        return len(moving), len(candidates) - len(moving), last

    # --- archived items --------------------------------------------------------------------

    def archived(self, project_id: str, *, after_item_id: int = 0,
                 limit: int = 100) -> builtins.list[dict[str, Any]]:
        """A page of a project's archived items, in id order after ``after_item_id``."""
        check_identifier(project_id, "project_id")
        check_non_negative_int(after_item_id, "after_item_id", MAX_INTEGER)
        if not 1 <= check_non_negative_int(limit, "limit") <= MAX_PAGE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")

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
