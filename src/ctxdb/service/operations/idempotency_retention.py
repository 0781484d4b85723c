"""Retention of idempotency keys (``ctxdb gc``, docs/retention.md).

A create sent with an ``Idempotency-Key`` leaves a row in ``idempotency_keys`` (the request's
hash and its first answer) so that a retry gets that answer instead of a second record. A
retry comes within seconds or minutes of the first try; a key kept for ever only makes the
table grow. So gc removes the keys claimed more than ``retention_idempotency_keys`` seconds
ago (7 days by default; 0 keeps them for ever), in batches, each one transaction with its
audit row. A retry that comes after its key was removed is a new create. The keys kept in
the records' own rows (context items, approval gates, command runs, checkpoints, session
events) go with their records, not here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ctxdb.service.common import audit
from ctxdb.storage import Storage, Tx

if TYPE_CHECKING:
    from ctxdb.service.operations.retention import _Run


def collect_idempotency_keys(storage: Storage, age: int, run: _Run) -> dict[str, Any]:
    """Remove (or count, in a dry run) the keys older than ``age`` seconds."""
    from ctxdb.service.operations.retention import _kind_report

    if not age:
        return _kind_report(age, 0, 0, run.dry_run, action="removed")
    found = int(storage.read(lambda tx: tx.value(
        "count_old_idempotency_keys", project_id=run.scope, age_seconds=age)))
    removed = batches = 0
    while not run.dry_run and removed < found and (
            batch := storage.write(lambda tx: _remove_keys(tx, run, age))):
        removed, batches = removed + batch, batches + 1
        run.progress.advance(batch)
    return _kind_report(age, found, removed, run.dry_run, batches, action="removed")


def _remove_keys(tx: Tx, run: _Run, age: int) -> int:
    removed = tx.execute("delete_old_idempotency_keys", project_id=run.scope,
                         age_seconds=age, limit=run.batch)
    if removed:
        audit(tx, run.actor, "retention.idempotency_keys", "retention", "idempotency_keys",
              run.scope or None, age_seconds=age, removed=removed)
    return int(removed)
