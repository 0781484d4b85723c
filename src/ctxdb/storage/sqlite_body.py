"""The body of a context item's search document made in Python, equal to what SQLite's
``search_context_source`` (migration 0008) makes of the same JSON text with ``json_tree``, so
that a store need not have SQLite walk the item's JSON in its draw (``draw_item``): the walk
took SQLite about 20 µs a store, this one a few. A memory put's body likewise
(``search_memory_source``: the namespace, the key and the walk of the value).

``json_tree`` visits the value depth first from the root, each object's members and each
array's elements in the order of the text. A member adds a line of its key, followed by a line
of its value when that is a scalar other than null; an array element or the root adds a line
of its value when that is such a scalar. The lines are joined by newlines and cut at 200,000
characters. Only values whose text is certain are made here: a value with a fraction or an
exponent (SQLite writes a real number its own way) or an integer past 64 bits gets ``None``,
and the store (or put) then lets SQLite make its body. A test compares the two over
random values (tests/test_sqlite_body.py).
"""

from __future__ import annotations

import json
from typing import Any

BODY_LIMIT = 200_000  # characters, as search_context_source cuts its text
_LARGEST = 2**63 - 1


class _NotCertain(Exception):
    """A number whose text SQLite would write its own way."""


class _Members(list[tuple[str, Any]]):
    """An object's members in the order of the text (a repeated key kept, as json_tree does)."""


def sqlite_document_text(content_json: str) -> str | None:
    """What ``search_context_source`` makes of ``content_json``, or ``None`` when that is not
    certain here (see the module's docstring)."""
    try:
        value = json.loads(content_json, object_pairs_hook=_Members, parse_float=_not_certain,
                           parse_int=_integer, parse_constant=_not_certain)
    except _NotCertain:
        return None
    lines: list[str] = []
    text = _scalar_text(value)
    if text is not None:
        lines.append(text)
    _walk(value, lines)
    return "\n".join(lines)[:BODY_LIMIT]


def sqlite_memory_text(namespace: str, key: str, value_json: str) -> str | None:
    """What ``search_memory_source`` makes of a live memory's namespace, key and value, or
    ``None`` when that is not certain here."""
    walked = sqlite_document_text(value_json)
    if walked is None:
        return None
    return f"{namespace.replace(':', ' ')}\n{key}\n{walked}"[:BODY_LIMIT]


def _walk(node: Any, lines: list[str]) -> None:
    if isinstance(node, _Members):
        for key, value in node:
            text = _scalar_text(value)
            lines.append(key if text is None else f"{key}\n{text}")
            _walk(value, lines)
    elif isinstance(node, list):
        for element in node:
            text = _scalar_text(element)
            if text is not None:
                lines.append(text)
            _walk(element, lines)


def _scalar_text(value: Any) -> str | None:
    """A scalar's line (``None`` for null, objects and arrays)."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    return None


def _integer(text: str) -> int:
    number = int(text)
    if -_LARGEST <= number <= _LARGEST:
        return number
    raise _NotCertain(text)


def _not_certain(text: str) -> Any:
    raise _NotCertain(text)
