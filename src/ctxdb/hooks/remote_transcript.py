"""The part of its transcript a remote agent's hook sends with an event.

The transcript is a file of the agent's machine; the server reads what the event needs from
the bytes sent with it (``ctxdb.transcripts.uploaded``), as a local hook reads the file:

- Stop, SubagentStop and PostCompact ingest the transcript: they send the bytes from the
  offset the server last answered (``transcript_offset``), at most ``MAX_UPLOAD_BYTES`` of
  complete lines; a longer backlog goes with the next events. The offset answered is kept in
  a small file of the agent's machine, one per server and transcript. Losing it costs a
  re-send from the start, which the server reads once (its offset only moves forward, by
  compare-and-set); a server that is behind the offset sent answers its own, and the next
  event sends from there. So no byte is lost or counted twice.
- UserPromptSubmit sends the file's last ``PROMPT_TAIL_BYTES`` (the context in use is the
  latest response's); PreCompact, SessionEnd and SessionStart after a compaction send its
  last ``MAX_UPLOAD_BYTES`` (the handoff: the work since the last compaction).

Standard library only, like the rest of the remote hook's path. A transcript that cannot be
read sends nothing: the event goes on without it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from ctxdb.domain.hook_events import HookEvent
from ctxdb.transcripts.uploaded import MAX_UPLOAD_BYTES

INGESTING = frozenset({"Stop", "SubagentStop", "PostCompact"})
PROMPT_TAIL_BYTES = 256 * 1024
LONG_LINE_SCAN = 16 * 1024 * 1024
_SCAN_BYTES = 64 * 1024


def transcript_body(event: HookEvent, url: str, state_dir: Path) -> dict[str, Any] | None:
    """The ``transcript`` member of the event's request (None: the event needs none)."""
    path = event.session.transcript_path
    tail = _tail_bytes(event)
    if not path or (tail is None and event.event not in INGESTING):
        return None
    try:
        with _open(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if tail is None:
                start = stored_offset(state_dir, url, path)
                start = 0 if start > size else start
            else:
                start = _line_start(handle, max(0, size - tail), size)
            return _piece(handle, path, start, size)
    except OSError:
        return None  # no readable transcript (yet): the event goes without one


def note_offset(state_dir: Path, url: str, path: str, offset: object) -> None:
    """Keep the offset the server answered for ``path`` (best effort: a lost one is a
    re-send from the start, read once)."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        return
    file = _state_file(state_dir, url, path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_suffix(f".{os.getpid()}")
        partial.write_text(str(offset), encoding="ascii")
        os.replace(partial, file)
    except OSError:
        pass


def stored_offset(state_dir: Path, url: str, path: str) -> int:
    try:
        text = _state_file(state_dir, url, path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return 0
    return int(text) if text.isdigit() else 0


def _state_file(state_dir: Path, url: str, path: str) -> Path:
    digest = hashlib.sha256(f"{url}\n{path}".encode("utf-8", "surrogateescape")).hexdigest()
    return state_dir / "remote-transcripts" / digest[:32]


def _tail_bytes(event: HookEvent) -> int | None:
    """How much of the file's end the event needs (None: the new bytes, or nothing)."""
    if event.event == "UserPromptSubmit":
        return PROMPT_TAIL_BYTES
    if event.event in ("PreCompact", "SessionEnd") or (
            event.event == "SessionStart" and event.text("source") == "compact"):
        return MAX_UPLOAD_BYTES
    return None


def _open(path: str) -> Any:
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


def _piece(handle: Any, path: str, start: int, size: int) -> dict[str, Any]:
    """The complete lines from ``start``, at most ``MAX_UPLOAD_BYTES``; a single line longer
    than that is left out (``skipped``), as the local reader leaves out one too long."""
    handle.seek(start)
    data = handle.read(min(size - start, MAX_UPLOAD_BYTES))
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
    return {"path": os.path.abspath(path), "offset": start, "size": size,
            "data": base64.b64encode(data).decode("ascii"), "skipped": skipped}
