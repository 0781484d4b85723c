"""The context put back after a client compressed its chat without a SessionStart: Gemini CLI.

Claude Code and Codex follow a compaction with SessionStart(compact), and ctxdb answers it
with the saved handoff and the pack. Gemini CLI (0.61) does not: its PreCompress fires on
every turn before it decides whether to compress (so it says nothing), it cannot add context,
and no SessionStart follows. What does show is the compression itself, in Gemini's transcript:
the message list starts over from the summary (``ctxdb.transcripts.gemini``). So the next
BeforeAgent (or a SessionStart(resume), whose injection this one contains) reads the end of
the transcript, and when its latest compaction boundary has not been answered yet, does what
SessionStart(compact) does: a handoff of the work before the compaction (the one a manual
``/compress`` saved in PreCompress, if any), a new generation, and the reload pack with the
CRITICAL items, recorded as an injection of source ``compact``.

Once per compression: the injection's idempotency key is derived from the boundary (the id of
Gemini's summary message, which rewrites of the list and resumed sessions keep), so a later
prompt finds it recorded and adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ctxdb.domain.agents import AgentSession, RepoIdentity
from ctxdb.errors import CtxdbError
from ctxdb.transcripts.tail import tail_chunk

if TYPE_CHECKING:
    from ctxdb.service import Ctxdb

KEY_PREFIX = "reload-after-compaction-"


def reload_key(session: AgentSession, boundary: str) -> str:
    """The idempotency key of the reload after one compaction of one session."""
    import hashlib  # only once a compaction shows: every Gemini prompt looks for one

    digest = hashlib.sha256(
        f"{session.client}\0{session.session_id}\0{boundary}".encode()).hexdigest()
    return KEY_PREFIX + digest[:32]


def reload_after_compression(db: Ctxdb, session: AgentSession,
                             repo: Callable[[], RepoIdentity], hook_event: str) -> str | None:
    """The text to inject when the session's transcript ends after a compaction that has not
    been answered yet (None: nothing to put back)."""
    session = session.checked()
    path = session.transcript
    if path is None:
        return None
    try:
        chunk = tail_chunk(path, session.client)
    except (OSError, CtxdbError):
        return None  # no transcript (yet), or no readable one: nothing is known to be lost
    if not chunk.compactions or chunk.compactions[-1].uuid is None:
        return None
    key = reload_key(session, chunk.compactions[-1].uuid)
    if db.storage.read(lambda tx: tx.one("injection_by_key", idempotency_key=key)):
        return None  # this compaction was answered already
    from ctxdb.service.usecases.handoffs import draft_from_transcript

    draft = draft_from_transcript(path, "compact", trigger="auto", client=session.client,
                                  before_latest_compaction=True)
    result = db.sessions.start(session, "compact", repo(), context_tokens=chunk.context_tokens,
                               hook_event=hook_event, key=key, draft=draft)
    return str(result["text"])
