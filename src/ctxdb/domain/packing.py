"""The budgeted pack: which context items fit a token budget, and why others did not.

Rules (documented in docs/packing.md):
- every CRITICAL item is included; if CRITICAL alone exceeds the budget that is an error,
  never a silent truncation. A reload (clear-and-reload, a hook's SessionStart) must not fail,
  so it asks for ``partial_critical``: each CRITICAL item, in sequence order, is carried if it
  fits what is left; the others are named (``Pack.critical_omitted`` and the manifest, reason
  ``critical_over_budget``) and no lower priority is packed;
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
CRITICAL_OVER_BUDGET = "critical_over_budget"

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
    # CRITICAL items a partial pack left out, in sequence order (see ``omitted_summary``).
    critical_omitted: list[dict[str, Any]] = field(default_factory=list)

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


def omitted_summary(row: Row) -> dict[str, Any]:
    """How a left-out CRITICAL item is named: enough to fetch it (``ctxdb context get``)."""
    return {name: row[name] for name in
            ("item_id", "sequence_number", "content_type", "token_count")}


def _partial_critical(critical: list[Row], budget: int, manifest: PackManifest) -> Pack:
    """CRITICAL alone is over ``budget``: carry each item, in order, that fits what is left.

    First fit in sequence order (not the subset that fills the budget best): the result is
    easy to predict and stays the same while the items do. Lower priorities are not examined,
    so that no HIGH item takes room while a CRITICAL one is left out.
    """
    items, left_out = [], []
    for row in critical:
        if row["token_count"] <= budget - manifest.used:
            items.append(row)
            manifest.used += row["token_count"]
            manifest.included.append(_entry(row))
        else:
            left_out.append(row)
            manifest.omitted.append(_entry(row, CRITICAL_OVER_BUDGET))
    manifest.stopped = {
        "priority": "CRITICAL", "reason": CRITICAL_OVER_BUDGET,
        "needed": sum(row["token_count"] for row in critical),
        "note": "CRITICAL items alone exceed the budget: those that did not fit are named in "
                "omitted, and lower priorities were not examined",
    }
    return Pack(items, manifest, [omitted_summary(row) for row in left_out])


def pack_items(
    critical: Iterable[Row],
    tiers: Iterable[tuple[Priority, Iterable[Row]]],
    budget: int,
    max_skips: int = DEFAULT_MAX_SKIPS,
    *,
    partial_critical: bool = False,
    itemized: bool = True,
) -> Pack:
    """Pack ``critical`` then each tier's stream (already in preference order) into ``budget``.

    CRITICAL alone over the budget raises :class:`BudgetExceededError`, or with
    ``partial_critical`` gives the CRITICAL items that fit and names the others. Without
    ``itemized`` the manifest's ``included`` and ``omitted`` of HIGH, MEDIUM and LOW items
    stay empty (its totals and ``stopped`` are kept): for a caller that shows the items only.
    """
    manifest = PackManifest(budget=budget)
    items = list(critical)
    needed = sum(row["token_count"] for row in items)
    if needed > budget and partial_critical:
        return _partial_critical(items, budget, manifest)
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
                if itemized:
                    manifest.included.append(_entry(row))
                skips = 0
            else:
                if itemized:
                    manifest.omitted.append(_entry(row, "exceeds_remaining_budget"))
                skips += 1
            if manifest.used >= budget or skips >= max_skips:
                reason = "budget_spent" if manifest.used >= budget else "too_many_misses"
                manifest.stopped = {"priority": priority.value, "reason": reason,
                                    "note": "items after this point were not examined"}
                return Pack(items, manifest)
    return Pack(items, manifest)
