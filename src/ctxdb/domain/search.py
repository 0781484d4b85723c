"""Text matching for context search while there is no full-text index.

An item matches when the query is a case-insensitive substring of its text: the string itself
for text content, and for JSON content its keys and scalar values one per line. Matching the
values rather than the serialized JSON keeps results the same on both backends (PostgreSQL's
jsonb reorders keys and spaces them differently) and lets a query match text that JSON would
escape (quotes, newlines).
"""

from __future__ import annotations

from typing import Any


def searchable_text(content: Any) -> str:
    """The text a search query is matched against, one key or value per line."""
    parts: list[str] = []
    _collect(content, parts)
    return "\n".join(parts)


def _collect(value: Any, parts: list[str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            parts.append(str(key))
            _collect(inner, parts)
    elif isinstance(value, list):
        for inner in value:
            _collect(inner, parts)
    elif value is not None:
        parts.append(value if isinstance(value, str) else str(value).lower())


def normalized_query(query: str) -> str:
    return query.strip().casefold()


def matches(content: Any, needle: str) -> bool:
    """True when ``needle`` (from :func:`normalized_query`) occurs in the content's text."""
    return needle in searchable_text(content).casefold()
