"""One agent-client hook event, run against the use cases: what ``ctxdb hook`` does with it.

The local hook (``ctxdb.hooks.dispatch``) and the server's hook route
(``ctxdb.http.hook_routes``) both call :meth:`HookEventService.handle`, so an event does the
same thing on a database file and through a server. Each event is a few of the session
use cases in a row (each its own transaction); the text returned is what to inject into the
model's context (None: nothing).

The repository identity comes from the caller as a function: the local hook computes it
from the working directory (git) only when an event needs it; the server takes the one the
agent's machine sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ctxdb.domain.agents import (
    AUTO_PRE_COMPACT_EVERY_TURN,
    RELOAD_AFTER_COMPRESSION,
    RepoIdentity,
)
from ctxdb.domain.hook_events import HookEvent
from ctxdb.domain.recall import recall_terms
from ctxdb.errors import InstanceNotFoundError

if TYPE_CHECKING:
    from ctxdb.service import Ctxdb

RepoOf = Callable[[], RepoIdentity]


class HookEventService:
    """The hook events over the facade's services (each made on first use, so that a prompt
    imports no transcript reader)."""

    def __init__(self, db: Ctxdb) -> None:
        self.db = db

    def handle(self, event: HookEvent, repo: RepoOf, within: str | None = None) -> str | None:
        """Run ``event`` (one of ``EVENTS``; any other does nothing); the text to inject.

        ``within``: the one project the caller may touch (a project's token on a server),
        judged by a session start inside its own transaction; the caller judges the other
        events (``http.hook_routes.check_reach``)."""
        if event.event == "SessionStart":
            return _session_start(self.db, event, repo, within)
        handler = _HANDLERS.get(event.event)
        return None if handler is None else handler(self.db, event, repo)


def _session_start(db: Ctxdb, event: HookEvent, repo: RepoOf,
                   within: str | None = None) -> str | None:
    source = event.text("source") or "startup"
    if source == "resume" and event.client in RELOAD_AFTER_COMPRESSION:
        # Resumed after a compression nothing answered yet: the reload holds all a resume
        # would inject (the pack), and the handoff; answering it here answers it once.
        reloaded = _reload(db, event, repo)
        if reloaded is not None:
            return reloaded
    tokens = event.fields.get("context_tokens")
    result = db.sessions.start(
        event.session, source, repo(),
        context_tokens=tokens if isinstance(tokens, int) and not isinstance(tokens, bool)
        else None, within=within,
    )
    text: str = result["text"]
    return text


def _prompt(db: Ctxdb, event: HookEvent, repo: RepoOf) -> str | None:
    try:
        instance: dict[str, Any] | None = db.sessions.prompt(event.session)
    except InstanceNotFoundError:  # installed mid-session: register it now
        instance = db.sessions.prompt(event.session, repo())
    if event.client in RELOAD_AFTER_COMPRESSION:
        instance = None  # a reload may have moved its generation: the recall reads it
        reloaded = _reload(db, event, repo)
        if reloaded is not None:
            return reloaded  # the pack and the handoff; recall waits for the next prompt
    prompt = event.text("prompt") or ""
    if not db.settings.recall or not recall_terms(prompt):
        return None  # a reply ("yes", "go on") or recall off: the search is not imported
    # The instance the prompt's transaction left: the recall's search does not read it again.
    injection = db.recall.for_prompt(event.session, prompt, instance=instance)
    return None if injection is None else str(injection["text"])


def _reload(db: Ctxdb, event: HookEvent, repo: RepoOf) -> str | None:
    """The context put back after a compression the client announced with no SessionStart."""
    from ctxdb.service.usecases.compression_reload import reload_after_compression

    return reload_after_compression(db, event.session, repo, event.name)


def _pre_compact(db: Ctxdb, event: HookEvent, repo: RepoOf) -> str | None:
    if event.client in AUTO_PRE_COMPACT_EVERY_TURN and event.text("trigger") == "auto":
        # Fired on every turn, compression or not: a handoff per turn would bury the real
        # ones. A compression that did happen is read from the transcript on the next
        # prompt, which saves its handoff then (service.usecases.compression_reload).
        return None
    db.sessions.save_before_compaction(
        event.session, event.text("trigger"), event.text("custom_instructions"), repo())
    db.continuity.settle_for_session(event.session)
    return None  # PreCompact cannot add context: the reload is SessionStart(compact)


def _post_compact(db: Ctxdb, event: HookEvent, repo: RepoOf) -> str | None:
    _ingest(db, event, repo)
    summary = event.text("compact_summary")
    if summary:
        db.sessions.record_compact_summary(event.session, summary)
    return None


def _ingest(db: Ctxdb, event: HookEvent, repo: RepoOf) -> str | None:
    if event.session.uploaded is not None:  # a remote agent's bytes (http/hook_routes.py)
        db.transcripts.ingest_uploaded(event.session.uploaded,
                                       session_id=event.session.session_id,
                                       client=event.client)
        for subagent in event.session.uploaded_subagents:
            db.transcripts.ingest_uploaded(subagent, session_id=event.session.session_id,
                                           client=event.client, subagent=True)
    elif event.session.transcript_path:
        db.transcripts.ingest(event.session.transcript_path,
                              session_id=event.session.session_id, client=event.client)
    # Sessions of the project that stopped without a handoff get one (crash detection does
    # not wait for a command); one indexed read when there are none.
    db.continuity.settle_for_session(event.session)
    return None


def _session_end(db: Ctxdb, event: HookEvent, repo: RepoOf) -> str | None:
    db.sessions.end(event.session, event.text("reason"))
    return None


_HANDLERS: dict[str, Callable[[Ctxdb, HookEvent, RepoOf], str | None]] = {
    "SessionStart": _session_start,
    "UserPromptSubmit": _prompt,
    "PreCompact": _pre_compact,
    "PostCompact": _post_compact,
    "Stop": _ingest,
    "SubagentStop": _ingest,
    "SessionEnd": _session_end,
}
