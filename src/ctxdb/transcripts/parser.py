"""Parsing Claude Code JSONL transcripts into a :class:`TranscriptChunk`.

Interpreted records: ``assistant`` (usage, text, tool_use), ``user`` (typed prompts, tool
results, AskUserQuestion answers, the compact summary), ``system`` with subtype
``compact_boundary`` and the 1.0.x ``summary``. Every other record type (``progress``,
``file-history-snapshot``, ``queue-operation``, other ``system`` subtypes, and whatever later
versions add) is counted in ``record_types`` and skipped. Malformed lines (not JSON, nested
too deep, too long) are counted and skipped; fields of an unexpected type are treated as
missing rather than failing the parse, because one odd record must not stop a hook.

A transcript is third-party data that ctxdb stores: NUL characters and lone surrogates in its
strings (JSON escapes such as ``\\u0000`` and ``\\ud800``) are replaced by U+FFFD, and a line
whose key cannot be stored (a ``message.id`` or boundary ``uuid`` that is no valid
identifier, e.g. a megabyte long) is counted in ``rejected_lines`` and skipped.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ctxdb.domain.validation import is_identifier
from ctxdb.transcripts.models import (
    AssistantText,
    Compaction,
    CompactSummary,
    SessionSummary,
    ToolResult,
    ToolUse,
    TranscriptChunk,
    UsageEntry,
    UserAnswer,
    UserPrompt,
)
from ctxdb.transcripts.prompts import typed_user_text
from ctxdb.transcripts.reader import Source, read_complete_lines
from ctxdb.transcripts.records import MalformedLine, record_of, usage_key
from ctxdb.transcripts.records import count as _count
from ctxdb.transcripts.records import dict_or_empty as _dict
from ctxdb.transcripts.records import str_or_none as _str

# Record keys naming the session, the writing Claude Code version and the subagent; the
# latest non-empty value wins.
IDENTITY_FIELDS = {"sessionId": "session_id", "version": "version", "agentId": "agent_id"}
# How much of a failed tool call's report is kept: its first lines say what went wrong.
MAX_ERROR_CHARS = 1_000


def parse_transcript(path: Source, start_offset: int = 0,
                     client: str | None = None) -> TranscriptChunk:
    """Parse the complete lines of ``path`` from ``start_offset`` (a previous ``end_offset``).

    ``client`` names the agent client that wrote the transcript: Gemini CLI's (``gemini``)
    and Codex's (``codex``) have formats of their own (:mod:`ctxdb.transcripts.gemini`,
    :mod:`ctxdb.transcripts.codex`); any other is read as Claude Code's.
    """
    if client == "gemini":
        from ctxdb.transcripts.gemini import parse_gemini_transcript

        return parse_gemini_transcript(path, start_offset)
    if client == "codex":
        from ctxdb.transcripts.codex import parse_codex_transcript

        return parse_codex_transcript(path, start_offset)
    lines = read_complete_lines(path, start_offset)
    builder = _ChunkBuilder()
    builder.malformed_lines += lines.oversized_lines
    for offset, line in lines:
        builder.add_line(offset, line)
    return builder.build(str(path), lines.start_offset, lines.end_offset)


class _ChunkBuilder:
    def __init__(self) -> None:
        self.records = 0
        self.malformed_lines = 0
        self.rejected_lines = 0
        self.skipped_records = 0
        self.record_types: Counter[str] = Counter()
        self.identity: dict[str, str | None] = dict.fromkeys(IDENTITY_FIELDS.values())
        self.usage: dict[str, UsageEntry] = {}
        self.compactions: list[Compaction] = []
        self.compact_summaries: list[CompactSummary] = []
        self.summaries: list[SessionSummary] = []
        self.tool_uses: list[ToolUse] = []
        self.tool_results: list[ToolResult] = []
        self.user_answers: list[UserAnswer] = []
        self.user_prompts: list[UserPrompt] = []
        self.assistant_texts: list[AssistantText] = []

    def build(self, path: str, start_offset: int, end_offset: int) -> TranscriptChunk:
        return TranscriptChunk(
            path=path,
            start_offset=start_offset,
            end_offset=end_offset,
            records=self.records,
            malformed_lines=self.malformed_lines,
            rejected_lines=self.rejected_lines,
            skipped_records=self.skipped_records,
            record_types=dict(self.record_types),
            session_id=self.identity["session_id"],
            version=self.identity["version"],
            agent_id=self.identity["agent_id"],
            usage=list(self.usage.values()),
            compactions=self.compactions,
            compact_summaries=self.compact_summaries,
            summaries=self.summaries,
            tool_uses=self.tool_uses,
            tool_results=self.tool_results,
            user_answers=self.user_answers,
            user_prompts=self.user_prompts,
            assistant_texts=self.assistant_texts,
        )

    def add_line(self, offset: int, line: bytes) -> None:
        if not line.strip():
            return
        try:
            record = record_of(line)
        except MalformedLine:
            self.malformed_lines += 1
            return
        self.records += 1
        self._add_record(offset, record)

    def _add_record(self, offset: int, record: dict[str, Any]) -> None:
        kind = _str(record.get("type")) or "?"
        subtype = _str(record.get("subtype"))
        self.record_types[f"{kind}/{subtype}" if subtype else kind] += 1
        self._note_identity(record)
        if kind == "assistant":
            self._add_assistant(offset, record)
        elif kind == "user":
            self._add_user(offset, record)
        elif kind == "system" and subtype == "compact_boundary":
            self._add_compaction(offset, record)
        elif kind == "summary" and isinstance(record.get("summary"), str):
            self.summaries.append(
                SessionSummary(record["summary"], _str(record.get("leafUuid")), offset)
            )
        else:
            self.skipped_records += 1

    def _note_identity(self, record: dict[str, Any]) -> None:
        for key, field_name in IDENTITY_FIELDS.items():
            value = _str(record.get(key))
            if value and is_identifier(value):  # an unusable one is as good as none
                self.identity[field_name] = value

    def _add_assistant(self, offset: int, record: dict[str, Any]) -> None:
        message = _dict(record.get("message"))
        sidechain = record.get("isSidechain") is True
        message_id = _str(message.get("id"))
        uuid, timestamp = _str(record.get("uuid")), _str(record.get("timestamp"))
        self._add_usage(offset, record, message, sidechain)
        for block in _blocks(message.get("content")):
            block_type = block.get("type")
            if block_type == "text" and isinstance(block.get("text"), str):
                if block["text"].strip():
                    self.assistant_texts.append(AssistantText(
                        block["text"], message_id, uuid, timestamp, sidechain, offset
                    ))
            elif block_type == "tool_use" and _str(block.get("id")) and _str(block.get("name")):
                self.tool_uses.append(ToolUse(
                    block["id"], block["name"], _dict(block.get("input")), message_id,
                    uuid, timestamp, sidechain, offset,
                ))

    def _add_usage(
        self, offset: int, record: dict[str, Any], message: dict[str, Any], sidechain: bool
    ) -> None:
        key = usage_key(record, message)
        if key is None:
            return
        if not is_identifier(key):
            self.rejected_lines += 1
            return
        usage = message["usage"]  # the latest record of a key carries the final numbers
        self.usage[key] = UsageEntry(
            message_id=key,
            model=_str(message.get("model")),
            timestamp=_str(record.get("timestamp")),
            request_id=_str(record.get("requestId")),
            input_tokens=_count(usage.get("input_tokens")),
            output_tokens=_count(usage.get("output_tokens")),
            cache_creation_input_tokens=_count(usage.get("cache_creation_input_tokens")),
            cache_read_input_tokens=_count(usage.get("cache_read_input_tokens")),
            sidechain=sidechain,
            offset=offset,
        )

    def _add_user(self, offset: int, record: dict[str, Any]) -> None:
        content = _dict(record.get("message")).get("content")
        uuid, timestamp = _str(record.get("uuid")), _str(record.get("timestamp"))
        if record.get("isCompactSummary") is True:
            text = content if isinstance(content, str) else "\n".join(_texts(content))
            self.compact_summaries.append(CompactSummary(uuid, timestamp, text, offset))
            return
        sidechain = record.get("isSidechain") is True
        results = [block for block in _blocks(content)
                   if block.get("type") == "tool_result" and _str(block.get("tool_use_id"))]
        # The record's toolUseResult is the result of its one tool call, if it has one.
        task_id = _created_task_id(record) if len(results) == 1 else None
        for block in results:
            failed = block.get("is_error") is True
            self.tool_results.append(ToolResult(
                block["tool_use_id"], failed, uuid, timestamp, sidechain, offset, task_id,
                _error_text(block.get("content")) if failed else None,
            ))
        self._add_answers(offset, record, uuid, timestamp)
        typed = typed_user_text(record, content)
        if typed is not None:
            self.user_prompts.append(UserPrompt(typed, uuid, timestamp, offset))

    def _add_answers(
        self, offset: int, record: dict[str, Any], uuid: str | None, timestamp: str | None
    ) -> None:
        if record.get("isSidechain") is True:
            return
        answers = _dict(record.get("toolUseResult")).get("answers")
        if not isinstance(answers, dict):
            return
        for question, answer in answers.items():
            if isinstance(question, str) and isinstance(answer, str):
                self.user_answers.append(UserAnswer(question, answer, uuid, timestamp, offset))

    def _add_compaction(self, offset: int, record: dict[str, Any]) -> None:
        metadata = _dict(record.get("compactMetadata"))
        pre_tokens = metadata.get("preTokens")
        uuid = _str(record.get("uuid"))
        if uuid is not None and not is_identifier(uuid):
            self.rejected_lines += 1
            return
        self.compactions.append(Compaction(
            uuid=uuid,
            timestamp=_str(record.get("timestamp")),
            trigger=_str(metadata.get("trigger")),
            pre_tokens=_count(pre_tokens) if pre_tokens is not None else None,
            offset=offset,
        ))


def _created_task_id(record: dict[str, Any]) -> str | None:
    """The id of the task a TaskCreate call created, from its result's ``toolUseResult``."""
    task_id = _dict(_dict(record.get("toolUseResult")).get("task")).get("id")
    return task_id if isinstance(task_id, str) and task_id else None


def _error_text(content: object) -> str | None:
    """The start of a failed tool call's report (a string, or text blocks)."""
    text = content if isinstance(content, str) else "\n".join(_texts(content))
    return text[:MAX_ERROR_CHARS] or None


def _blocks(content: object) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return []
    return [block for block in content if isinstance(block, dict)]


def _texts(content: object) -> list[str]:
    return [
        block["text"]
        for block in _blocks(content)
        if block.get("type") == "text" and isinstance(block.get("text"), str)
    ]
