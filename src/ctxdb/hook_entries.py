"""Hook entries in an agent client's settings, as all three clients nest them::

    {"hooks": {"<Event>": [{"matcher"?: "…", "hooks": [{"type": "command", "command": "…"}]}]}}

Removing the entries a predicate picks, with the groups and event lists their removal leaves
empty (never one that was empty already): what ``ctxdb install --uninstall`` does to a
client's file (clients/merge.py) and what ``ctxdb import files`` leaves out of a settings file
it imports (importers/client_files.py). A module of its own below both, which may import
nothing of each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

IsOurs = Callable[[Mapping[str, Any]], bool]


def uninstall_hooks(settings: dict[str, Any], is_ours: IsOurs) -> list[str]:
    """Remove ctxdb's hook entries (and what their removal leaves empty)."""
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return []
    notes = [f"removed hook {event}" for event in list(hooks)
             if remove_entries(hooks, event, is_ours)]
    if notes and not hooks:
        del settings["hooks"]
    return notes


def remove_entries(hooks: dict[str, Any], event: str, doomed: IsOurs) -> int:
    """Remove the entries ``doomed`` picks under ``event``; drop groups and lists left empty."""
    groups = hooks.get(event)
    if not isinstance(groups, list):
        return 0
    removed = 0
    kept_groups = []
    for group in groups:
        entries = group.get("hooks") if isinstance(group, dict) else None
        if not isinstance(entries, list):
            kept_groups.append(group)
            continue
        kept = [e for e in entries if not (isinstance(e, dict) and doomed(e))]
        removed += len(entries) - len(kept)
        if kept or len(kept) == len(entries):
            group["hooks"] = kept
            kept_groups.append(group)
    if removed:
        if kept_groups:
            hooks[event] = kept_groups
        else:
            del hooks[event]
    return removed
