"""The context in use of a session, read from the end of its transcript only.

A hook on every prompt cannot afford to parse a transcript of many megabytes, and the latest
main-chain response is near its end: read the last block of complete lines, and a bigger one
until a main-chain usage turns up, the whole file was read or the block reached the reader's
limit (``MAX_READ_BYTES``). A Claude Code transcript's block is read from its end, record by
record, only as far as the latest response (``records.latest_usage``): the prompt hook neither
parses the whole block nor imports the parser's models. Gemini CLI's and Codex's formats are
read by their parsers.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ctxdb.transcripts import reader
from ctxdb.transcripts.reader import (
    Source,
    line_start_at_or_after,
    read_complete_lines,
    transcript_size,
)
from ctxdb.transcripts.records import latest_usage
from ctxdb.transcripts.uploaded import UploadedTranscript

if TYPE_CHECKING:
    from ctxdb.transcripts.models import TranscriptChunk

FIRST_BLOCK = 256 * 1024
# The clients whose transcripts have formats of their own (see ``parse_transcript``).
OTHER_FORMATS = frozenset({"gemini", "codex"})
# The last block parsed, with what identifies it: a Gemini prompt reads the same tail twice
# (the context in use, then whether the chat was compressed), and parses it once.
_last_parsed: tuple[tuple[object, ...], TranscriptChunk] | None = None


def latest_context_tokens(path: Source, block: int = FIRST_BLOCK,
                          client: str | None = None) -> int | None:
    """Context tokens of the latest main-chain response in ``path`` (a transcript of
    ``client``, see :func:`parse_transcript`), or None if none."""
    if isinstance(path, UploadedTranscript):  # the agent sent its file's last block
        return _context_tokens(path, path.offset, client)
    size = transcript_size(path)  # a regular file, or a typed error
    block = min(block, reader.MAX_READ_BYTES)  # what one read from ``start`` takes in
    while True:
        start = line_start_at_or_after(path, max(0, size - block))
        if start is not None:
            tokens = _context_tokens(path, start, client)
            if tokens is not None or start == 0:
                return tokens
        if block >= reader.MAX_READ_BYTES:
            return None
        block = min(block * 4, reader.MAX_READ_BYTES)


def tail_chunk(path: Source, client: str | None = None) -> TranscriptChunk:
    """The last block of complete lines of ``path`` (``FIRST_BLOCK``; an upload: what the
    agent sent), parsed."""
    if isinstance(path, UploadedTranscript):
        return _parse(path, path.offset, client)
    size = transcript_size(path)
    start = line_start_at_or_after(path, max(0, size - FIRST_BLOCK))
    if start is None:  # one line longer than the block: nothing complete in it
        from ctxdb.transcripts.models import TranscriptChunk

        return TranscriptChunk(str(path), size, size)
    return _parse(path, start, client)


def _context_tokens(path: Source, start: int, client: str | None) -> int | None:
    """What ``parse_transcript(path, start, client).context_tokens`` gives."""
    if client in OTHER_FORMATS:
        return _parse(path, start, client).context_tokens
    lines = read_complete_lines(path, start)
    return latest_usage(lines.data.split(b"\n")[:-1])


def _parse(path: Source, start: int, client: str | None) -> TranscriptChunk:
    """``parse_transcript(path, start, client)``, or the last result when it was of the same
    bytes (the same upload; the same file, unchanged in size and modification time)."""
    global _last_parsed
    from ctxdb.transcripts.parser import parse_transcript

    if isinstance(path, UploadedTranscript):  # compared by its bytes (and name, offset)
        key: tuple[object, ...] = (path, start, client)
    else:
        status = os.stat(path)
        key = (os.fspath(path), start, client, status.st_size, status.st_mtime_ns)
    last = _last_parsed
    if last is not None and last[0] == key:
        return last[1]
    chunk = parse_transcript(path, start, client)
    _last_parsed = (key, chunk)
    return chunk
