"""Reading the piece of a transcript a remote agent's hook sends: which part an event needs,
and that part as the request's ``transcript`` member (complete lines, base64).

``hooks.remote_transcript`` says what goes with which event and does the rest (offsets,
subagents, handoffs); this module is the part the remote short path (``hooks.remote_entry``)
needs for a prompt too, so it imports only C modules (``binascii``, not ``base64``).
"""

from __future__ import annotations

import binascii
import os
import stat

from ctxdb.domain.client_rules import (
    AUTO_PRE_COMPACT_EVERY_TURN,
    MAX_UPLOAD_BYTES,
    RELOAD_AFTER_COMPRESSION,
)

TYPE_CHECKING = False  # typing's own import costs every prompt more than this module
if TYPE_CHECKING:
    from typing import Any

# Events that ingest the transcript from the offset the server answered last
# (hooks.remote_transcript keeps the offsets); the others send its tail, a handoff or nothing.
INGESTING = frozenset({"Stop", "SubagentStop", "PostCompact"})
PROMPT_TAIL_BYTES = 256 * 1024
LONG_LINE_SCAN = 16 * 1024 * 1024
_SCAN_BYTES = 64 * 1024


def tail_bytes(role: str, client: str, source: object, trigger: object) -> int | None:
    """How much of the file's end an event needs (None: the new bytes, or nothing): ``role``
    is the event's in Claude Code's vocabulary, ``source`` and ``trigger`` its fields."""
    if role == "UserPromptSubmit" or (  # a resumed Gemini session: was it compressed?
            role == "SessionStart" and source == "resume"
            and client in RELOAD_AFTER_COMPRESSION):
        return PROMPT_TAIL_BYTES
    if role == "PreCompact" and client in AUTO_PRE_COMPACT_EVERY_TURN and trigger == "auto":
        return None  # fired on every turn by such clients: nothing is saved (hook_events)
    if role in ("PreCompact", "SessionEnd") or (role == "SessionStart" and source == "compact"):
        return MAX_UPLOAD_BYTES
    return None


def tail_body(path: str, tail: int) -> dict[str, Any] | None:
    """The complete lines of the last ``tail`` bytes of the file at ``path`` (absolute), as
    the request's ``transcript`` member; None when it cannot be read."""
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            start = _line_start(handle, max(0, size - tail), size)
            return piece(handle, path, start, size, MAX_UPLOAD_BYTES)
    except OSError:
        return None  # no readable transcript (yet): the event goes without one


def open_regular(path: str) -> Any:
    """``path`` for reading, refused unless a regular file (a pipe would block the hook)."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise OSError(f"{path} is not a regular file")
    return os.fdopen(descriptor, "rb")


def _line_start(handle: Any, position: int, size: int) -> int:
    """The first line start at or after ``position`` (``size`` if none)."""
    if position == 0:
        return 0
    end = _line_end(handle, position - 1, size)
    return size if end is None else end


def _line_end(handle: Any, position: int, size: int) -> int | None:
    """Just after the first newline at or after ``position`` (None if none)."""
    handle.seek(position)
    while position < size:
        data = handle.read(min(_SCAN_BYTES, size - position))
        if not data:
            break
        newline = data.find(b"\n")
        if newline >= 0:
            return int(position + newline + 1)
        position += len(data)
    return None


def piece(handle: Any, path: str, start: int, size: int, limit: int) -> dict[str, Any]:
    """The complete lines from ``start``, at most ``limit`` bytes; a single line longer than
    ``MAX_UPLOAD_BYTES`` is left out (``skipped``), as the local reader leaves out one too
    long (a line longer than a smaller ``limit`` waits for the next event)."""
    handle.seek(start)
    data = handle.read(min(size - start, limit))
    last = data.rfind(b"\n")
    skipped = 0
    if last < 0 and len(data) == MAX_UPLOAD_BYTES:
        # Scanned for its end within bounds (the hook must answer in a second); a line
        # longer still is skipped in parts, its later parts read as malformed and skipped.
        scanned = min(size, start + LONG_LINE_SCAN)
        end = _line_end(handle, start + len(data), scanned)
        if end is not None or scanned < size:  # else: its end is not written yet
            skipped = (scanned if end is None else end) - start
    data = data[: last + 1]
    # base64.b64encode, without importing base64 (and struct behind it)
    return {"path": os.path.abspath(path), "offset": start, "size": size,
            "data": binascii.b2a_base64(data, newline=False).decode("ascii"),
            "skipped": skipped}
