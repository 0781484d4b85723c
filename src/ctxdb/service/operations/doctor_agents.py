"""The doctor's checks of what the agents left behind: live instances gone silent, and
projects whose CRITICAL items no longer fit the reload budget."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ctxdb.service.operations.doctor_report import PASS, WARN, Check, listed
from ctxdb.settings import Settings
from ctxdb.storage import Storage

if TYPE_CHECKING:
    from ctxdb.service.usecases.instances import InstanceService


def check_stale_instances(storage: Storage, settings: Settings, instances: InstanceService,
                          fix: bool) -> Check:
    """Live instances silent for longer than ``stale_after``; ``fix`` marks them crashed as
    crash detection does."""
    stale_after = settings.stale_after
    stale = storage.read(lambda tx: tx.all("stale_instances", stale_after=stale_after))
    ids = [row["instance_id"] for row in stale]
    data = {"stale_after": stale_after, "instances": ids}
    if not stale:
        return Check("stale_instances", PASS, "no live instance has been silent for more "
                     f"than {stale_after:g} s", data=data)
    if not fix:
        return Check("stale_instances", WARN, f"{len(ids)} live instance(s) silent for more "
                     f"than {stale_after:g} s (setting stale_after): {listed(ids)}; "
                     "`ctxdb doctor --fix` marks them crashed and frees their tasks",
                     data=data)
    crashed = instances.reap_stale()
    after = check_stale_instances(storage, settings, instances, fix=False)
    return dataclasses.replace(after, fixed=f"marked {len(crashed)} instance(s) crashed: "
                               + listed([row["instance_id"] for row in crashed]))


def check_reload_budget(storage: Storage, settings: Settings) -> Check:
    """Active projects whose live CRITICAL items exceed the reload budget.

    The budget is ``pack_budget_fraction`` of the smallest window one of the project's
    agents reloads with: the default ``context_window`` (every new agent's) or a live
    instance's smaller one. A clear-and-reload of such a project still succeeds, but
    carries only the CRITICAL items that fit and names the others; nothing to fix, since
    only a person can decide which items to demote.
    """
    fraction, default = settings.pack_budget_fraction, settings.context_window
    over = []
    for row in storage.read(lambda tx: tx.all("critical_context_per_project")):
        window = min(default, int(row["smallest_window"] or default))
        budget, tokens = int(window * fraction), int(row["tokens"])
        if tokens > budget:
            over.append({"project_id": row["project_id"], "name": row["name"],
                         "critical_items": int(row["items"]), "critical_tokens": tokens,
                         "context_window": window, "reload_budget": budget})
    data = {"pack_budget_fraction": fraction, "projects": over}
    if not over:
        return Check("reload_budget", PASS, "every active project's CRITICAL items fit "
                     f"the reload budget ({fraction * 100:g}% of the context window)",
                     data=data)
    named = [f"{p['project_id']} ({p['name']}): {p['critical_items']} CRITICAL item(s) of "
             f"{p['critical_tokens']} tokens, over the reload budget of "
             f"{p['reload_budget']} ({fraction * 100:g}% of a {p['context_window']}-token "
             "window)" for p in over]
    return Check("reload_budget", WARN, f"{len(over)} project(s): {listed(named)}. A "
                 "clear-and-reload carries the CRITICAL items that fit and names the rest: "
                 "lower the priority of some, or raise pack_budget_fraction", data=data)
