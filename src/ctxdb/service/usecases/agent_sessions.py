"""Agent sessions as the client hooks see them: start (startup, resume, clear, compact),
prompts, the save before a compaction, its summary, and the end.

Each method is one use case: one write transaction with its audit row. Transcripts are parsed
(pure code, ``ctxdb.transcripts``) before the transaction starts, so no lock is held while a
file is read. Every text handed to an agent is recorded in ``injections`` (which items, which
instance and generation, which handoff, the text itself) for audit, and its idempotency key
makes a unit retried after a commit return the recorded result instead of applying twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ctxdb.domain.agents import (
    RESUME_DROPS_INJECTIONS,
    AgentSession,
    RepoIdentity,
    check_source,
)
from ctxdb.domain.ids import new_idempotency_key
from ctxdb.domain.validation import check_text
from ctxdb.errors import InstanceNotFoundError
from ctxdb.service.common import audit, decode
from ctxdb.service.usecases.agent_session_reads import AgentSessionReads
from ctxdb.service.usecases.agent_session_rows import (
    SESSION_START,
    capped_usage,
    context_tokens,
    fresh_compact_handoff,
    injected_ids,
    injection_view,
    previous_session,
    set_usage,
)
from ctxdb.service.usecases.continuity import (
    ContinuityService,
    Settlement,
    draft_settlements,
    sessions_needing_handoff,
    settle_in_tx,
)
from ctxdb.service.usecases.instances import InstanceService, instance_of_project, require_instance
from ctxdb.service.usecases.session_start import (
    Shown,
    StartRequest,
    Unsettled,
    opening_reads,
    own_instance,
    reached_rows,
    record_start,
    register,
    session_instance,
    shown_on_reload,
    shown_on_startup,
    startup_reads,
    startup_reads_ahead,
)
from ctxdb.settings import Settings
from ctxdb.storage import Storage, Tx

if TYPE_CHECKING:
    from ctxdb.domain.packing import Pack
    from ctxdb.service.usecases.handoffs import HandoffDraft

MAX_COMPACT_SUMMARY = 100_000
# The SessionEnd reason of a /clear (Claude Code), after which SessionStart "clear" follows.
CLEARED = "clear"


def project_for_repo(tx: Tx, repo: RepoIdentity, settings: Settings,
                     actor: str) -> dict[str, Any]:
    """``repo_projects.project_for_repo``, imported only when it is needed: a prompt of a
    known session, on every turn, does without it."""
    from ctxdb.service.usecases.repo_projects import project_for_repo as of_repo

    return of_repo(tx, repo, settings, actor)


class AgentSessionService(AgentSessionReads):
    def __init__(self, storage: Storage, settings: Settings, instances: InstanceService) -> None:
        self.storage = storage
        self.settings = settings
        self.instances = instances

    # --- projects of repositories ----------------------------------------------------------

    def resolve_project(self, repo: RepoIdentity, actor: str | None = None) -> dict[str, Any]:
        """The project of a repository (by ``repo_key``), created on first use."""
        repo = repo.checked()
        return self.storage.write(
            lambda tx: project_for_repo(tx, repo, self.settings, actor or self.settings.actor))

    # --- SessionStart ----------------------------------------------------------------------

    def start(
        self, session: AgentSession, source: str, repo: RepoIdentity, *,
        context_tokens: int | None = None, actor: str | None = None,
        hook_event: str = SESSION_START, key: str | None = None,
        draft: HandoffDraft | None = None, within: str | None = None,
    ) -> dict[str, Any]:
        """Register or revive the session's instance and build what to inject.

        startup: the pack, then where the project's work left off (the latest handoff of
        another session, see ``service.continuity``) and the live sibling sessions; sessions
        that stopped without a handoff get theirs first. resume: only packed items not yet
        injected in this generation (all of them for a client whose resumed history drops
        the injected context, ``RESUME_DROPS_INJECTIONS``). clear: a new generation; the
        previous session's handoff, then the pack. compact: a new generation; the handoff
        saved before the compaction (else ``draft``), then the pack. ``hook_event`` and
        ``key`` (the idempotency key) are recorded with the injection. ``within``: the one
        project the caller may touch, judged in the start's unit (refuse_out_of_reach).
        """
        session, source, repo = session.checked(), check_source(source), repo.checked()
        actor = actor or self.settings.actor
        request = StartRequest(session, source, repo, actor,
                               draft or self._draft_for(session, source, repo),
                               key or new_idempotency_key(), context_tokens, hook_event,
                               within)
        # A startup settles the project's sessions that stopped without a handoff. Whether
        # there are any is read in the start's own transaction (None: not read yet): almost
        # always there are none, and a transaction of its own for that read cost a start
        # three round trips more. When there are, their transcripts are parsed outside any
        # transaction, and the start runs again with the drafts (see Unsettled).
        settlements: list[Settlement] | None = None if source == "startup" else []
        try:
            return self.storage.write(lambda tx: self._started(tx, request, settlements))
        except Unsettled as unsettled:
            drafted = draft_settlements(unsettled.rows)
            return self.storage.write(lambda tx: self._started(tx, request, drafted))

    def _started(self, tx: Tx, request: StartRequest,
                 settlements: list[Settlement] | None) -> dict[str, Any]:
        """The start's unit: the instance registered or revived, its injection recorded."""
        session, source, repo, actor = request.session, request.source, request.repo, \
            request.actor
        # A startup's first statement, on its first run: its later reads too, where known.
        ahead = startup_reads_ahead(self.settings, request) if settlements is None else []
        tx.prefetch([*opening_reads(self.settings, request, settlements is None), *ahead])
        done = tx.one("injection_by_key", idempotency_key=request.key)
        if done is not None:  # a retry of this unit after its first attempt committed
            return injection_view(done)
        project_row, own = reached_rows(tx, request)  # refused here if out of reach
        if settlements is None:
            stopped = sessions_needing_handoff(tx, self.settings, None, repo.repo_key)
            if stopped:
                raise Unsettled(stopped)  # rolled back: nothing was written yet
        project = decode(project_row) if project_row is not None \
            else project_for_repo(tx, repo, self.settings, actor)
        instance, joined, new = self._instance(tx, session, project, repo, actor, own)
        if settlements:
            settle_in_tx(tx, self.settings, project["project_id"], settlements, actor)
        if new is not None and source != "startup":  # what follows reads its row
            register(tx, new, actor)
            new = None
        handoff = None
        if source in ("clear", "compact"):
            handoff = self._new_generation(tx, session, source, instance, request.draft, repo)
            instance = require_instance(tx, instance["instance_id"])
        # The reads ahead are still to be taken only if no statement came since (a revival).
        shown = self._shown(tx, request, instance, handoff, ahead if new is not None else [])
        if new is not None:  # a new session's startup: registered once its reads are made
            register(tx, new, actor)
        if request.context_tokens is not None:
            set_usage(tx, instance, request.context_tokens)
        if joined:  # late: the project's registrations wait for this one from here on
            self.instances.make_room(tx, instance["project_id"])
        # Last (sent with the COMMIT where it can be) unless a handoff was stored before.
        return record_start(tx, request, instance, shown,
                            last=source in ("startup", "resume") and not settlements)

    def _shown(self, tx: Tx, request: StartRequest, instance: dict[str, Any],
               handoff: dict[str, Any] | None, ahead: list[tuple[str, dict[str, Any]]]
               ) -> Shown:
        """The start's pack rendered as the instance's injection (``ahead``: the reads
        prefetched with the opening ones, see startup_reads_ahead)."""
        session, source = request.session, request.source
        reads = startup_reads(self.settings, instance["project_id"], instance["phase_id"],
                              instance["instance_id"], request.repo)
        if source == "startup" and reads != ahead:  # the pack's and text's reads: one trip
            tx.prefetch(reads)
        pack = self._pack(tx, instance)
        # Not copied: the HIGH, MEDIUM and LOW items read their content when shown.
        items: Sequence[Mapping[str, Any]] = pack.items
        if source == "resume" and session.client not in RESUME_DROPS_INJECTIONS:
            seen = injected_ids(tx, instance)
            items = [item for item in items if item["item_id"] not in seen]
        if source == "startup":
            return shown_on_startup(tx, self.settings, request, instance, items,
                                    pack.critical_omitted)
        return shown_on_reload(request, instance, items, handoff, pack.critical_omitted)

    def _draft_for(self, session: AgentSession, source: str,
                   repo: RepoIdentity) -> HandoffDraft | None:
        """A handoff to fall back on, parsed before the transaction (None when not needed)."""
        if source not in ("compact", "clear"):
            return None
        # Imported here: the handoff extraction is only needed by these sources, and every
        # hook process (one per prompt) would otherwise pay for importing it.
        from ctxdb.service.usecases.handoffs import draft_from_transcript

        if source == "compact":
            fresh = self.storage.read(lambda tx: fresh_compact_handoff(tx, session))
            return None if fresh else draft_from_transcript(session.transcript, "compact",
                                                            client=session.client)
        if source == "clear":
            previous = self.storage.read(lambda tx: previous_session(tx, session, repo))
            if previous is not None and previous["handoff"] is None:
                return draft_from_transcript(previous["transcript_path"], "clear",
                                             client=session.client)
        return None

    def _instance(self, tx: Tx, session: AgentSession, project: Mapping[str, Any],
                  repo: RepoIdentity, actor: str, row: dict[str, Any] | None
                  ) -> tuple[dict[str, Any], bool, dict[str, Any] | None]:
        return session_instance(tx, self.instances, session, project, repo, actor, row)

    def _new_generation(self, tx: Tx, session: AgentSession, source: str,
                        instance: dict[str, Any], draft: HandoffDraft | None,
                        repo: RepoIdentity) -> dict[str, Any] | None:
        """Start the instance's next generation; return the handoff to inject first."""
        if source == "compact":
            handoff = fresh_compact_handoff(tx, session)
            if handoff is None and draft is not None:
                handoff = draft.insert(tx, instance, new_idempotency_key())
            tx.value("clear_token_usage", instance_id=instance["instance_id"])
            return handoff
        previous = previous_session(tx, session, repo)
        if previous is None:  # a /clear that kept its session id: the same instance goes on
            handoff = decode(tx.one("latest_handoff_of_instance",
                                    instance_id=instance["instance_id"]) or {}) or None
            tx.value("clear_token_usage", instance_id=instance["instance_id"])
            return handoff
        tx.execute("set_instance_generation", instance_id=instance["instance_id"],
                   generation=max(instance["generation"], previous["generation"] + 1))
        handoff = previous["handoff"]
        if handoff is None and draft is not None:
            owner = require_instance(tx, previous["instance_id"])
            handoff = draft.insert(tx, owner, new_idempotency_key())
        return handoff

    def _pack(self, tx: Tx, instance: dict[str, Any]) -> Pack:
        """The reload pack of ``tokens.clear_and_reload``: it never fails; CRITICAL items over
        the budget are left out and named (the injected text says how to fetch them)."""
        budget = int(instance["context_window"] * self.settings.pack_budget_fraction)
        from ctxdb.service.usecases.packs import startup_pack  # a start's, not a prompt's

        return startup_pack(tx, instance["project_id"], budget, instance["phase_id"])

    # --- UserPromptSubmit ------------------------------------------------------------------

    def prompt(self, session: AgentSession, repo: RepoIdentity | None = None,
               actor: str | None = None) -> dict[str, Any]:
        """Heartbeat and context in use (from the transcript's latest main-chain response).

        Without ``repo`` an unknown session is an ``InstanceNotFoundError``; the caller may
        then compute the repository identity and call again to register it. Sessions of the
        project that stopped without a handoff (ended, or silent past ``stale_after``) are
        noticed in the same transaction and given one afterwards (``service.continuity``).
        """
        session = session.checked()
        repo = repo.checked() if repo is not None else None
        tokens = context_tokens(session.transcript, session.client)

        def unit(tx: Tx) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            instance = self._known_instance(tx, session, repo, actor)
            # A prompt proves the session alive, whatever was recorded (crashed, ended).
            revived = instance_of_project(tx.one(
                "revive_for_prompt", instance_id=instance["instance_id"],
                tokens=None if tokens is None else capped_usage(instance, tokens)),
                instance["instance_id"])
            audit(tx, actor or instance["instance_id"], "session.prompt", "instance",
                  instance["instance_id"], instance["project_id"], context_tokens=tokens)
            stopped = sessions_needing_handoff(tx, self.settings, instance["project_id"])
            return revived, stopped

        instance, stopped = self.storage.write(unit)
        if stopped:
            ContinuityService(self.storage, self.settings).settle(instance["project_id"])
        return instance

    # --- PreCompact and PostCompact --------------------------------------------------------

    def save_before_compaction(
        self, session: AgentSession, trigger: str | None, custom_instructions: str | None,
        repo: RepoIdentity | None = None, actor: str | None = None,
    ) -> dict[str, Any]:
        """The save: a handoff of the transcript since the last compaction (kind 'compact')."""
        session = session.checked()
        repo = repo.checked() if repo is not None else None
        if trigger is not None:
            check_text(trigger, "trigger", 100)
        if custom_instructions is not None:
            check_text(custom_instructions, "custom_instructions", 10_000)
        from ctxdb.service.usecases.handoffs import draft_from_transcript

        draft = draft_from_transcript(session.transcript, "compact", trigger=trigger,
                                      instructions=custom_instructions, client=session.client)
        key = new_idempotency_key()

        def unit(tx: Tx) -> dict[str, Any]:
            done = tx.value("handoff_by_key", idempotency_key=key)
            if done is not None:
                return decode(tx.one("get_handoff", handoff_id=done) or {})
            instance = self._known_instance(tx, session, repo, actor)
            handoff = draft.insert(tx, instance, key)
            audit(tx, actor or instance["instance_id"], "session.precompact", "instance",
                  instance["instance_id"], instance["project_id"],
                  handoff_id=handoff["handoff_id"], trigger=trigger)
            return handoff

        return self.storage.write(unit)

    def record_compact_summary(self, session: AgentSession, summary: str,
                               actor: str | None = None) -> int:
        """Store the client's summary on the session's latest compaction boundary.

        Returns the number of boundaries updated: 0 when the boundary is not ingested yet
        or already has its summary (ingestion fills it from the transcript too).
        """
        session = session.checked()
        summary = check_text(summary, "compact_summary", MAX_COMPACT_SUMMARY)

        def unit(tx: Tx) -> int:
            changed = tx.execute("summarize_latest_compaction", session_id=session.session_id,
                                 summary=summary)
            row = tx.one("instance_of_session", session_id=session.session_id,
                         client=session.client)
            if changed and row is not None:
                instance = require_instance(tx, row["instance_id"])
                audit(tx, actor or instance["instance_id"], "session.compact_summary",
                      "instance", instance["instance_id"], instance["project_id"],
                      characters=len(summary))
            return changed

        return self.storage.write(unit)

    # --- SessionEnd ------------------------------------------------------------------------

    def end(self, session: AgentSession, reason: str | None = None,
            actor: str | None = None) -> dict[str, Any] | None:
        """Mark the session's instance completed (one short write; None if unknown or ended),
        then give it its handoff after the fact if its last work has none.

        That handoff is made here (unless the session was cleared: see below), not left to the
        next hook of the project: the transcript
        is there now, and a client may remove or rewrite its session files afterwards (Gemini
        CLI was seen removing a resumed session's file as the next session started). It is
        the same settling the next hook would do (``service.usecases.continuity``), so when
        the hook's deadline stops it, the next hook still does it.
        """
        session = session.checked()
        if reason is not None:
            check_text(reason, "reason", 100)

        def unit(tx: Tx) -> dict[str, Any] | None:
            row = tx.one("end_session", session_id=session.session_id, client=session.client)
            if row is None:
                return None
            audit(tx, actor or row["instance_id"], "session.end", "instance",
                  row["instance_id"], row["project_id"], reason=reason)
            return row

        row = self.storage.write(unit)
        # After /clear (reason 'clear') the next SessionStart makes the old session's handoff
        # itself, as the first thing of the new one (kind 'clear').
        if row is not None and reason != CLEARED:
            ContinuityService(self.storage, self.settings).settle(row["project_id"], actor,
                                                                  session)
        return row

    # --- reading ---------------------------------------------------------------------------

    def _known_instance(self, tx: Tx, session: AgentSession, repo: RepoIdentity | None,
                        actor: str | None) -> dict[str, Any]:
        row = tx.one("session_instance", session_id=session.session_id, client=session.client)
        if row is not None:
            return instance_of_project(row, row["instance_id"])
        if repo is None:
            raise InstanceNotFoundError(
                f"no instance for {session.client} session {session.session_id!r}")
        project = project_for_repo(tx, repo, self.settings, actor or self.settings.actor)
        instance, joined, new = self._instance(tx, session, project, repo,
                                               actor or self.settings.actor,
                                               own_instance(tx, session))
        if new is not None:
            register(tx, new, actor or self.settings.actor)
        if joined:
            self.instances.make_room(tx, instance["project_id"])
        return instance
