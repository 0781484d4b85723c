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
from typing import TYPE_CHECKING, Any

from ctxdb.domain.client_rules import MAX_UPLOAD_BYTES
from ctxdb.domain.hook_events import HookEvent
from ctxdb.hooks.transcript_pieces import INGESTING as INGESTING
from ctxdb.hooks.transcript_pieces import PROMPT_TAIL_BYTES as PROMPT_TAIL_BYTES
from ctxdb.hooks.transcript_pieces import open_regular, piece, tail_body, tail_bytes

if TYPE_CHECKING:
    from pathlib import Path



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
    if tail is not None and not handoff_sent:
        return tail_body(path, tail)
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if handoff_sent:
                start = size
            else:
                start = 0 if state_dir is None else stored_offset(state_dir, url, path)
                start = 0 if start > size else start
            return piece(handle, path, start, size, MAX_UPLOAD_BYTES)
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
            with open_regular(file) as handle:
                size = os.fstat(handle.fileno()).st_size
                start = stored_offset(state_dir, url, file)
                start = 0 if start > size else start
                if start == size:
                    continue  # nothing new
                body = piece(handle, file, start, size, budget)
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
    return tail_bytes(event.event, event.client, event.text("source"), event.text("trigger"))
