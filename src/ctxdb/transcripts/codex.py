"""Parsing Codex rollout transcripts (``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl``).

Checked against Codex 0.171. Every line is ``{"timestamp", "type", "payload"}``:

- ``session_meta``: the session (``payload.session_id`` or ``payload.id``);
- ``response_item``: what went to or came from the model: ``message`` (role ``user``,
  ``assistant`` or ``developer``, content parts ``input_text`` / ``output_text``),
  ``function_call`` (``name``, ``arguments`` as a JSON string, ``call_id``),
  ``custom_tool_call`` (``apply_patch`` with the patch as ``input``) and their ``*_output``;
- ``token_usage_record``: the usage of one model response (``response_id``, ``usage`` with
  ``input_tokens``, ``cached_input_tokens``, ``cache_write_input_tokens``, ``output_tokens``);
- ``compacted``: the history was compacted here (``payload.message`` is the summary);
- anything else (``event_msg``, ``turn_context``, ``world_state``, ...) is counted and skipped.

User messages Codex generates itself (``<environment_context>``, ``<user_instructions>``, ...
wrapped in a tag) are not typed prompts; the SessionStart hook's context arrives as a
``developer`` message, which is not one either. OpenAI's ``input_tokens`` include the cached
ones: they are split into input, cache-read and cache-write tokens whose sum
(``context_tokens``) is what the model reported.
"""

from __future__ import annotations

import json
import re
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

GENERATED = re.compile(r"^\s*<([a-z_]+)>")
PATCHED_FILE = re.compile(r"^\*\*\* (?:Add|Update|Delete) File: (.+)$", re.MULTILINE)
OUTPUTS = ("function_call_output", "custom_tool_call_output")
UNSUPPORTED = ("unsupported call: ", "unsupported custom tool call: ")


def parse_codex_transcript(path: Source, start_offset: int = 0) -> TranscriptChunk:
    """Parse the complete lines of ``path`` from ``start_offset`` (a previous ``end_offset``)."""
    lines = read_complete_lines(path, start_offset)
    builder = _CodexChunkBuilder()
    builder.malformed_lines += lines.oversized_lines
    for offset, line in lines:
        builder.add_line(offset, line)
    return builder.build(str(path), lines.start_offset, lines.end_offset)


class _CodexChunkBuilder(_ChunkBuilder):
    def _add_record(self, offset: int, record: dict[str, Any]) -> None:
        kind = _str(record.get("type")) or "?"
        payload = _dict(record.get("payload"))
        subtype = _str(payload.get("type"))
        self.record_types[f"{kind}/{subtype}" if subtype else kind] += 1
        timestamp = _str(record.get("timestamp"))
        if kind == "session_meta":
            session = _str(payload.get("session_id")) or _str(payload.get("id"))
            if session and is_identifier(session):
                self.identity["session_id"] = session
            version = _str(payload.get("cli_version"))
            if version and is_identifier(version):
                self.identity["version"] = version
        elif kind == "response_item":
            self._add_item(offset, payload, timestamp)
        elif kind == "token_usage_record":
            self._add_codex_usage(offset, payload, timestamp)
        elif kind == "compacted":
            self.compactions.append(Compaction(None, timestamp, None, None, offset))
            summary = _str(payload.get("message"))
            if summary:
                self.compact_summaries.append(CompactSummary(None, timestamp, summary, offset))
        else:
            self.skipped_records += 1

    def _add_item(self, offset: int, item: dict[str, Any], timestamp: str | None) -> None:
        kind = item.get("type")
        item_id = _str(item.get("id"))
        if kind == "message":
            texts = [part["text"] for part in item.get("content") or []
                     if isinstance(part, dict) and isinstance(part.get("text"), str)]
            role = item.get("role")
            if role == "assistant":
                text = "\n".join(texts).strip()
                if text:
                    self.assistant_texts.append(
                        AssistantText(text, item_id, item_id, timestamp, False, offset))
            elif role == "user":
                typed = [text.strip() for text in texts
                         if text.strip() and not GENERATED.match(text)]
                if typed:
                    self.user_prompts.append(
                        UserPrompt("\n\n".join(typed), item_id, timestamp, offset))
        elif kind in ("function_call", "custom_tool_call"):
            call_id, name = _str(item.get("call_id")), _str(item.get("name"))
            if call_id and name:
                self.tool_uses.append(ToolUse(call_id, name, _tool_input(item), item_id,
                                              item_id, timestamp, False, offset))
        elif kind in OUTPUTS:
            call_id = _str(item.get("call_id"))
            if call_id:
                self.tool_results.append(ToolResult(call_id, _failed(item), item_id,
                                                    timestamp, False, offset))
        else:
            self.skipped_records += 1

    def _add_codex_usage(self, offset: int, payload: dict[str, Any],
                         timestamp: str | None) -> None:
        usage = payload.get("usage")
        key = _str(payload.get("response_id")) or _str(payload.get("turn_id"))
        if not isinstance(usage, dict) or key is None:
            return
        if not is_identifier(key):
            self.rejected_lines += 1
            return
        total = _count(usage.get("input_tokens"))
        cached = min(_count(usage.get("cached_input_tokens")), total)
        written = min(_count(usage.get("cache_write_input_tokens")), total - cached)
        self.usage[key] = UsageEntry(
            message_id=key, model=None, timestamp=timestamp, request_id=key,
            input_tokens=total - cached - written, output_tokens=_count(usage.get("output_tokens")),
            cache_creation_input_tokens=written, cache_read_input_tokens=cached,
            sidechain=False, offset=offset)


def _tool_input(item: dict[str, Any]) -> dict[str, Any]:
    """The call's input as a dict; an apply_patch names the files it changes as
    ``file_path`` (the first; the handoff lists edited files through it)."""
    if item.get("type") == "custom_tool_call":
        text = _str(item.get("input")) or ""
        files = PATCHED_FILE.findall(text)
        return {"input": text, **({"file_path": files[0].strip(), "files": files} if files
                                  else {})}
    arguments = item.get("arguments")
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            return {"arguments": arguments}
        return parsed if isinstance(parsed, dict) else {"arguments": parsed}
    return _dict(arguments)


def _failed(item: dict[str, Any]) -> bool:
    """Whether the call did not run: a structured ``success: false``, or Codex's refusal of
    a tool it does not offer (``unsupported call: <name>``)."""
    output = item.get("output")
    if isinstance(output, dict):
        return output.get("success") is False
    return isinstance(output, str) and output.startswith(UNSUPPORTED)
