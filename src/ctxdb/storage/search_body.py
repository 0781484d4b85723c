"""The body of a search document made in Python, equal to what PostgreSQL's
``ctxdb_search_text`` (migration 0008) makes of the same JSON text, so that a store can write
its document once, with its index terms, in the statement that writes the item (migration
0023; docs/architecture.md, "The search document written once").

``ctxdb_search_text`` walks the ``jsonb`` value depth first from the root (its JSON path
``$.**``): first the members of every object in that order, each as its key then its scalar
value (a line each; an object, array or null value adds no line), then the scalars of every
array in that order, then the value itself if it is a scalar; the lines joined by newlines and
cut at 200,000 characters. ``jsonb`` holds an object's keys shortest first (in UTF-8 bytes),
then in byte order, a repeated key once (the last one), and a number as ``numeric`` shows it:
in fixed-point notation with the digits the text gave (``1e2`` is ``100``, ``1.50`` stays
``1.50``, ``-0.0`` is ``0.0``). A test compares the two over random values.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

BODY_LIMIT = 200_000  # characters, as ctxdb_search_text cuts its text


def postgres_document_text(content_json: str) -> str:
    """What ``ctxdb_search_text(CAST(content_json AS JSONB))`` answers."""
    # Numbers parsed as their literal digits, as numeric_in reads them.
    value = json.loads(content_json, parse_float=Decimal, parse_int=Decimal)
    members: list[str] = []
    scalars: list[str] = []
    _walk(value, members, scalars)
    if not isinstance(value, (dict, list)):
        root = _scalar_text(value)
        if root is not None:
            scalars.append(root)
    return "\n".join(members + scalars)[:BODY_LIMIT]


def _walk(node: Any, members: list[str], scalars: list[str]) -> None:
    """Each object's members and each array's scalars, the nodes visited depth first."""
    if isinstance(node, dict):
        keys = sorted(node, key=_jsonb_key_order)
        for key in keys:
            text = _scalar_text(node[key])
            members.append(key if text is None else f"{key}\n{text}")
        for key in keys:
            _walk(node[key], members, scalars)
    elif isinstance(node, list):
        for element in node:
            text = _scalar_text(element)
            if text is not None:
                scalars.append(text)
        for element in node:
            _walk(element, members, scalars)


def _jsonb_key_order(key: str) -> tuple[int, bytes]:
    encoded = key.encode("utf-8", "surrogatepass")
    return len(encoded), encoded


def _scalar_text(value: Any) -> str | None:
    """A scalar's text as ``#>> '{}'`` gives it; ``None`` for null, objects and arrays."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text[1:] if value.is_zero() and text.startswith("-") else text
    return None
