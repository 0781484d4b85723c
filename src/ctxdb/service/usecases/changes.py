"""The change feed: every change to the store, in the order the changes committed, for readers
that follow it (``GET /v1/events``, docs/server.md).

Its source is the audit log, which every mutation writes in its own transaction (``audit()``
in service/common.py): context items, memories, tasks, messages, approvals, instances with
their heartbeats and token usage, handoffs, phases, command runs, checkpoints, conversations,
tokens. The feed adds no row to a write; the migration 0016 adds one column and one index
entry to the audit row, and on PostgreSQL a NOTIFY.

A reader holds a :class:`Position` and asks for what comes after it. Storage reads only rows
that can no longer be joined by an earlier one (``queries/changes.sql``): a transaction that
drew its audit id before another but commits after it holds the reader back until it ends,
so a position is never passed by a change that commits later. The position a batch ends at
covers every row read, including other projects' rows that were filtered out: a reader of one
project does not read the fleet's changes again on every wake-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from ctxdb.domain.event_ids import seal, unseal
from ctxdb.errors import ValidationError
from ctxdb.service.common import Service
from ctxdb.storage import Row, Storage, Tx

MAX_BATCH = 1_000
# Each database's key, read once per storage (it never changes: migration 0016 makes it).
_KEYS: WeakKeyDictionary[Storage, bytes] = WeakKeyDictionary()


@dataclass(frozen=True, order=True)
class Position:
    """A place in the feed: the audit row (its transaction's number, its id) read last."""

    xact_id: int
    audit_id: int


@dataclass(frozen=True)
class Change:
    """One change, as the feed shows it: which record of which project, what was done, by
    whom and when. ``cursor`` (its event id, the position sealed: domain/event_ids.py)
    resumes the feed after it."""

    cursor: str
    project_id: str | None
    entity_type: str
    entity_id: str
    action: str
    actor: str
    occurred_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.cursor, "project_id": self.project_id,
                "entity_type": self.entity_type, "entity_id": self.entity_id,
                "action": self.action, "actor": self.actor, "occurred_at": self.occurred_at}


@dataclass(frozen=True)
class ChangeBatch:
    """The changes read and where the next read starts; ``full``: the batch reached its
    limit, so more may be waiting already."""

    changes: list[Change]
    position: Position
    full: bool


def _position(row: Row) -> Position:
    return Position(int(row["xact_id"]), int(row["audit_id"]))


def _change(key: bytes, row: Row) -> Change:
    return Change(cursor=seal(key, int(row["xact_id"]), int(row["audit_id"])),
                  project_id=row["project_id"], entity_type=row["entity_type"],
                  entity_id=row["entity_id"], action=row["action"], actor=row["actor"],
                  occurred_at=row["occurred_at"])


class ChangeFeedService(Service):
    def tip(self) -> Position:
        """The position after the last change committed: a reader starting here gets only
        what commits from now on."""
        row = self.storage.read_one("changes_tip")
        return Position(0, 0) if row is None else _position(row)

    def start(self, cursor: str | None) -> Position:
        """Where a reader resumes: after ``cursor`` (an event id it received), or at the tip."""
        if cursor is None:
            return self.tip()
        position = unseal(self._key(), cursor.strip() if isinstance(cursor, str) else cursor)
        if position is None:
            raise ValidationError(
                f"{str(cursor)[:80]!r} is not an event id of this database's change feed "
                f"(send the id of the last event received, or none to start from now)",
                field="cursor")
        return Position(*position)

    def _key(self) -> bytes:
        key = _KEYS.get(self.storage)
        if key is None:
            row = self.storage.read_one("change_feed_key")
            if row is None:
                raise ValidationError("this database has no change feed key (migration 0016)")
            key = _KEYS[self.storage] = bytes.fromhex(row["secret"])
        return key

    def since(self, after: Position, project_id: str | None = None,
              limit: int = 200) -> ChangeBatch:
        """The changes after ``after`` (of ``project_id`` only, or of every project and the
        fleet-wide ones with ``None``), at most ``limit`` rows read."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_BATCH:
            raise ValidationError(f"limit must be an integer from 1 to {MAX_BATCH}")

        def unit(tx: Tx) -> list[Row]:
            return tx.all("changes_after", xact_id=after.xact_id, audit_id=after.audit_id,
                          limit=limit)

        rows = self.storage.read(unit)
        key = self._key()
        position = after if not rows else _position(rows[-1])
        changes = [_change(key, row) for row in rows
                   if project_id is None or row["project_id"] == project_id]
        return ChangeBatch(changes, position, full=len(rows) == limit)

    def subscribe(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` (in another thread) whenever a change may have committed, and now
        and then regardless; returns the function that stops it."""
        return self.storage.change_signal().subscribe(wake)
