"""Typed errors for transcript parsing, rooted in :mod:`ctxdb.errors`.

They live next to the parser because nothing else raises them; front ends map them through
the inherited ``category`` like every other ctxdb error.
"""

from __future__ import annotations

from ctxdb.errors import NotFoundError, ValidationError


class TranscriptNotFoundError(NotFoundError):
    """The transcript path does not exist or is not a regular file."""

    code = "transcript_not_found"


class TranscriptUnreadableError(ValidationError):
    """The transcript exists but cannot be read (permissions, I/O error)."""

    code = "transcript_unreadable"


class NotATranscriptError(TranscriptUnreadableError):
    """The file has lines, but none is a transcript record (a JSON object with a ``type``):
    a text, binary or other JSON file given by mistake. Nothing was recorded."""

    code = "not_a_transcript"


class InvalidTranscriptOffsetError(ValidationError):
    """A start offset that is negative, past the end, or not at the start of a line.

    Incremental ingestion stores the ``end_offset`` of the previous read; an offset past the end
    means the file was replaced or truncated since, which the caller must handle explicitly.
    """

    code = "invalid_transcript_offset"
