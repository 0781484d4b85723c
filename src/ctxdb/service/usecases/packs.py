"""A project's context packed within a token budget, read inside the caller's transaction:
what a context load, a clear-and-reload and a hook's session start inject."""

from __future__ import annotations

from typing import Any

from ctxdb.domain.models import PRIORITY_ORDER, Priority
from ctxdb.domain.packing import DEFAULT_MAX_SKIPS, Pack, pack_items
from ctxdb.service.common import decode, decode_all
from ctxdb.storage import Tx


def current_phase_id(tx: Tx, project_id: str) -> int | None:
    row = tx.one("current_phase", project_id=project_id)
    return None if row is None else int(row["phase_id"])


def pack_in_tx(
    tx: Tx, project_id: str, budget: int, phase_id: int | None,
    max_skips: int = DEFAULT_MAX_SKIPS, *, partial_critical: bool = False,
) -> Pack:
    """The budgeted pack, read inside the caller's transaction (see ``domain.packing``;
    ``partial_critical`` for a reload, which must not fail)."""
    focus = current_phase_id(tx, project_id) if phase_id is None else phase_id
    critical = decode_all(tx.all("items_of_priority", project_id=project_id,
                                 priority="CRITICAL", phase_id=None))

    def tier(priority: Priority) -> Any:
        if focus is not None:
            for row in tx.stream("pack_tier_in_phase", project_id=project_id,
                                 phase_id=focus, priority=priority.value):
                yield decode(row)
        for row in tx.stream("pack_tier_outside_phase", project_id=project_id,
                             phase_id=-1 if focus is None else focus,
                             priority=priority.value):
            yield decode(row)

    tiers = ((priority, tier(priority)) for priority in PRIORITY_ORDER[1:])
    return pack_items(critical, tiers, budget, max_skips, partial_critical=partial_critical)


def startup_pack(tx: Tx, project_id: str, budget: int, phase_id: int | None) -> Pack:
    """The pack a session start injects. Like ``tokens.clear_and_reload``'s it never fails:
    CRITICAL items over the budget are left out and named (the injected text says how to
    fetch them), rather than fail the agent's session start."""
    return pack_in_tx(tx, project_id, budget, phase_id, partial_critical=True)
