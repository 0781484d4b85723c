"""``ctxdb db optimize``: the routine maintenance a database needs as it grows, and the
doctor's check of it.

The planner's statistics go stale as agents write, and deleted rows (retention, superseded
items, expired memories) leave space behind. SQLite refreshes nothing by itself; PostgreSQL
relies on autovacuum, which some servers run with off (the test servers here do). Optimizing
is safe while agents work: every step is short and commits on its own (SQLite's VACUUM,
which holds the database for its whole run, only when asked for). ``ctxdb gc`` runs it after
each collection.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ctxdb.service.common import Service
from ctxdb.service.operations.doctor_report import PASS, WARN, Check, listed, mib
from ctxdb.storage.health import Health, Statistics

# Rows written since the last analysis, past which plans may rest on a table's old shape.
CHANGED_ROWS_WARN = 10_000
# Space of deleted rows or free pages past which reclaiming it is worth a run.
RECLAIMABLE_WARN_BYTES = 64 * 1024 * 1024


def statistics_data(stats: Statistics) -> dict[str, Any]:
    return {"unanalyzed": list(stats.unanalyzed), "changed_rows": stats.changed_rows,
            "reclaimable_bytes": stats.reclaimable_bytes, "last_analyzed": stats.last_analyzed,
            "note": stats.note}


class MaintenanceService(Service):
    @property
    def health(self) -> Health:
        return self.storage.health()

    def statistics(self) -> dict[str, Any]:
        return statistics_data(self.health.statistics())

    def optimize(self, vacuum: bool = False) -> dict[str, Any]:
        """Refresh statistics and reclaim space; the statements run, the time taken, and
        the statistics before and after."""
        health = self.health
        before = health.statistics()
        started = time.monotonic()
        steps = health.optimize(vacuum)
        seconds = time.monotonic() - started
        return {"backend": self.storage.dialect.name, "steps": steps,
                "seconds": round(seconds, 3), "vacuum": vacuum,
                "before": statistics_data(before),
                "after": statistics_data(health.statistics())}


def _findings(stats: Statistics) -> list[str]:
    found = []
    if stats.unanalyzed:
        found.append(f"{len(stats.unanalyzed)} table(s) with rows but no planner statistics: "
                     + listed(list(stats.unanalyzed)))
    if stats.changed_rows is not None and stats.changed_rows >= CHANGED_ROWS_WARN:
        found.append(f"{stats.changed_rows} rows written since the tables were last analyzed")
    if stats.reclaimable_bytes is not None and stats.reclaimable_bytes >= RECLAIMABLE_WARN_BYTES:
        found.append(f"about {mib(stats.reclaimable_bytes)} of deleted rows or free pages "
                     "to reclaim")
    return found


def _summary(stats: Statistics) -> str:
    parts = [stats.note or "planner statistics current"]
    if stats.last_analyzed:
        parts.append(f"oldest analysis {stats.last_analyzed}")
    if stats.reclaimable_bytes is not None:
        parts.append(f"{mib(stats.reclaimable_bytes)} reclaimable")
    return ", ".join(parts)


def check_statistics(maintenance: MaintenanceService, fix: bool) -> Check:
    """Stale or missing planner statistics and space to reclaim; ``fix`` optimizes."""
    stats = maintenance.health.statistics()
    data = statistics_data(stats)
    found = _findings(stats)
    if not found:
        return Check("statistics", PASS, _summary(stats), data=data)
    if not fix:
        return Check("statistics", WARN, "; ".join(found) + ": run `ctxdb db optimize` (safe "
                     "while agents work; `ctxdb gc` runs it too) or `ctxdb doctor --fix`",
                     data=data)
    result = maintenance.optimize()
    after = check_statistics(maintenance, fix=False)
    return dataclasses.replace(after, fixed=f"optimized: {len(result['steps'])} step(s) in "
                               f"{result['seconds']:g} s")
