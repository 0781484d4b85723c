"""The budgeted pack: which context items fit a token budget, and why others did not.

Rules (documented in docs/packing.md):
- every CRITICAL item is included; if CRITICAL alone exceeds the budget that is an error,
  never a silent truncation;
- HIGH, then MEDIUM, then LOW fill what is left; within a priority, items of the current
  phase come first, then the rest, newest first;
- an item larger than the remaining budget is skipped (recorded as omitted) and packing goes
  on with smaller items, until the budget is spent or ``max_skips`` items in a row did not fit;
  from then on nothing more is read, and the manifest says where packing stopped;
- the result depends only on the stored items and the budget, so the same input gives the
  same output (prompt caches of the clients stay warm).

The caller supplies lazy streams so that the database cursor stops reading where packing
stops: packing 50k tokens out of 100k items reads about as many rows as fit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ctxdb.domain.models import Priority
from ctxdb.errors import BudgetExceededError

DEFAULT_MAX_SKIPS = 64

Row = Mapping[str, Any]


@dataclass
class PackManifest:
    budget: int
    used: int = 0
    included: list[dict[str, Any]] = field(default_factory=list)
    omitted: list[dict[str, Any]] = field(default_factory=list)
    stopped: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "used": self.used,
            "remaining": self.budget - self.used,
            "included": self.included,
            "omitted": self.omitted,
            "stopped": self.stopped,
        }


@dataclass
class Pack:
    items: list[Row]
    manifest: PackManifest

    def counts(self) -> dict[str, int]:
        counts = {priority.value: 0 for priority in Priority}
        for item in self.items:
            counts[item["priority"]] += 1
        return counts


def _entry(row: Row, reason: str | None = None) -> dict[str, Any]:
    entry = {
        "item_id": row["item_id"],
        "priority": row["priority"],
        "token_count": row["token_count"],
    }
    if reason:
        entry["reason"] = reason
    return entry


def pack_items(
    critical: Iterable[Row],
    tiers: Iterable[tuple[Priority, Iterable[Row]]],
    budget: int,
    max_skips: int = DEFAULT_MAX_SKIPS,
) -> Pack:
    """Pack ``critical`` then each tier's stream (already in preference order) into ``budget``."""
    manifest = PackManifest(budget=budget)
    items = list(critical)
    needed = sum(row["token_count"] for row in items)
    if needed > budget:
        raise BudgetExceededError(
            f"CRITICAL context needs {needed} tokens, over the budget of {budget}; "
            "raise the budget or lower the priority of some CRITICAL items",
            needed=needed,
            budget=budget,
        )
    manifest.used = needed
    manifest.included.extend(_entry(row) for row in items)
    skips = 0
    for priority, stream in tiers:
        for row in stream:
            remaining = budget - manifest.used
            if row["token_count"] <= remaining:
                items.append(row)
                manifest.used += row["token_count"]
                manifest.included.append(_entry(row))
                skips = 0
            else:
                manifest.omitted.append(_entry(row, "exceeds_remaining_budget"))
                skips += 1
            if manifest.used >= budget or skips >= max_skips:
                reason = "budget_spent" if manifest.used >= budget else "too_many_misses"
                manifest.stopped = {"priority": priority.value, "reason": reason,
                                    "note": "items after this point were not examined"}
                return Pack(items, manifest)
    return Pack(items, manifest)
