"""What a session start's transaction is given, reads first and records
(``AgentSessionService.start``).

Kept apart from the service so that the start's unit reads as its steps: the request, the
reads that need nothing but the request (prefetched together: one round trip on
PostgreSQL), the signal that sessions must be settled before the start can write, and the
injection rendered and recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ctxdb.domain.agents import AgentSession, RepoIdentity, injection_max_chars
from ctxdb.domain.render import injection_title, render_context
from ctxdb.domain.validation import check_identifier, encode_json
from ctxdb.errors import ProjectNotFoundError
from ctxdb.service.common import audit, decode
from ctxdb.service.usecases.agent_session_rows import (
    SESSION_START,
    injection_row,
    injection_view,
)
from ctxdb.service.usecases.continuity import needing_handoff_read, startup_context
from ctxdb.service.usecases.continuity import startup_reads as context_reads
from ctxdb.service.usecases.projects import refuse_archived
from ctxdb.settings import Settings
from ctxdb.storage import Tx

if TYPE_CHECKING:
    from ctxdb.service.usecases.handoffs import HandoffDraft
    from ctxdb.service.usecases.instances import InstanceService

Read = tuple[str, dict[str, Any]]
Row = dict[str, Any]


class StartRequest(NamedTuple):
    """One start, checked: what its transaction needs besides the database."""

    session: AgentSession
    source: str
    repo: RepoIdentity
    actor: str
    draft: HandoffDraft | None  # the handoff to fall back on (compact, clear)
    key: str  # the injection's idempotency key
    context_tokens: int | None
    hook_event: str
    # The one project the caller may touch (a project's token on a server), None: any. See
    # refuse_out_of_reach.
    within: str | None = None


class Unsettled(Exception):
    """Raised in a startup's transaction, before it writes anything, when sessions of the
    project stopped without a handoff: their transcripts are parsed outside any transaction
    (they may be large), then the start runs again with the drafts."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__("sessions to settle")
        self.rows = rows


def own_instance_read(session: AgentSession) -> Read:
    """The read of the session's instance, else of the one of the id a new session
    registers under (``AgentSession.default_instance_id``)."""
    return "session_or_default_instance", {
        "session_id": session.session_id, "client": session.client,
        "instance_id": f"{session.client}-{session.session_id}"}


def opening_reads(settings: Settings, request: StartRequest, settling: bool) -> list[Read]:
    """The reads that need nothing but the request, in the order the unit makes them: the
    injection of a retry, the repository's project, the session's instance (the caller's
    reach is judged by those two) and the sessions to settle (``settling``: not yet
    known)."""
    repo_key = request.repo.repo_key
    return [("injection_by_key", {"idempotency_key": request.key}),
            ("project_row_by_repo_key", {"repo_key": repo_key}),
            own_instance_read(request.session),
            *([needing_handoff_read(settings, None, repo_key)] if settling else [])]


def reached_rows(tx: Tx, request: StartRequest) -> tuple[Row | None, Row | None]:
    """The repository's project and ``session_or_default_instance``'s row (each None when
    there is none), read after the retry's injection (see opening_reads), the caller's reach
    judged by them (refuse_out_of_reach)."""
    project = tx.one("project_row_by_repo_key", repo_key=request.repo.repo_key)
    own = own_instance(tx, request.session)
    refuse_out_of_reach(request.within, project, own)
    return project, own


def own_instance(tx: Tx, session: AgentSession) -> Row | None:
    """The row of :func:`own_instance_read` (None: neither instance exists)."""
    query, params = own_instance_read(session)
    return tx.one(query, **params)


# The columns of a new instance the insert leaves to the schema's defaults (migration 0001),
# as insert_instance's RETURNING answers them; the clock's (started_at, last_heartbeat) are
# the database's and left out (see new_instance).
NEW_INSTANCE = {"current_token_usage": 0, "generation": 0, "status": "active",
                "ended_at": None}


def session_instance(tx: Tx, instances: InstanceService, session: AgentSession,
                     project: Mapping[str, Any], repo: RepoIdentity, actor: str,
                     row: dict[str, Any] | None
                     ) -> tuple[dict[str, Any], bool, dict[str, Any] | None]:
    """The session's instance in ``project`` (``row``: ``own_instance_read``'s, read in this
    transaction), revived (when it had ended) as active, or new; whether it became live (its
    project's room is for the caller to check, at the end); and a new one's fields, for the
    caller to register (register())."""
    # The session's row, else the one of the id a new session registers under (unchecked
    # here: no instance has an invalid id; validated_fields checks it).
    own = row is not None and row.pop("of_session") == 1
    fields = instances.validated_fields(
        project["project_id"],
        instance_id=row["instance_id"] if own and row else session.default_instance_id,
        client=session.client, session_id=session.session_id, worktree=repo.worktree,
        branch=repo.branch, process_id=session.process_id, hostname=session.hostname,
        metadata={"transcript_path": session.transcript_path, "cwd": session.cwd},
    )
    if row is None and fields["phase_id"] is None:  # a new session: see new_instance()
        return new_instance(fields, project), True, fields
    return *instances.enter(tx, fields, actor, project=project, existing=row,
                            existing_read=True), None


def new_instance(fields: dict[str, Any], project: Mapping[str, Any]) -> dict[str, Any]:
    """A new session's instance (no row has its id) as ``InstanceService.enter`` would insert
    it without a phase: the row the insert writes (register()), less the clock's columns,
    which nothing of a start reads. Not written yet: a startup registers it after its reads
    (see startup_reads_ahead), the other sources at once."""
    refuse_archived(project)
    return decode({**fields, **NEW_INSTANCE})


def register(tx: Tx, fields: dict[str, Any], actor: str) -> None:
    """The insert of :func:`new_instance`'s row and its audit row, deferred (Tx.defer): they
    travel with the start's next statements instead of costing a round trip of their own; a
    conflicting insert (the same session started twice at once) fails the start all the
    same, at its next statement. Where one statement may write several tables (PostgreSQL),
    both rows are written by one."""
    details = {"client": fields["client"], "session_id": fields["session_id"],
               "hostname": fields["hostname"], "process_id": fields["process_id"]}
    if tx.chains_writes:
        tx.defer("insert_instance_audited", **fields, actor=check_identifier(actor, "actor"),
                 details=encode_json(details, "audit details"))
        return
    tx.defer("insert_instance", **fields)
    audit(tx, actor, "instance.launch", "instance", fields["instance_id"],
          fields["project_id"], **details)


def startup_reads(settings: Settings, project_id: str, phase_id: int | None,
                  instance_id: str, repo: RepoIdentity) -> list[Read]:
    """What a startup's pack and text read (startup_pack, startup_context), in that order."""
    from ctxdb.service.usecases.packs import first_pages_read  # a start's, not a prompt's

    return [first_pages_read(project_id, phase_id),
            *context_reads(settings, project_id, instance_id, repo)]


def startup_reads_ahead(settings: Settings, request: StartRequest) -> list[Read]:
    """A startup's :func:`startup_reads`, guessed before its first reads, for the caller to
    prefetch with them (one round trip for both) when the project is known before they are
    read: a project's token reaches its own project only (refuse_out_of_reach), and a new
    session registers its default id without a phase. Nothing when the guess cannot be
    made; a wrong one (a session that had an instance) costs the reads being sent again."""
    if request.source != "startup" or request.within is None:
        return []
    return startup_reads(settings, request.within, None, request.session.default_instance_id,
                         request.repo)


def out_of_reach() -> ProjectNotFoundError:
    """The refusal of an event a project's token may not touch: the same as for a repository
    or session nobody knows, so that nothing tells the caller another project holds it."""
    return ProjectNotFoundError("no project this token may use holds this repository or "
                                "session (a project's token cannot register a repository: "
                                "use a fleet-wide token, or create the project with "
                                "ctxdb project create --repo-key)")


def refuse_out_of_reach(within: str | None, project: Mapping[str, Any] | None,
                        own: Mapping[str, Any] | None) -> None:
    """Refuse a start the caller may not make, judged by the rows the start read first (the
    repository's project, ``session_or_default_instance``'s row): as the server's check of
    every other hook event (``http.hook_routes.check_reach``), made here, inside the start's
    own transaction and before it writes anything, instead of in a round trip of its own
    before it. A project's token (``within``) reaches a repository of its project only, and
    a session that is not another project's."""
    if within is None:
        return
    session_project = own["project_id"] if own is not None and own["of_session"] == 1 \
        else None
    if session_project not in (None, within) or project is None \
            or project["project_id"] != within:
        raise out_of_reach()


class Shown(NamedTuple):
    """What a start injects, rendered, before it is recorded (record_start)."""

    text: str
    item_ids: list[int]
    handoff: dict[str, Any] | None  # the handoff shown, recorded with the injection
    hook_event: str


def shown_on_reload(request: StartRequest, instance: dict[str, Any],
                    items: Sequence[Mapping[str, Any]], handoff: dict[str, Any] | None,
                    critical_omitted: list[dict[str, Any]]) -> Shown:
    """The injection of a resume, clear or compact: the handoff, then the pack."""
    session, source = request.session, request.source
    rendered = render_context(items, title=injection_title(instance["project_id"], source),
                              handoff_text=handoff["summary"] if handoff else None,
                              max_chars=injection_max_chars(session.client),
                              critical_omitted=critical_omitted)
    return Shown(rendered.text, rendered.item_ids, handoff, request.hook_event)


def shown_on_startup(tx: Tx, settings: Settings, request: StartRequest,
                     instance: dict[str, Any], items: Sequence[Mapping[str, Any]],
                     critical_omitted: list[dict[str, Any]]) -> Shown:
    """The injection of a startup: the pack, where the work left off and the live siblings;
    the handoff offered is recorded with the injection."""
    rendered, handoff = startup_context(
        tx, settings, project_id=instance["project_id"],
        instance_id=instance["instance_id"], repo=request.repo, items=items,
        critical_omitted=critical_omitted,
        title=injection_title(instance["project_id"], "startup"),
        max_chars=injection_max_chars(request.session.client))
    return Shown(rendered.text, rendered.item_ids, handoff, SESSION_START)


def record_start(tx: Tx, request: StartRequest, instance: dict[str, Any], shown: Shown,
                 last: bool) -> dict[str, Any]:
    """The injection recorded (for audit; its idempotency key makes a retry find it), then
    the start's audit row. ``last``: nothing of the unit comes after, and nothing before it
    may have written a search document (the storage would index it after the unit): where
    one statement may write several tables (PostgreSQL), both rows are then written by one
    statement sent with the COMMIT (Tx.commit_with), a round trip fewer."""
    session, source = request.session, request.source
    row = injection_row(instance, session, source, shown.text, shown.item_ids, shown.handoff,
                        request.key, shown.hook_event)
    details = {"session_id": session.session_id, "items": len(shown.item_ids),
               "handoff_id": row["handoff_id"]}
    if last and tx.chains_writes:  # the injection's id goes into the details in SQL
        recorded = tx.commit_with("insert_injection_audited", **row,
                                  actor=check_identifier(request.actor, "actor"),
                                  action=f"session.{source}",
                                  details=encode_json(details, "audit details"))
        assert recorded is not None  # an insert answers with its row
        row["injection_id"] = recorded["injection_id"]
        return injection_view(row)
    row["injection_id"] = tx.value("insert_injection", **row)
    audit(tx, request.actor, f"session.{source}", "instance", instance["instance_id"],
          instance["project_id"], session_id=session.session_id,
          injection_id=row["injection_id"], items=len(shown.item_ids),
          handoff_id=row["handoff_id"])
    return injection_view(row)
