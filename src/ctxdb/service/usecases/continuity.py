"""Continuity across sessions, crashes and clients: pick up where another session stopped.

Three parts (docs/hooks.md, "Picking up where another session stopped"):

- **settling**: a hook session that ended (SessionEnd) or crashed (silent past
  ``stale_after``) without a handoff of its last work gets one made after the fact from its
  transcript, with the parser PreCompact uses. Any hook or MCP call of the project notices
  such sessions with one indexed query (``sessions_needing_handoff``); only when it finds
  some are transcripts parsed (before the write transaction) and the handoffs stored. They
  are of kind ``end`` (the schema's kinds), ``working_set.made_after`` saying ``end`` or
  ``crash``; a key made of the instance and its last heartbeat keeps two settlers from
  storing one twice;
- **resume**: a new session (SessionStart ``startup``) is offered the latest handoff of
  another session of the project saved within ``resume_window``, those of its own worktree
  and branch first;
- **siblings**: and told which other sessions of the project are live, the task each holds
  and its latest handoff in one line.

The text is written by ``domain.resume``; this module reads and stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ctxdb.domain.agents import AgentSession, RepoIdentity
from ctxdb.domain.validation import check_identifier
from ctxdb.service.common import Service, audit, decode, decode_all
from ctxdb.service.usecases.instances import reap_stale
from ctxdb.settings import Settings
from ctxdb.storage import Tx
from ctxdb.transcripts.uploaded import UploadedTranscript

if TYPE_CHECKING:
    from ctxdb.domain.resume import StartupContext
    from ctxdb.service.usecases.handoffs import HandoffDraft

SETTLE_LIMIT = 5  # sessions given a handoff per call; the next call takes the rest
RESUME_CANDIDATES = 5
MAX_SIBLINGS = 20
HANDOFF_COLUMNS = ("handoff_id", "project_id", "instance_id", "generation", "kind", "summary",
                   "next_steps", "working_set", "tokens_before", "created_at")


class Settlement(NamedTuple):
    """A handoff to store for a session that stopped without one, drafted before the
    transaction from the session's transcript."""

    instance_id: str
    last_heartbeat: str
    made_after: str  # 'end' (it ended) or 'crash'
    draft: HandoffDraft

    @property
    def key(self) -> str:
        return f"after:{self.instance_id}:{self.last_heartbeat}"


def lookback(settings: Settings) -> float:
    """How far back an ended session still gets its handoff: as long as it may be offered."""
    return max(float(settings.resume_window), settings.stale_after)


def sessions_needing_handoff(tx: Tx, settings: Settings, project_id: str | None,
                             repo_key: str | None = None) -> list[dict[str, Any]]:
    """The project's hook sessions that stopped without a handoff (one indexed query); the
    project is ``project_id``, or (None) that of the repository ``repo_key`` (none: none)."""
    query, params = needing_handoff_read(settings, project_id, repo_key)
    return decode_all(tx.all(query, **params))


def needing_handoff_read(settings: Settings, project_id: str | None,
                         repo_key: str | None = None) -> tuple[str, dict[str, Any]]:
    """The read of :func:`sessions_needing_handoff`, for a unit to prefetch (Tx.prefetch)."""
    return "sessions_needing_handoff", {
        "project_id": project_id, "repo_key": repo_key, "stale_after": settings.stale_after,
        "lookback": lookback(settings), "limit": SETTLE_LIMIT}


def draft_settlements(rows: list[dict[str, Any]],
                      ending: AgentSession | None = None) -> list[Settlement]:
    """Parse the transcripts of ``rows`` (outside any transaction) into handoff drafts; the
    ``ending`` session's from the part of it its remote agent sent, if it did."""
    if not rows:
        return []
    # Imported here: the parser is needed only when a session stopped without a handoff.
    from dataclasses import replace

    from ctxdb.service.usecases.handoffs import draft_from_transcript

    settlements = []
    for row in rows:
        metadata = row.get("metadata") or {}
        path = metadata.get("transcript_path") if isinstance(metadata, dict) else None
        if ending is not None and ending.uploaded is not None \
                and row["session_id"] == ending.session_id and row["client"] == ending.client:
            path = ending.uploaded
        made_after = "end" if row["status"] == "completed" else "crash"
        draft = draft_from_transcript(path if isinstance(path, str | UploadedTranscript)
                                      else None, "end",
                                      client=row["client"])
        draft = replace(
            draft, working_set={**draft.working_set, "made_after": made_after,
                                "session_id": row["session_id"], "client": row["client"]})
        settlements.append(Settlement(str(row["instance_id"]), str(row["last_heartbeat"]),
                                      made_after, draft))
    return settlements


def settle_in_tx(tx: Tx, settings: Settings, project_id: str,
                 settlements: list[Settlement], actor: str) -> list[dict[str, Any]]:
    """Store the drafted handoffs of sessions that still need them; returns those stored.

    Silent sessions are marked crashed first (their task leases go back to the queue). A
    session heard from again since it was drafted (a resumed one) is left alone.
    """
    if not settlements:
        return []
    reap_stale(tx, settings, settings.actor, project_id)
    stored = []
    for settlement in settlements:
        instance = tx.one("get_instance", instance_id=settlement.instance_id)
        if instance is None or instance["status"] not in ("completed", "crashed") \
                or str(instance["last_heartbeat"]) != settlement.last_heartbeat:
            continue
        if tx.value("handoff_by_key", idempotency_key=settlement.key) is not None:
            continue  # another session's hook stored it first
        handoff = settlement.draft.insert(tx, decode(instance), settlement.key)
        audit(tx, actor, f"handoff.after_{settlement.made_after}", "handoff",
              handoff["handoff_id"], project_id, instance_id=settlement.instance_id,
              session_id=instance["session_id"])
        stored.append(handoff)
    return stored


def resume_handoff(tx: Tx, settings: Settings, project_id: str, instance_id: str,
                   repo: RepoIdentity | None) -> dict[str, Any] | None:
    """The handoff a new session of ``repo`` resumes from, or None (none in the window)."""
    if settings.resume_window <= 0:
        return None
    from ctxdb.domain.resume import has_substance

    query, params = resume_read(settings, project_id, instance_id, repo)
    rows = decode_all(tx.all(query, **params))
    return next((row for row in rows if has_substance(row)), None)


def startup_reads(settings: Settings, project_id: str, instance_id: str,
                  repo: RepoIdentity | None) -> list[tuple[str, dict[str, Any]]]:
    """The reads :func:`startup_context` makes, in its order, for a unit to prefetch
    (Tx.prefetch): the handoff to resume, the live siblings with their task leases."""
    reads = [resume_read(settings, project_id, instance_id, repo)] \
        if settings.resume_window > 0 else []
    return [*reads, _siblings_read(settings, project_id, instance_id)]


def resume_read(settings: Settings, project_id: str, instance_id: str,
                repo: RepoIdentity | None) -> tuple[str, dict[str, Any]]:
    return "resume_candidates", {
        "project_id": project_id, "window": settings.resume_window, "instance_id": instance_id,
        "worktree": repo.worktree if repo else None, "branch": repo.branch if repo else None,
        "limit": RESUME_CANDIDATES}


def _siblings_read(settings: Settings, project_id: str,
                   instance_id: str) -> tuple[str, dict[str, Any]]:
    return "live_siblings", {"project_id": project_id, "instance_id": instance_id,
                             "stale_after": settings.stale_after, "limit": MAX_SIBLINGS}


def live_siblings(tx: Tx, settings: Settings, project_id: str,
                  instance_id: str) -> list[dict[str, Any]]:
    """The project's live instances other than ``instance_id`` (heard from within
    ``stale_after``), each with the tasks it holds a lease on and its latest handoff; the
    most recently heard from first."""
    query, params = _siblings_read(settings, project_id, instance_id)
    siblings: dict[str, dict[str, Any]] = {}
    for row in decode_all(tx.all(query, **params)):  # a row per task leased (or one)
        task = {name: row.pop(f"t_{name}") for name in ("task_id", "title", "status")}
        sibling = siblings.get(row["instance_id"])
        if sibling is None:
            # The columns of latest_handoff_of_instance, read with the sibling (the h_* ones).
            handoff = {name: row.pop(f"h_{name}") for name in HANDOFF_COLUMNS}
            row["tasks"] = []
            row["handoff"] = decode(handoff) if handoff["handoff_id"] is not None else None
            sibling = siblings[row["instance_id"]] = row
        if task["task_id"] is not None:
            sibling["tasks"].append({**task, "lease_owner": row["instance_id"]})
    return list(siblings.values())


def startup_context(
    tx: Tx, settings: Settings, *, project_id: str, instance_id: str,
    repo: RepoIdentity | None, items: Sequence[Mapping[str, Any]], title: str, max_chars: int,
    critical_omitted: Sequence[Mapping[str, Any]] = (),
) -> tuple[StartupContext, dict[str, Any] | None]:
    """What a new session is given: the pack, where the work left off, the live siblings;
    and the handoff offered (None when it was not)."""
    from ctxdb.domain.resume import render_startup

    handoff = resume_handoff(tx, settings, project_id, instance_id, repo)
    siblings = live_siblings(tx, settings, project_id, instance_id) \
        if settings.resume_siblings else []
    rendered = render_startup(items, title=title, resume=handoff, siblings=siblings,
                              max_chars=max_chars, share=settings.resume_share,
                              critical_omitted=critical_omitted)
    return rendered, handoff if rendered.resume_shown else None


class ContinuityService(Service):
    def settle(self, project_id: str, actor: str | None = None,
               ending: AgentSession | None = None) -> list[dict[str, Any]]:
        """Give a handoff to each session of the project that stopped without one (see
        :func:`draft_settlements` for ``ending``).

        One read when there is nothing to do (the common case, run by every hook and MCP
        call); the handoffs stored otherwise.
        """
        check_identifier(project_id, "project_id")
        rows = self.storage.read(
            lambda tx: sessions_needing_handoff(tx, self.settings, project_id))
        return self._settle(project_id, rows, actor, ending)

    def settle_for_session(self, session: AgentSession,
                           actor: str | None = None) -> list[dict[str, Any]]:
        """:meth:`settle` for the project of a hook session (nothing if it is unknown)."""
        session = session.checked()

        def unit(tx: Tx) -> tuple[str | None, list[dict[str, Any]]]:
            row = tx.one("project_of_session", session_id=session.session_id,
                         client=session.client)
            if row is None:
                return None, []
            project = str(row["project_id"])
            return project, sessions_needing_handoff(tx, self.settings, project)

        project_id, rows = self.storage.read(unit)
        return self._settle(project_id, rows, actor) if project_id else []

    def _settle(self, project_id: str, rows: list[dict[str, Any]], actor: str | None,
                ending: AgentSession | None = None) -> list[dict[str, Any]]:
        if not rows:
            return []
        settlements = draft_settlements(rows, ending)
        return self.storage.write(lambda tx: settle_in_tx(
            tx, self.settings, project_id, settlements, actor or self.settings.actor))

    def siblings(self, project_id: str, instance_id: str | None = None) -> list[dict[str, Any]]:
        """The project's live instances other than ``instance_id`` (see :func:`live_siblings`),
        after settling the ones that stopped."""
        check_identifier(project_id, "project_id")
        if instance_id is not None:
            check_identifier(instance_id, "instance_id")
        self.settle(project_id)

        def unit(tx: Tx) -> list[dict[str, Any]]:
            from ctxdb.service.usecases.instances import require_instance
            from ctxdb.service.usecases.projects import require_project

            require_project(tx, project_id)
            if instance_id is not None:  # never another project's: it would be told apart
                require_instance(tx, instance_id, project_id)
            return live_siblings(tx, self.settings, project_id, instance_id or "")

        return self.storage.read(unit)

    def new_session(self, project_id: str, client: str,
                    repo: RepoIdentity | None = None) -> dict[str, Any]:
        """Exactly what a new ``client`` session of ``repo`` would be given now (SessionStart
        ``startup``), without registering one: ``text``, ``item_ids``, ``handoff``."""
        from ctxdb.domain.agents import CLIENTS, injection_max_chars
        from ctxdb.domain.render import injection_title
        from ctxdb.errors import ValidationError
        from ctxdb.service.usecases.packs import startup_pack
        from ctxdb.service.usecases.projects import require_project

        check_identifier(project_id, "project_id")
        if client not in CLIENTS:
            raise ValidationError(
                f"unknown client {client!r}: expected one of {', '.join(CLIENTS)}")
        repo = repo.checked() if repo is not None else None
        self.settle(project_id)

        def unit(tx: Tx) -> dict[str, Any]:
            require_project(tx, project_id)
            budget = int(self.settings.context_window * self.settings.pack_budget_fraction)
            pack = startup_pack(tx, project_id, budget, None)
            rendered, handoff = startup_context(
                tx, self.settings, project_id=project_id, instance_id="", repo=repo,
                items=pack.items,
                critical_omitted=pack.critical_omitted,
                title=injection_title(project_id, "startup"), max_chars=injection_max_chars(client))
            return {"project_id": project_id, "client": client, "text": rendered.text,
                    "item_ids": rendered.item_ids, "omitted": rendered.omitted,
                    "handoff": handoff, "siblings_named": rendered.siblings_shown}

        return self.storage.read(unit)
