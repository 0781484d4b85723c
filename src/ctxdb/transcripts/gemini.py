"""Parsing Gemini CLI transcripts (``~/.gemini/tmp/<project>/chats/session-*.jsonl``).

Checked against Gemini CLI 0.61. A transcript is a log of JSON lines of three shapes:

- a header naming the session (``sessionId``, ``projectHash``, ``startTime``); a resumed
  session appends another header to the same file;
- ``{"$set": {...}}`` updates of the session's metadata; ``$set.messages`` replaces the whole
  message list (the generated ``<session_context>`` message, the rebuilt history of a resumed
  session), so its messages are read like the others;
- messages: ``{"id", "timestamp", "type": "user" | "gemini" | "info" | "error" | ...,
  "content", ...}``. A ``gemini`` message carries its ``tokens`` (``input``, ``output``,
  ``cached``, ``thoughts``, ``tool``, ``total``), ``model`` and ``toolCalls`` (each with
  ``id``, ``name``, ``args`` and ``status``); one message may be written again with more in
  it (its tool calls), and the latest version wins.

A compression of the chat (Gemini summarizes its history when the context passes its
threshold, or on ``/compress``) shows as a ``$set.messages`` list that starts over from the
summary: a user message holding the model's summary, answered by a gemini message with Gemini's
fixed acknowledgement (``COMPRESSION_ACK``). That pair is the compaction boundary (its id is
the summary message's, which a resumed session keeps); the summary is the compaction's summary,
not a prompt or an answer. Rewrites of the list repeat the pair: each boundary counts once.

User messages hold parts: typed text, or the ``functionResponse`` parts of tool results. Gemini
puts a SessionStart hook's context before the first prompt inside ``<hook_context>…
</hook_context>``: that block is not typed text and is cut off.

The same :class:`TranscriptChunk` as for Claude Code comes out, so usage, handoffs and
ingestion do not care which client wrote the transcript. Gemini's ``input`` count includes
its ``cached`` tokens: they are split into ``input_tokens`` and ``cache_read_input_tokens``,
whose sum (``context_tokens``) is what the model reported.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

from ctxdb.domain.validation import is_identifier
from ctxdb.transcripts.models import (
    AssistantText,
    Compaction,
    CompactSummary,
    ToolResult,
    ToolUse,
    TranscriptChunk,
    UsageEntry,
    UserPrompt,
)
from ctxdb.transcripts.parser import _ChunkBuilder
from ctxdb.transcripts.reader import Source, read_complete_lines
from ctxdb.transcripts.records import count as _count
from ctxdb.transcripts.records import dict_or_empty as _dict
from ctxdb.transcripts.records import str_or_none as _str

# Text Gemini CLI generates into user messages: the environment summary it starts a chat
# with, and the SessionStart hook's context (cut off the prompt it precedes).
GENERATED_PREFIXES = ("<session_context>",)
HOOK_CONTEXT = re.compile(r"^\s*<hook_context>.*?</hook_context>\s*", re.DOTALL)
# Tool call statuses that mean the call did what it was asked.
SUCCESS = "success"
# The model turn Gemini CLI puts after the summary of a compressed history (0.61; the same
# text since compression began). Not the model's: its presence is what marks a compression.
COMPRESSION_ACK = "Got it. Thanks for the additional context!"


def parse_gemini_transcript(path: Source, start_offset: int = 0) -> TranscriptChunk:
    """Parse the complete lines of ``path`` from ``start_offset`` (a previous ``end_offset``)."""
    lines = read_complete_lines(path, start_offset)
    builder = _GeminiChunkBuilder()
    builder.malformed_lines += lines.oversized_lines
    for offset, line in lines:
        builder.add_line(offset, line)
    return builder.build(str(path), lines.start_offset, lines.end_offset)


class _GeminiChunkBuilder(_ChunkBuilder):
    def __init__(self) -> None:
        super().__init__()
        # Messages are written again as they grow, and a resumed session's rebuilt history
        # repeats them: each message's prompt and text are taken once, tool calls by their id.
        self.seen_prompts: set[str] = set()
        self.texts_by_message: dict[str, int] = {}
        self.seen_tool_calls: set[str] = set()
        # Ids of the summary and acknowledgement messages of compressions (not the user's
        # prompts, not the model's answers).
        self.compression_messages: set[str] = set()

    def _add_record(self, offset: int, record: dict[str, Any]) -> None:
        updates = record.get("$set")
        if isinstance(updates, dict):
            self.record_types["$set"] += 1
            self._note_session(updates)
            messages = updates.get("messages")
            if isinstance(messages, list):
                self._note_compression(offset, messages)
            for message in messages if isinstance(messages, list) else []:
                if isinstance(message, dict):
                    self._add_message(offset, message)
            return
        if "sessionId" in record and "type" not in record:
            self.record_types["header"] += 1
            self._note_session(record)
            return
        kind = _str(record.get("type")) or "?"
        self.record_types[kind] += 1
        if not self._add_message(offset, record):
            self.skipped_records += 1

    def _note_session(self, record: dict[str, Any]) -> None:
        session = _str(record.get("sessionId"))
        if session and is_identifier(session):
            self.identity["session_id"] = session

    def _note_compression(self, offset: int, messages: list[Any]) -> None:
        """The compaction boundary a rewritten message list starts over from, if any: the
        first user message followed by Gemini's acknowledgement of a summary."""
        for summary, ack in pairwise(messages):
            if not (isinstance(summary, dict) and isinstance(ack, dict)
                    and summary.get("type") == "user" and ack.get("type") == "gemini"
                    and _plain_text(ack.get("content")) == COMPRESSION_ACK):
                continue
            summary_id, ack_id = _str(summary.get("id")), _str(ack.get("id"))
            if summary_id is None or not is_identifier(summary_id):
                self.rejected_lines += 1
                return
            self.compression_messages.update(filter(None, (summary_id, ack_id)))
            if any(c.uuid == summary_id for c in self.compactions):
                return  # a rewrite of a list already read
            latest = max(self.usage.values(), key=lambda entry: entry.offset, default=None)
            timestamp = _str(summary.get("timestamp"))
            self.compactions.append(Compaction(
                uuid=summary_id, timestamp=timestamp, trigger=None,
                pre_tokens=None if latest is None else latest.context_tokens, offset=offset))
            text = _plain_text(summary.get("content"))
            if text:
                self.compact_summaries.append(CompactSummary(summary_id, timestamp, text, offset))
            return

    def _add_message(self, offset: int, message: dict[str, Any]) -> bool:
        """Take in one message; False when it is of no kind ctxdb reads."""
        if _str(message.get("id")) in self.compression_messages:
            return True  # a compression's summary or acknowledgement: read as its boundary
        kind = message.get("type")
        if kind == "gemini":
            self._add_answer(offset, message)
        elif kind == "user":
            self._add_user(offset, message)
        else:
            return False
        return True

    def _add_answer(self, offset: int, message: dict[str, Any]) -> None:
        message_id = _str(message.get("id"))
        timestamp = _str(message.get("timestamp"))
        self._add_gemini_usage(offset, message, message_id, timestamp)
        text = _str(message.get("content"))
        if text and text.strip() and message_id is not None:
            entry = AssistantText(text, message_id, message_id, timestamp, False, offset)
            index = self.texts_by_message.get(message_id)
            if index is None:
                self.texts_by_message[message_id] = len(self.assistant_texts)
                self.assistant_texts.append(entry)
            else:
                self.assistant_texts[index] = entry
        calls = message.get("toolCalls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict):
                self._add_tool_call(offset, call, message_id, timestamp)

    def _add_gemini_usage(self, offset: int, message: dict[str, Any], message_id: str | None,
                          timestamp: str | None) -> None:
        tokens = message.get("tokens")
        if not isinstance(tokens, dict) or message_id is None:
            return
        if not is_identifier(message_id):
            self.rejected_lines += 1
            return
        prompt, cached = _count(tokens.get("input")), _count(tokens.get("cached"))
        cached = min(cached, prompt)
        self.usage[message_id] = UsageEntry(
            message_id=message_id, model=_str(message.get("model")), timestamp=timestamp,
            request_id=None, input_tokens=prompt - cached,
            output_tokens=_count(tokens.get("output")) + _count(tokens.get("thoughts")),
            cache_creation_input_tokens=0, cache_read_input_tokens=cached,
            sidechain=False, offset=offset)

    def _add_tool_call(self, offset: int, call: dict[str, Any], message_id: str | None,
                       timestamp: str | None) -> None:
        call_id, name = _str(call.get("id")), _str(call.get("name"))
        if not call_id or not name:
            return
        when = _str(call.get("timestamp")) or timestamp
        if call_id not in self.seen_tool_calls:
            self.seen_tool_calls.add(call_id)
            self.tool_uses.append(ToolUse(call_id, name, _dict(call.get("args")), message_id,
                                          message_id, when, False, offset))
        status = _str(call.get("status"))
        if status is not None:  # the call has finished: its result is known
            self.tool_results[:] = [r for r in self.tool_results if r.tool_use_id != call_id]
            self.tool_results.append(ToolResult(call_id, status != SUCCESS, message_id, when,
                                                False, offset))

    def _add_user(self, offset: int, message: dict[str, Any]) -> None:
        message_id = _str(message.get("id"))
        if message_id is not None and message_id in self.seen_prompts:
            return
        typed = _typed_text(message.get("content"))
        if typed is None:
            return
        if message_id is not None:
            self.seen_prompts.add(message_id)
        self.user_prompts.append(
            UserPrompt(typed, message_id, _str(message.get("timestamp")), offset))


def _plain_text(content: object) -> str | None:
    """The text of a message's content: a string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part["text"] for part in content
                 if isinstance(part, dict) and isinstance(part.get("text"), str)]
        return "\n".join(texts) if texts else None
    return None


def _typed_text(content: object) -> str | None:
    """The text the user typed in a user message's content, or None if it holds none."""
    if isinstance(content, str):
        pieces = [content]
    elif isinstance(content, list):
        parts = [part for part in content if isinstance(part, dict)]
        if any("functionResponse" in part for part in parts):
            return None  # tool results
        pieces = [part["text"] for part in parts if isinstance(part.get("text"), str)]
    else:
        return None
    typed = []
    for piece in pieces:
        text = HOOK_CONTEXT.sub("", piece, count=1).strip()
        if text and not text.startswith(GENERATED_PREFIXES):
            typed.append(text)
    return "\n\n".join(typed) or None
