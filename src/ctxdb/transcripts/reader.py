"""Reading the complete JSONL lines of a transcript from a byte offset.

Claude Code appends to the transcript while we read it, so the last line may be half written.
Only lines terminated by ``\\n`` are returned; the returned end offset points just after the last
of them, which is where the next incremental read must start.

A transcript path comes from a hook's payload, so it is opened without blocking (a named pipe
nobody writes would block ``open``) and refused unless it is a regular file (``/dev/zero``
never ends). One read takes at most ``MAX_READ_BYTES``: a longer transcript is read in
several, and a single line longer than that is skipped (counted in ``oversized_lines``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ctxdb.transcripts.errors import (
    InvalidTranscriptOffsetError,
    TranscriptNotFoundError,
    TranscriptUnreadableError,
)
from ctxdb.transcripts.uploaded import UploadedTranscript

# A transcript file, or the part of one a remote agent sent (never opened: see uploaded.py).
Source = str | os.PathLike[str] | UploadedTranscript

MAX_READ_BYTES = 32 * 1024 * 1024
_SCAN_BYTES = 1024 * 1024


class CompleteLines:
    """The complete lines read from ``start_offset``. A plain class, not a dataclass: the
    prompt hook reads a transcript's tail, and creating a dataclass costs a new process more
    than the read (iterating it yields its lines, so it cannot be a named tuple either)."""

    __slots__ = ("data", "oversized_bytes", "start_offset")

    def __init__(self, data: bytes, start_offset: int, oversized_bytes: int = 0) -> None:
        self.data = data
        self.start_offset = start_offset
        # Bytes of one line over MAX_READ_BYTES, skipped after ``data`` (0: none).
        self.oversized_bytes = oversized_bytes

    @property
    def end_offset(self) -> int:
        return self.start_offset + len(self.data) + self.oversized_bytes

    @property
    def oversized_lines(self) -> int:
        return 1 if self.oversized_bytes else 0

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        """Yield ``(offset of the line in the file, line without its newline)``."""
        position = 0
        data = self.data
        while position < len(data):
            newline = data.index(b"\n", position)
            yield self.start_offset + position, data[position:newline]
            position = newline + 1


def read_complete_lines(path: Source, start_offset: int = 0,
                        max_bytes: int | None = None) -> CompleteLines:
    """The complete lines from ``start_offset``, at most ``max_bytes`` (by default
    ``MAX_READ_BYTES``) of them."""
    _check_offset_type(start_offset)
    max_bytes = MAX_READ_BYTES if max_bytes is None else max_bytes
    if isinstance(path, UploadedTranscript):
        return _uploaded_lines(path, start_offset, max_bytes)
    with open_transcript(path) as handle:
        try:
            size = os.fstat(handle.fileno()).st_size
            _check_offset_position(handle, path, start_offset, size)
            handle.seek(start_offset)
            data = handle.read(min(size - start_offset, max_bytes))
            last_newline = data.rfind(b"\n")
            if last_newline < 0 and len(data) == max_bytes:
                line_end = _end_of_line(handle, start_offset + len(data), size)
                if line_end is not None:
                    return CompleteLines(b"", start_offset, line_end - start_offset)
        except OSError as exc:
            raise _unreadable(path, exc) from exc
    return CompleteLines(data[: last_newline + 1], start_offset)


def open_transcript(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading in binary; a typed error unless it is a regular file."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise TranscriptNotFoundError(f"no transcript file at {path}", path=str(path)) from exc
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise TranscriptNotFoundError(
                f"{path} is not a regular file, so not a transcript", path=str(path))
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def transcript_size(path: Source) -> int:
    """The length of the transcript in bytes (a typed error unless it is a regular file)."""
    if isinstance(path, UploadedTranscript):
        return path.size
    with open_transcript(path) as handle:
        return os.fstat(handle.fileno()).st_size


def line_start_at_or_after(path: Source, position: int) -> int | None:
    """The offset of the first line starting at or after ``position``; None if none does.
    Of an upload, the first line it holds at or after ``position``."""
    if isinstance(path, UploadedTranscript):
        return _uploaded_line_start(path, position)
    if position == 0:
        return 0
    with open_transcript(path) as handle:
        try:
            size = os.fstat(handle.fileno()).st_size
            return _end_of_line(handle, position - 1, size)  # a line starts after a \n
        except OSError as exc:
            raise _unreadable(path, exc) from exc


def _end_of_line(handle: BinaryIO, position: int, size: int) -> int | None:
    """The offset just after the first newline at or after ``position`` (before ``size``)."""
    handle.seek(position)
    while position < size:
        data = handle.read(min(_SCAN_BYTES, size - position))
        if not data:
            return None
        newline = data.find(b"\n")
        if newline >= 0:
            return position + newline + 1
        position += len(data)
    return None


def _unreadable(path: Source, exc: OSError) -> TranscriptUnreadableError:
    if isinstance(exc, PermissionError):
        return TranscriptUnreadableError(
            f"transcript {path} is not readable: {exc.strerror}", path=str(path))
    return TranscriptUnreadableError(f"transcript {path} could not be read: {exc}",
                                     path=str(path))


def _check_offset_type(start_offset: object) -> None:
    if isinstance(start_offset, bool) or not isinstance(start_offset, int) or start_offset < 0:
        raise InvalidTranscriptOffsetError(
            f"start offset must be a non-negative integer, got {start_offset!r}",
            start_offset=repr(start_offset),
        )


def _check_offset_position(
    handle: BinaryIO, path: Source, start_offset: int, size: int
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


def subagent_files(path: Source) -> list[Path]:
    """The subagent transcripts Claude Code 2.1+ writes next to ``<session>.jsonl``, in
    ``<session>/subagents/*.jsonl``, sorted by name; empty for older transcripts, and for an
    upload (its neighbours are on the agent's machine)."""
    if isinstance(path, UploadedTranscript):
        return []
    transcript = Path(path)
    folder = transcript.with_suffix("") / "subagents"
    if not folder.is_dir():
        return []
    return sorted(child for child in folder.glob("*.jsonl") if child.is_file())


def _uploaded_lines(upload: UploadedTranscript, start: int, max_bytes: int) -> CompleteLines:
    """The upload's complete lines from ``start``, which must fall within it at a line start
    (its bytes end with a newline: the agent sends complete lines only)."""
    sent_end = upload.offset + len(upload.data)
    inside = upload.offset <= start <= upload.end
    if not inside or (upload.offset < start <= sent_end
                      and upload.data[start - upload.offset - 1] != 0x0A):
        raise InvalidTranscriptOffsetError(
            f"start offset {start} is not at a line start within the bytes sent of "
            f"{upload.name} ({upload.offset} to {upload.end})", start_offset=start)
    if start > sent_end:  # within the skipped line: nothing the agent sent follows
        return CompleteLines(b"", start, upload.end - start)
    piece = upload.data[start - upload.offset:][:max_bytes]
    if start + len(piece) < sent_end:  # cut by max_bytes: complete lines only
        piece = piece[: piece.rfind(b"\n") + 1]
        return CompleteLines(piece, start)
    return CompleteLines(piece, start, upload.skipped)


def _uploaded_line_start(upload: UploadedTranscript, position: int) -> int | None:
    if position <= upload.offset:
        return upload.offset
    newline = upload.data.find(b"\n", position - 1 - upload.offset)
    return None if newline < 0 else upload.offset + newline + 1
