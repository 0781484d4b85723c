"""The context in use of a session, read from the end of its transcript only.

A hook on every prompt cannot afford to parse a transcript of many megabytes, and the latest
main-chain response is near its end: read the last block of complete lines, and a bigger one
until a main-chain usage turns up (or the whole file was read).
"""

from __future__ import annotations

import os

from ctxdb.transcripts.parser import parse_transcript

FIRST_BLOCK = 256 * 1024


def latest_context_tokens(path: str | os.PathLike[str], block: int = FIRST_BLOCK) -> int | None:
    """Context tokens of the latest main-chain response in ``path``, or None if none."""
    size = os.path.getsize(path)
    while True:
        start = _line_start_at_or_after(path, max(0, size - block))
        if start is not None:
            tokens = parse_transcript(path, start).context_tokens
            if tokens is not None or start == 0:
                return tokens
        block *= 4


def _line_start_at_or_after(path: str | os.PathLike[str], position: int) -> int | None:
    """The offset of the first line starting at or after ``position``; None if none does."""
    if position == 0:
        return 0
    with open(path, "rb") as handle:
        handle.seek(position - 1)  # a line starts at ``position`` if the byte before is \n
        consumed = 0
        while data := handle.read(64 * 1024):
            newline = data.find(b"\n")
            if newline >= 0:
                return position + consumed + newline
            consumed += len(data)
    return None
