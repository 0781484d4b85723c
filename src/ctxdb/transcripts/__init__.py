"""Parsing Claude Code transcripts (``~/.claude/projects/<project>/<session>.jsonl``).

Pure domain code: the standard library only, no database. It reads the file it is given and
nothing else, from a byte offset so ingestion can be incremental. See docs/transcripts.md for
what is parsed and the rules behind user prompts, handoffs and decisions.
"""

from __future__ import annotations

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
