"""How a budgeted pack is printed: as text or Markdown (what a hook injects), or as JSON."""

from __future__ import annotations

import json
from typing import Any

from ctxdb.cli.output import print_table, say

PRIORITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
PACK_FORMATS = ("text", "json", "markdown")


def pack_payload(project_id: str, pack: Any) -> dict[str, Any]:
    """The JSON form: the items in pack order, counts per priority, the CRITICAL items a
    reload's pack left out (empty for an ordinary pack) and the manifest."""
    return {
        "project_id": project_id,
        "counts": pack.counts(),
        "items": pack.items,
        "critical_omitted": pack.critical_omitted,
        "manifest": pack.manifest.to_dict(),
    }


def _content(item: dict[str, Any]) -> str:
    content = item["content"]
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def _by_priority(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {p: [] for p in PRIORITIES}
    for item in items:
        grouped[item["priority"]].append(item)
    return grouped


def _usage_line(payload: dict[str, Any]) -> str:
    manifest = payload["manifest"]
    omitted = len(manifest["omitted"])
    line = (f"{len(payload['items'])} items, {manifest['used']} of {manifest['budget']} "
            f"tokens; {omitted} omitted")
    if manifest["stopped"]:
        line += f"; stopped in {manifest['stopped']['priority']} ({manifest['stopped']['reason']})"
    return line


def pack_as_text(payload: dict[str, Any]) -> str:
    lines = [f"ctxdb context for project {payload['project_id']}: {_usage_line(payload)}"]
    for priority, items in _by_priority(payload["items"]).items():
        for item in items:
            lines.append(f"[{priority}] #{item['sequence_number']} ({item['content_type']}): "
                         f"{_content(item)}")
    return "\n".join(lines)


def pack_as_markdown(payload: dict[str, Any]) -> str:
    lines = [f"# Context for project {payload['project_id']}", "",
             f"_{_usage_line(payload)}_"]
    for priority, items in _by_priority(payload["items"]).items():
        if not items:
            continue
        lines += ["", f"## {priority}", ""]
        lines += [f"- **#{item['sequence_number']}** ({item['content_type']}): "
                  f"{_content(item)}" for item in items]
    return "\n".join(lines)


def print_pack_table(payload: dict[str, Any]) -> None:
    """People's view of a pack: what went in, then what was left out and why."""
    rows = [{**item, "content": _content(item)} for item in payload["items"]]
    print_table(rows, ("item_id", "priority", "sequence_number", "token_count", "content"),
                title="packed", empty="the pack is empty")
    manifest = payload["manifest"]
    if manifest["omitted"]:
        print_table(manifest["omitted"], ("item_id", "priority", "token_count", "reason"),
                    title="omitted")
    say(_usage_line(payload))
