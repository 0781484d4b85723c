"""How a budgeted pack is written out: as JSON or as text.

Pure, so that every front end prints a pack the same way: ``ctxdb context`` and the MCP
``get_context`` tool both use these.
"""

from __future__ import annotations

import json
from typing import Any

from ctxdb.domain.models import PRIORITY_ORDER
from ctxdb.domain.packing import Pack


def pack_payload(project_id: str, pack: Pack) -> dict[str, Any]:
    """The JSON form: the items in pack order, counts per priority, the CRITICAL items a
    reload's pack left out (empty for an ordinary pack) and the manifest."""
    return {
        "project_id": project_id,
        "counts": pack.counts(),
        "items": pack.items,
        "critical_omitted": pack.critical_omitted,
        "manifest": pack.manifest.to_dict(),
    }


def item_text(item: dict[str, Any]) -> str:
    """An item's content as text: as stored, or its JSON."""
    content = item["content"]
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def _by_priority(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {p.value: [] for p in PRIORITY_ORDER}
    for item in items:
        grouped[item["priority"]].append(item)
    return grouped


def usage_line(payload: dict[str, Any]) -> str:
    """One line on what the pack used of its budget, what it left out and where it stopped."""
    manifest = payload["manifest"]
    omitted = len(manifest["omitted"])
    line = (f"{len(payload['items'])} items, {manifest['used']} of {manifest['budget']} "
            f"tokens; {omitted} omitted")
    if manifest["stopped"]:
        line += f"; stopped in {manifest['stopped']['priority']} ({manifest['stopped']['reason']})"
    return line


def pack_as_text(payload: dict[str, Any]) -> str:
    lines = [f"ctxdb context for project {payload['project_id']}: {usage_line(payload)}"]
    for priority, items in _by_priority(payload["items"]).items():
        for item in items:
            lines.append(f"[{priority}] #{item['item_id']} ({item['content_type']}): "
                         f"{item_text(item)}")
    return "\n".join(lines)
