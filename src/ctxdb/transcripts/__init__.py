"""Parsing Claude Code transcripts (``~/.claude/projects/<project>/<session>.jsonl``).

Pure domain code: the standard library only, no database. It reads the file it is given and
nothing else, from a byte offset so ingestion can be incremental. See docs/transcripts.md for
what is parsed and the rules behind user prompts, handoffs and decisions.

The names below are loaded from their modules on first access, so that importing one module
of the package (the hook on every prompt imports only ``tail`` and the parser) does not import
the handoff and decision extraction too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctxdb.transcripts.errors import (
        InvalidTranscriptOffsetError,
        TranscriptNotFoundError,
        TranscriptUnreadableError,
    )
    from ctxdb.transcripts.handoff import (
        MAX_LIST_ITEMS,
        MAX_TEXT_CHARS,
        Handoff,
        handoff_from_chunk,
        handoff_since_last_compaction,
    )
    from ctxdb.transcripts.models import (
        AssistantText,
        Compaction,
        CompactSummary,
        SessionSummary,
        Todo,
        ToolResult,
        ToolUse,
        TranscriptChunk,
        UsageEntry,
        UserAnswer,
        UserPrompt,
    )
    from ctxdb.transcripts.parser import parse_transcript
    from ctxdb.transcripts.reader import subagent_files
    from ctxdb.transcripts.render import render_handoff_text

# Public name -> the module of this package that defines it.
_SOURCES = {
    "InvalidTranscriptOffsetError": "errors",
    "TranscriptNotFoundError": "errors",
    "TranscriptUnreadableError": "errors",
    "MAX_LIST_ITEMS": "handoff",
    "MAX_TEXT_CHARS": "handoff",
    "Handoff": "handoff",
    "handoff_from_chunk": "handoff",
    "handoff_since_last_compaction": "handoff",
    "AssistantText": "models",
    "Compaction": "models",
    "CompactSummary": "models",
    "SessionSummary": "models",
    "Todo": "models",
    "ToolResult": "models",
    "ToolUse": "models",
    "TranscriptChunk": "models",
    "UsageEntry": "models",
    "UserAnswer": "models",
    "UserPrompt": "models",
    "parse_transcript": "parser",
    "subagent_files": "reader",
    "render_handoff_text": "render",
}

__all__ = [
    "MAX_LIST_ITEMS",
    "MAX_TEXT_CHARS",
    "AssistantText",
    "CompactSummary",
    "Compaction",
    "Handoff",
    "InvalidTranscriptOffsetError",
    "SessionSummary",
    "Todo",
    "ToolResult",
    "ToolUse",
    "TranscriptChunk",
    "TranscriptNotFoundError",
    "TranscriptUnreadableError",
    "UsageEntry",
    "UserAnswer",
    "UserPrompt",
    "handoff_from_chunk",
    "handoff_since_last_compaction",
    "parse_transcript",
    "render_handoff_text",
    "subagent_files",
]


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{source}"), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_SOURCES])
