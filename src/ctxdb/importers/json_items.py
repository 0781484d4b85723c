"""JSON files of context items.

Accepted shapes (see docs/imports.md):

- a list of items;
- an object with an ``items`` list (what ``ctxdb context --format json`` prints);
- an object keyed by priority, each a list of items (the seed's ``get_full_context``).

An item is an object with ``content`` (any JSON, required) and optionally ``priority``
(CRITICAL, HIGH, MEDIUM, LOW; default HIGH, or the key it is listed under),
``content_type`` or ``type`` (default ``code``, as the seed's loader),
``metadata`` (an object), ``token_count``
(an exact count; estimated when absent) and ``key`` or ``id`` (names the item across
imports: a changed item with the same key replaces the one imported before; without one,
its position in the file names it).
"""

from __future__ import annotations

import json
from typing import Any

from ctxdb.domain.models import DEFAULT_CONTENT_TYPE, PRIORITY_ORDER
from ctxdb.domain.validation import load_json
from ctxdb.errors import ValidationError
from ctxdb.importers.records import ItemRecord

PRIORITIES = tuple(p.value for p in PRIORITY_ORDER)
DEFAULT_PRIORITY = "HIGH"


class MalformedItems(ValueError):
    """The file is JSON but not in an accepted shape; the message says where."""


def looks_like_items(value: Any) -> bool:
    """Whether parsed JSON is in one of the accepted shapes (used to recognise a file)."""
    if isinstance(value, list):
        return all(isinstance(item, dict) and "content" in item for item in value)
    if isinstance(value, dict):
        if isinstance(value.get("items"), list):
            return True
        return bool(value) and set(value) <= set(PRIORITIES) and all(
            isinstance(v, list) for v in value.values())
    return False


def _entries(value: Any) -> list[tuple[str | None, Any]]:
    """(priority of the list it is in, item) for every item of the file."""
    if isinstance(value, list):
        return [(None, item) for item in value]
    if isinstance(value, dict) and isinstance(value.get("items"), list):
        return [(None, item) for item in value["items"]]
    if isinstance(value, dict) and value and set(value) <= set(PRIORITIES):
        found: list[tuple[str | None, Any]] = []
        for priority in PRIORITIES:
            listed = value.get(priority, [])
            if not isinstance(listed, list):
                raise MalformedItems(f"{priority!r} must be a list of items")
            found += [(priority, item) for item in listed]
        return found
    raise MalformedItems("expected a list of context items, an object with an 'items' list, "
                         "or an object keyed by priority (CRITICAL, HIGH, MEDIUM, LOW)")


def _item(source: str, index: int, listed_under: str | None, item: Any) -> ItemRecord:
    where = f"item {index}"
    if not isinstance(item, dict):
        raise MalformedItems(f"{where} is not an object")
    if "content" not in item:
        raise MalformedItems(f"{where} has no 'content'")
    priority = item.get("priority", listed_under or DEFAULT_PRIORITY)
    if not isinstance(priority, str) or priority.upper() not in PRIORITIES:
        raise MalformedItems(f"{where}: priority must be one of {', '.join(PRIORITIES)}, "
                             f"got {priority!r}")
    content_type = item.get("content_type", item.get("type", DEFAULT_CONTENT_TYPE))
    if not isinstance(content_type, str) or not content_type.strip():
        raise MalformedItems(f"{where}: content_type must be a non-empty string")
    metadata = item.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise MalformedItems(f"{where}: metadata must be an object")
    token_count = item.get("token_count")
    if token_count is not None and (isinstance(token_count, bool)
                                    or not isinstance(token_count, int) or token_count < 0):
        raise MalformedItems(f"{where}: token_count must be a non-negative integer")
    name = item.get("key", item.get("id", item.get("idempotency_key")))
    slot = f"{source}#{'key:' + str(name) if name is not None else index}"
    return ItemRecord(
        kind="context_items", source=source, slot=slot, content=item["content"],
        priority=priority.upper(), content_type=content_type,
        metadata={**metadata, "import": {"source": source, **(
            {"key": str(name)} if name is not None else {"item": index})}},
        token_count=token_count)


def load(text: str) -> Any:
    """A file's JSON within the limits of every JSON ctxdb takes (nesting depth, integer
    digits: domain/validation.py); over one is :class:`MalformedItems` naming the limit (a
    skip in a folder, an error for a file named), text that is not JSON a JSONDecodeError."""
    try:
        return load_json(text, "the JSON")
    except ValidationError as exc:
        raise MalformedItems(exc.message) from None


def parse_items(source: str, text: str) -> list[ItemRecord]:
    """The items of a JSON file; :class:`MalformedItems` names what is wrong and where."""
    try:
        value = load(text)
    except json.JSONDecodeError as exc:
        raise MalformedItems(f"not valid JSON: {exc}") from None
    return [_item(source, index, listed_under, item)
            for index, (listed_under, item) in enumerate(_entries(value))]
