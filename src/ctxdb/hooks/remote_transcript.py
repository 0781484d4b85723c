"""The part of its transcript a remote agent's hook sends with an event.

The transcript is a file of the agent's machine; the server reads what the event needs from
the bytes sent with it (``ctxdb.transcripts.uploaded``), as a local hook reads the file:

- Stop, SubagentStop and PostCompact ingest the transcript: they send the bytes from the
  offset the server last answered (``transcript_offset``), at most ``MAX_UPLOAD_BYTES`` of
  complete lines, and in what is left of it, the new bytes of the session's subagent
  transcripts (``<session>/subagents/*.jsonl``, which local ingestion reads with it); a
  longer backlog goes with the next events. The offset answered is kept in
  a small file of the agent's machine, one per server and transcript. Losing it costs a
  re-send from the start, which the server reads once (its offset only moves forward, by
  compare-and-set); a server that is behind the offset sent answers its own, and the next
  event sends from there. So no byte is lost or counted twice.
- UserPromptSubmit sends the file's last ``PROMPT_TAIL_BYTES`` (the context in use is the
  latest response's, and a Gemini compression shows there), and so does a Gemini
  SessionStart(resume) (``service.usecases.compression_reload``).
- PreCompact, SessionEnd and SessionStart after a compaction (the events that may save a
  handoff: the work since the last compaction) send the handoff itself, read here from the
  whole file (up to the local reader's 32 MiB) and the subagents' files with the code a
  local hook runs (:func:`handoff_body`), so it is the local hook's handoff; the transcript
  then goes as its name only (no bytes). When the file cannot be parsed here, its last
  ``MAX_UPLOAD_BYTES`` go instead, and the server reads the handoff from them.

Standard library only, like the rest of the remote hook's path; a prompt imports neither
:mod:`dataclasses` nor :mod:`hashlib` (each costs a new process more than its own work). A
transcript that cannot be read sends nothing: the event goes on without it.
"""

from __future__ import annotations

import base64
import os
import stat
from typing import TYPE_CHECKING, Any

from ctxdb.domain.agents import AUTO_PRE_COMPACT_EVERY_TURN, RELOAD_AFTER_COMPRESSION
from ctxdb.domain.hook_events import HookEvent
from ctxdb.transcripts.uploaded import MAX_UPLOAD_BYTES

if TYPE_CHECKING:
    from pathlib import Path

INGESTING = frozenset({"Stop", "SubagentStop", "PostCompact"})
PROMPT_TAIL_BYTES = 256 * 1024
LONG_LINE_SCAN = 16 * 1024 * 1024
_SCAN_BYTES = 64 * 1024


def saves_handoff(event: HookEvent) -> bool:
    """Whether the event may save a handoff of the transcript (then :func:`handoff_body`)."""
    return bool(event.session.transcript_path) and _tail_bytes(event) == MAX_UPLOAD_BYTES


def handoff_body(event: HookEvent) -> dict[str, Any] | None:
    """The ``handoff`` member of the request: the handoff of the session's transcript since
    its last compaction, as a local hook reads it (subagents' edits included); None when the
    file cannot be read (the event then sends the file's last bytes)."""
    # Imported here: only the events that save a handoff parse the transcript.
    import dataclasses

    from ctxdb.errors import CtxdbError
    from ctxdb.transcripts.handoff import handoff_since_last_compaction

    path = os.path.abspath(str(event.session.transcript_path))
    try:
        handoff = handoff_since_last_compaction(path, client=event.client)
    except (CtxdbError, OSError, ValueError):
        return None
    return dataclasses.asdict(handoff)


def transcript_body(event: HookEvent, url: str, state_dir: Path | None,
                    handoff_sent: bool = False) -> dict[str, Any] | None:
    """The ``transcript`` member of the event's request (None: the event needs none); with
    ``handoff_sent``, its name and size only. ``state_dir`` keeps the offsets an ingesting
    event sends from (None: none kept, the file is sent from its start)."""
    tail = _tail_bytes(event)
    if not event.session.transcript_path or (tail is None and event.event not in INGESTING):
        return None
    path = os.path.abspath(event.session.transcript_path)
    try:
        with _open(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if handoff_sent:
                start = size
            elif tail is None:
                start = 0 if state_dir is None else stored_offset(state_dir, url, path)
                start = 0 if start > size else start
            else:
                start = _line_start(handle, max(0, size - tail), size)
            return _piece(handle, path, start, size, MAX_UPLOAD_BYTES)
    except OSError:
        return None  # no readable transcript (yet): the event goes without one


def subagent_bodies(event: HookEvent, url: str, state_dir: Path,
                    main: dict[str, Any]) -> list[dict[str, Any]]:
    """The new bytes of the session's subagent transcripts (``<session>/subagents/*.jsonl``,
    which local ingestion reads with the session's), within what the ``main`` transcript's
    body left of ``MAX_UPLOAD_BYTES``."""
    budget = MAX_UPLOAD_BYTES - len(base64.b64decode(main["data"]))
    if not event.session.transcript_path or event.event not in INGESTING:
        return []
    from pathlib import Path  # here: the other events need no Path

    folder = Path(os.path.abspath(event.session.transcript_path)).with_suffix("") / "subagents"
    try:
        files = sorted(str(file) for file in folder.glob("*.jsonl"))
    except OSError:
        return []
    bodies = []
    for file in files:
        if budget <= 0:
            break
        try:
            with _open(file) as handle:
                size = os.fstat(handle.fileno()).st_size
                start = stored_offset(state_dir, url, file)
                start = 0 if start > size else start
                if start == size:
                    continue  # nothing new
                body = _piece(handle, file, start, size, budget)
        except OSError:
            continue
        sent = len(base64.b64decode(body["data"]))
        if sent or body["skipped"]:
            bodies.append(body)
            budget -= sent
    return bodies


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
    import hashlib  # here: OpenSSL's load costs every event, and only ingesting ones ask
    from pathlib import Path

    digest = hashlib.sha256(f"{url}\n{path}".encode("utf-8", "surrogateescape")).hexdigest()
    return Path(state_dir, "remote-transcripts", digest[:32])


def _tail_bytes(event: HookEvent) -> int | None:
    """How much of the file's end the event needs (None: the new bytes, or nothing)."""
    if event.event == "UserPromptSubmit" or (  # a resumed Gemini session: was it compressed?
            event.event == "SessionStart" and event.text("source") == "resume"
            and event.client in RELOAD_AFTER_COMPRESSION):
        return PROMPT_TAIL_BYTES
    if event.event == "PreCompact" and event.client in AUTO_PRE_COMPACT_EVERY_TURN \
            and event.text("trigger") == "auto":
        return None  # fired on every turn by such clients: nothing is saved (hook_events)
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


def _piece(handle: Any, path: str, start: int, size: int, limit: int) -> dict[str, Any]:
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
    return {"path": os.path.abspath(path), "offset": start, "size": size,
            "data": base64.b64encode(data).decode("ascii"), "skipped": skipped}
