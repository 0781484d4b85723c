"""A bounded handoff of what happened since the latest compaction boundary.

Window rules (the window is everything after the latest ``compact_boundary``, or the whole
transcript when there is none):

- ``files_edited`` and ``decisions`` accumulate, so they are taken from the window only;
  files edited by 2.1.x subagents (``<session>/subagents/*.jsonl``) count when their edit is
  timestamped after the boundary;
- ``latest_request``, ``last_assistant_text`` and ``open_todos`` are "the latest" of
  something: the latest in the window when the window has one, otherwise the latest before
  it. After an automatic compaction the user often has not typed anything new, and the
  request being worked on (and the todo list) still stands.

Everything is bounded: strings to ``MAX_TEXT_CHARS``, lists to ``MAX_LIST_ITEMS`` entries, and
the reading: a transcript longer than the reader's ``MAX_READ_BYTES`` is read from the first
line of its last ``MAX_READ_BYTES`` (what matters to whoever resumes is at the end).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ctxdb.transcripts import reader
from ctxdb.transcripts.decisions import extract_decisions
from ctxdb.transcripts.models import Compaction, Todo, TranscriptChunk
from ctxdb.transcripts.parser import parse_transcript
from ctxdb.transcripts.reader import (
    Source,
    line_start_at_or_after,
    subagent_files,
    transcript_size,
)
from ctxdb.transcripts.text import clip
from ctxdb.transcripts.uploaded import UploadedTranscript

MAX_TEXT_CHARS = 2_000
MAX_LIST_ITEMS = 50
MAX_EARLIER_REQUESTS = 4


@dataclass(frozen=True)
class Handoff:
    session_id: str | None
    compaction: Compaction | None
    latest_request: str | None
    earlier_requests: list[str] = field(default_factory=list)
    open_todos: list[Todo] = field(default_factory=list)
    files_edited: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    last_assistant_text: str | None = None
    context_tokens: int | None = None


def handoff_since_last_compaction(
    path: Source, *, include_subagents: bool = True, client: str | None = None,
    before_latest_compaction: bool = False,
) -> Handoff:
    """The handoff of ``path``, a transcript of ``client`` (see :func:`parse_transcript`);
    of a remote agent's upload, the handoff its machine read from the file (uploaded.py).

    ``before_latest_compaction``: the handoff of a compaction already written to the
    transcript (Gemini CLI's, read after the fact): the window starts at the boundary before
    it, as it would have had the handoff been made just before that compaction.
    """
    if isinstance(path, UploadedTranscript) and path.handoff is not None:
        return path.handoff
    chunk = _parse_tail(path, client)
    if before_latest_compaction and chunk.compactions:
        chunk = replace(chunk, compactions=chunk.compactions[:-1])
    extra_files: list[str] = []
    if include_subagents:
        boundary = chunk.compactions[-1] if chunk.compactions else None
        for subagent in subagent_files(path):
            extra_files.extend(_subagent_edits_after(_parse_tail(subagent), boundary))
    return handoff_from_chunk(chunk, extra_files_edited=extra_files)


def _parse_tail(path: Source, client: str | None = None) -> TranscriptChunk:
    """The whole transcript, or its last ``MAX_READ_BYTES`` when it is longer."""
    size = transcript_size(path)
    start = line_start_at_or_after(path, max(0, size - reader.MAX_READ_BYTES))
    if start is None:  # no line starts in the last MAX_READ_BYTES: nothing readable there
        return TranscriptChunk(str(path), size, size, malformed_lines=1)
    return parse_transcript(path, start, client)


def handoff_from_chunk(
    chunk: TranscriptChunk, *, extra_files_edited: list[str] | None = None
) -> Handoff:
    """The handoff of a chunk read from offset 0 (or of chunks joined with ``followed_by``)."""
    boundary = chunk.compactions[-1] if chunk.compactions else None
    since = boundary.offset if boundary else -1
    requests = [prompt.text for prompt in chunk.user_prompts]
    main_texts = [text for text in chunk.assistant_texts if not text.sidechain]
    files = chunk.files_edited(since_offset=since)
    for path in extra_files_edited or []:
        if path not in files:
            files.append(path)
    todos = chunk.todos() or []
    return Handoff(
        session_id=chunk.session_id,
        compaction=boundary,
        latest_request=clip(requests[-1], MAX_TEXT_CHARS) if requests else None,
        earlier_requests=[
            clip(text, MAX_TEXT_CHARS) for text in requests[-1 - MAX_EARLIER_REQUESTS : -1]
        ],
        open_todos=[
            Todo(clip(todo.content, MAX_TEXT_CHARS), todo.status)
            for todo in todos
            if todo.is_open
        ][:MAX_LIST_ITEMS],
        files_edited=[clip(path, MAX_TEXT_CHARS) for path in files[-MAX_LIST_ITEMS:]],
        decisions=extract_decisions(
            (answer for answer in chunk.user_answers if answer.offset > since),
            (text for text in main_texts if text.offset > since),
        ),
        last_assistant_text=clip(main_texts[-1].text.strip(), MAX_TEXT_CHARS)
        if main_texts
        else None,
        context_tokens=chunk.context_tokens,
    )


def _subagent_edits_after(chunk: TranscriptChunk, boundary: Compaction | None) -> list[str]:
    cutoff = boundary.timestamp if boundary is not None else None
    return chunk.files_edited(since_timestamp=cutoff)
