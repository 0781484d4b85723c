"""Reading the complete JSONL lines of a transcript from a byte offset.

Claude Code appends to the transcript while we read it, so the last line may be half written.
Only lines terminated by ``\\n`` are returned; the returned end offset points just after the last
of them, which is where the next incremental read must start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ctxdb.transcripts.errors import (
    InvalidTranscriptOffsetError,
    TranscriptNotFoundError,
    TranscriptUnreadableError,
)


@dataclass(frozen=True)
class CompleteLines:
    data: bytes
    start_offset: int

    @property
    def end_offset(self) -> int:
        return self.start_offset + len(self.data)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        """Yield ``(offset of the line in the file, line without its newline)``."""
        position = 0
        data = self.data
        while position < len(data):
            newline = data.index(b"\n", position)
            yield self.start_offset + position, data[position:newline]
            position = newline + 1


def read_complete_lines(path: str | os.PathLike[str], start_offset: int = 0) -> CompleteLines:
    _check_offset_type(start_offset)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            _check_offset_position(handle, path, start_offset, size)
            handle.seek(start_offset)
            data = handle.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise TranscriptNotFoundError(f"no transcript file at {path}", path=str(path)) from exc
    except PermissionError as exc:
        raise TranscriptUnreadableError(
            f"transcript {path} is not readable: {exc.strerror}", path=str(path)
        ) from exc
    except OSError as exc:
        raise TranscriptUnreadableError(
            f"transcript {path} could not be read: {exc}", path=str(path)
        ) from exc
    last_newline = data.rfind(b"\n")
    return CompleteLines(data[: last_newline + 1], start_offset)


def _check_offset_type(start_offset: object) -> None:
    if isinstance(start_offset, bool) or not isinstance(start_offset, int) or start_offset < 0:
        raise InvalidTranscriptOffsetError(
            f"start offset must be a non-negative integer, got {start_offset!r}",
            start_offset=repr(start_offset),
        )


def _check_offset_position(
    handle: BinaryIO, path: str | os.PathLike[str], start_offset: int, size: int
) -> None:
    if start_offset > size:
        raise InvalidTranscriptOffsetError(
            f"start offset {start_offset} is past the end of {path} ({size} bytes): "
            "the transcript was truncated or replaced since it was last read",
            start_offset=start_offset,
            size=size,
        )
    if start_offset == 0:
        return
    handle.seek(start_offset - 1)
    if handle.read(1) != b"\n":
        raise InvalidTranscriptOffsetError(
            f"start offset {start_offset} is not at the start of a line of {path}",
            start_offset=start_offset,
        )


def subagent_files(path: str | os.PathLike[str]) -> list[Path]:
    """The subagent transcripts Claude Code 2.1+ writes next to ``<session>.jsonl``, in
    ``<session>/subagents/*.jsonl``, sorted by name; empty for older transcripts."""
    transcript = Path(path)
    folder = transcript.with_suffix("") / "subagents"
    if not folder.is_dir():
        return []
    return sorted(child for child in folder.glob("*.jsonl") if child.is_file())
