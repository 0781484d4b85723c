"""Small text helpers shared by the handoff extraction and rendering."""

from __future__ import annotations

import re

ELLIPSIS = "…"
WHITESPACE = re.compile(r"\s+")


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, marked with an ellipsis when cut."""
    if len(text) <= max_chars:
        return text
    if max_chars <= len(ELLIPSIS):
        return text[:max_chars]
    return text[: max_chars - len(ELLIPSIS)].rstrip() + ELLIPSIS


def one_line(text: str) -> str:
    """All runs of whitespace (newlines included) collapsed to one space."""
    return WHITESPACE.sub(" ", text).strip()
