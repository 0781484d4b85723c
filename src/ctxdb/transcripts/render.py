"""Rendering a :class:`Handoff` as compact Markdown that always fits a character cap.

Hooks inject the text into the agent's context and must stay under a hard limit, so the
renderer tries progressively tighter per-item limits (``SHRINK_STEPS``) and, if even the
tightest does not fit, cuts the text at the cap. Sections come in order of usefulness to
whoever resumes: the request first, the last assistant message last; empty sections are left
out.
"""

from __future__ import annotations

from ctxdb.errors import ValidationError
from ctxdb.transcripts.handoff import Handoff
from ctxdb.transcripts.text import clip, one_line

MIN_RENDER_CHARS = 100
# (characters per text, entries per list), from generous to tight.
SHRINK_STEPS = ((2_000, 50), (1_000, 25), (500, 12), (250, 6), (120, 3), (60, 1))


def render_handoff_text(handoff: Handoff, max_chars: int) -> str:
    if isinstance(max_chars, bool) or not isinstance(max_chars, int):
        raise ValidationError(f"max_chars must be an integer, got {max_chars!r}")
    if max_chars < MIN_RENDER_CHARS:
        raise ValidationError(
            f"max_chars must be at least {MIN_RENDER_CHARS}, got {max_chars}", max_chars=max_chars
        )
    text = ""
    for text_chars, list_items in SHRINK_STEPS:
        text = _render(handoff, text_chars, list_items)
        if len(text) <= max_chars:
            return text
    return clip(text, max_chars)


def _render(handoff: Handoff, text_chars: int, list_items: int) -> str:
    parts = [_header(handoff)]
    if handoff.latest_request:
        parts.append("## Latest request\n" + clip(handoff.latest_request.strip(), text_chars))
    parts.append(_list("Earlier requests", handoff.earlier_requests, text_chars, list_items))
    todos = [f"[{todo.status}] {todo.content}" for todo in handoff.open_todos]
    parts.append(_list("Open todos", todos, text_chars, list_items))
    parts.append(_list("Files edited", handoff.files_edited, text_chars, list_items))
    parts.append(_list("Decisions", handoff.decisions, text_chars, list_items))
    if handoff.last_assistant_text:
        parts.append(
            "## Last assistant message\n" + clip(handoff.last_assistant_text.strip(), text_chars)
        )
    return "\n\n".join(part for part in parts if part)


def _header(handoff: Handoff) -> str:
    facts = []
    if handoff.session_id:
        facts.append(f"session {handoff.session_id}")
    boundary = handoff.compaction
    if boundary is None:
        facts.append("no compaction yet")
    else:
        known = (boundary.trigger, _tokens(boundary.pre_tokens))
        detail = ", ".join(item for item in known if item)
        suffix = f" ({detail})" if detail else ""
        facts.append(f"since compaction at {boundary.timestamp or '?'}{suffix}")
    if handoff.context_tokens is not None:
        facts.append(f"context now {_tokens(handoff.context_tokens)}")
    return "# Handoff\n" + "; ".join(facts)


def _list(title: str, items: list[str], text_chars: int, list_items: int) -> str:
    """The most recent ``list_items`` entries (lists are ordered oldest first)."""
    if not items:
        return ""
    shown = items[-list_items:]
    lines = [f"## {title}"]
    if len(items) > len(shown):
        lines.append(f"- … {len(items) - len(shown)} earlier not shown")
    lines.extend("- " + clip(one_line(item), text_chars) for item in shown)
    return "\n".join(lines)


def _tokens(count: int | None) -> str:
    return f"{count:,} tokens" if count is not None else ""
