"""The text a hook injects into an agent's context: a handoff first, then the packed items.

Pure and deterministic (same handoff and items, same text), so that the clients' prompt
caches stay warm and ``ctxdb context`` prints exactly what a hook injects. Every injected
string must stay under the clients' cap of 10,000 characters; the text is built to at most
``MAX_INJECTION_CHARS``:

- the handoff gets at most ``HANDOFF_SHARE`` of the cap when items follow it;
- every CRITICAL item is always listed, each cut short when all of them would not fit;
- CRITICAL items the pack left out (over the reload budget: ``Pack.critical_omitted``) are
  named right after them, by item id, with the command that fetches one;
  this line is never dropped (at most ``MAX_NAMED_OMITTED`` are named, the rest counted);
- HIGH, MEDIUM and LOW items follow in pack order while they fit; the rest are counted in
  a last line that says how to see them.

Only the ids of the items actually written are reported, and recorded as injected.

Every item is numbered by its item id (``#41``), the one number ``ctxdb context get`` takes,
never by its sequence in the project: a model that reads ``#1`` and fetches item 1 must get
that item, not another project's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

CLIENT_LIMIT_CHARS = 10_000
MAX_INJECTION_CHARS = 9_500
HANDOFF_SHARE = 0.45
MIN_ITEM_CHARS = 60
ELLIPSIS = "…"
MAX_NAMED_OMITTED = 20


class RenderedContext(NamedTuple):
    text: str
    item_ids: list[int]
    omitted: int = 0


def injection_title(project_id: str, source: str) -> str:
    """The heading of an injected pack; ``source`` is the SessionStart source."""
    return f"ctxdb context: project {project_id} ({source})"


def clip(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[: max(0, max_chars - len(ELLIPSIS))].rstrip() + ELLIPSIS


def item_text(item: Mapping[str, Any]) -> str:
    content = item["content"]
    text = content if isinstance(content, str) else json.dumps(
        content, ensure_ascii=False, sort_keys=True)
    return " ".join(text.split())


def _item_line(item: Mapping[str, Any], max_chars: int | None = None) -> str:
    head = f"- [{item['priority']}] #{item['item_id']} ({item['content_type']}): "
    body = item_text(item)
    if max_chars is not None:
        body = clip(body, max(MIN_ITEM_CHARS, max_chars - len(head)))
    return head + body


def critical_omitted_line(omitted: Sequence[Mapping[str, Any]]) -> str:
    """The line that names the CRITICAL items a reload left out, and how to fetch one."""
    named = "; ".join(f"#{entry['item_id']} ({entry['content_type']}, "
                      f"{entry['token_count']} tokens)"
                      for entry in omitted[:MAX_NAMED_OMITTED])
    more = len(omitted) - MAX_NAMED_OMITTED
    if more > 0:
        named += f"; … and {more} more (`ctxdb context --format json` names them all)"
    return (f"- [CRITICAL] {len(omitted)} item(s) over the reload budget, not loaded: {named}."
            " Fetch one with `ctxdb context get ITEM_ID`.")


def render_context(
    items: Sequence[Mapping[str, Any]],
    *,
    title: str,
    handoff_text: str | None = None,
    max_chars: int = MAX_INJECTION_CHARS,
    more_hint: str = "run `ctxdb context` to see everything",
    critical_omitted: Sequence[Mapping[str, Any]] = (),
) -> RenderedContext:
    """Markdown of ``handoff_text`` (if any), then ``items`` in pack order, within ``max_chars``;
    ``critical_omitted`` (the pack's) are named after the CRITICAL items."""
    parts: list[str] = []
    if handoff_text:
        share = int(max_chars * HANDOFF_SHARE) if items or critical_omitted \
            else max_chars - len(title) - 4
        parts.append(clip(handoff_text.strip(), share))
    if not items and not critical_omitted:
        text = "\n\n".join(parts)
        return RenderedContext(clip(text, max_chars) if text else "", [])
    header = f"# {title}"
    used = sum(len(part) + 2 for part in parts) + len(header) + 1
    critical = [item for item in items if item["priority"] == "CRITICAL"]
    others = [item for item in items if item["priority"] != "CRITICAL"]
    left_out = [critical_omitted_line(critical_omitted)] if critical_omitted else []
    # Reserve room for the "omitted" lines, so that they always fit.
    room = max_chars - used - 80 - sum(len(line) + 1 for line in left_out)
    lines = _critical_lines(critical, room)
    ids = [int(item["item_id"]) for item in critical[: len(lines)]]
    room -= sum(len(line) + 1 for line in lines)
    omitted = len(critical) - len(lines)
    lines += left_out
    shown = 0
    # Once one item does not fit (or a CRITICAL one did not), the later ones are left out:
    # pack order. They are only counted: their lines are not even built.
    for item in others if omitted == 0 else ():
        line = _item_line(item)
        if len(line) + 1 > room:
            break
        lines.append(line)
        ids.append(int(item["item_id"]))
        room -= len(line) + 1
        shown += 1
    omitted += len(others) - shown
    if omitted:
        lines.append(f"- … {omitted} more item(s) not shown: {more_hint}")
    parts.append("\n".join([header, *lines]))
    return RenderedContext(clip("\n\n".join(parts), max_chars), ids, omitted)


def _critical_lines(critical: Sequence[Mapping[str, Any]], room: int) -> list[str]:
    """Every CRITICAL item, each cut to an equal share of ``room`` when all do not fit.

    Only when even the shortest lines cannot all fit (hundreds of CRITICAL items) are the
    newest ones left out; the caller counts them as omitted.
    """
    full = [_item_line(item) for item in critical]
    if sum(len(line) + 1 for line in full) <= room or not critical:
        return full
    share = max(MIN_ITEM_CHARS, room // len(critical) - 1)
    lines = []
    for item in critical:
        line = _item_line(item, share)
        room -= len(line) + 1
        if room < 0:
            break
        lines.append(line)
    return lines
