"""Conversation sessions: an app's session with a user, with a JSON state and an event log.

A session (``sess_…``) belongs to a project and may name the agent instance that runs it. Its
events (the messages of the conversation: role user, assistant, system or tool, with JSON
content and metadata) are numbered 1, 2, 3… per session without gaps, in the order they were
appended; reading them back pages by that number (``after_sequence``). An append carries an
idempotency key (one is made up when the caller gives none): appending the same event again
with a key the session already holds returns the first event and writes nothing, so a retried
append is safe; another role, content or metadata under that key is refused with
:class:`IdempotencyConflictError`.
A closed session refuses appends and state changes.

This is not ``service/usecases/agent_sessions.py``, which serves the agent-client hooks (a
Claude Code or Codex session as seen by its hooks).
"""

from __future__ import annotations

import builtins
import json
from typing import Any

from ctxdb.domain.checks import check_state
from ctxdb.domain.ids import new_idempotency_key, new_session_id
from ctxdb.domain.validation import (
    check_choice,
    check_identifier,
    check_limit,
    check_metadata,
    check_non_negative_int,
    encode_json,
)
from ctxdb.domain.vocabulary import ConversationStatus, Role
from ctxdb.errors import (
    InvalidStatusError,
    InvalidTransitionError,
    SessionNotFoundError,
)
from ctxdb.service.common import Service, audit, decode, same_request
from ctxdb.service.idempotency import claim_of, write_once
from ctxdb.service.usecases.instances import require_instance
from ctxdb.service.usecases.projects import require_project
from ctxdb.storage import Row, Tx

MAX_PAGE = 1_000


def _session(row: Row) -> dict[str, Any]:
    if isinstance(row.get("state"), str):  # both backends hand JSON over as text
        row["state"] = json.loads(row["state"])
    return row


def require_session(tx: Tx, session_id: str, project_id: str | None = None,
                    *, lock: bool = False) -> Row:
    """The session row (locked with ``lock``); with ``project_id``, another project's session
    is refused as unknown, so that ids never reach across projects."""
    row = tx.one("lock_session" if lock else "get_session", session_id=session_id)
    if row is None or (project_id is not None and row["project_id"] != project_id):
        where = f" in project {project_id!r}" if project_id is not None else ""
        raise SessionNotFoundError(f"unknown session {session_id!r}{where}",
                                   session_id=session_id)
    return row


def _require_open(tx: Tx, row: Row, doing: str) -> None:
    """Refuse changes to a closed session, or to any session of an archived project."""
    require_project(tx, row["project_id"], active=True)
    if row["status"] != ConversationStatus.OPEN:
        raise InvalidTransitionError(
            f"session {row['session_id']!r} is closed: cannot {doing}",
            session_id=row["session_id"])


class ConversationService(Service):
    # --- sessions --------------------------------------------------------------------------

    def create(
        self,
        project_id: str,
        app_name: str,
        user_id: str,
        *,
        instance_id: str | None = None,
        state: dict[str, Any] | None = None,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Open a session; ``instance_id`` must be an instance of the same project. With
        ``idempotency_key``, a retry gets the first answer."""
        check_identifier(project_id, "project_id")
        check_identifier(app_name, "app_name")
        check_identifier(user_id, "user_id")
        if instance_id is not None:
            check_identifier(instance_id, "instance_id")
        state_json = check_state({} if state is None else state, self.settings.max_content_bytes)
        actor = check_identifier(actor or self.settings.actor, "actor")
        session_id = new_session_id()
        claim = claim_of(project_id, "session.create", idempotency_key, {
            "app_name": app_name, "user_id": user_id, "instance_id": instance_id,
            "state": state})

        def unit(tx: Tx) -> dict[str, Any]:
            require_project(tx, project_id, active=True)
            if instance_id is not None:
                require_instance(tx, instance_id, project_id)
            tx.execute("insert_session", session_id=session_id, project_id=project_id,
                       app_name=app_name, user_id=user_id, instance_id=instance_id,
                       state=state_json)
            audit(tx, actor, "session.create", "session", session_id, project_id,
                  app_name=app_name, user_id=user_id, instance_id=instance_id)
            return _session(require_session(tx, session_id))

        return write_once(self.storage, claim, unit)

    def get(self, session_id: str, *, project_id: str | None = None) -> dict[str, Any]:
        self._check_ids(session_id, project_id)
        return self.storage.read(
            lambda tx: _session(require_session(tx, session_id, project_id)))

    def list(
        self,
        project_id: str,
        *,
        app_name: str | None = None,
        user_id: str | None = None,
        status: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> builtins.list[dict[str, Any]]:
        """A page of a project's sessions, oldest first; pass the last one's id as ``after``."""
        check_identifier(project_id, "project_id")
        filters = {"app_name": app_name, "user_id": user_id, "after_session_id": after}
        for what, value in filters.items():
            if value is not None:
                check_identifier(value, what)
        if status is not None:
            check_choice(status, ConversationStatus, "session status", error=InvalidStatusError)
        check_limit(limit, MAX_PAGE)

        def unit(tx: Tx) -> builtins.list[dict[str, Any]]:
            require_project(tx, project_id)
            rows = tx.all("list_sessions", project_id=project_id, status=status or "",
                          limit=limit, **{k: v or "" for k, v in filters.items()})
            return [_session(row) for row in rows]

        return self.storage.read(unit)

    def update_state(
        self,
        session_id: str,
        state: dict[str, Any],
        *,
        project_id: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Replace the state of an open session with ``state`` (a JSON object)."""
        self._check_ids(session_id, project_id)
        state_json = check_state(state, self.settings.max_content_bytes)
        actor = check_identifier(actor or self.settings.actor, "actor")

        def unit(tx: Tx) -> dict[str, Any]:
            row = require_session(tx, session_id, project_id, lock=True)
            _require_open(tx, row, "change its state")
            tx.execute("update_session_state", session_id=session_id, state=state_json)
            audit(tx, actor, "session.state", "session", session_id, row["project_id"],
                  bytes=len(state_json.encode("utf-8")))
            return _session(require_session(tx, session_id))

        return self.storage.write(unit)

    def close(
        self, session_id: str, *, project_id: str | None = None, actor: str | None = None
    ) -> dict[str, Any]:
        """Close an open session; its events stay readable."""
        self._check_ids(session_id, project_id)
        actor = check_identifier(actor or self.settings.actor, "actor")

        def unit(tx: Tx) -> dict[str, Any]:
            row = require_session(tx, session_id, project_id, lock=True)
            _require_open(tx, row, "close it again")
            tx.execute("close_session", session_id=session_id)
            audit(tx, actor, "session.close", "session", session_id, row["project_id"],
                  events=row["next_event_seq"])
            return _session(require_session(tx, session_id))

        return self.storage.write(unit)

    # --- events ----------------------------------------------------------------------------

    def append(
        self,
        session_id: str,
        role: str,
        content: Any,
        *,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        project_id: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Append an event to an open session; returns it with its ``sequence``.

        With an ``idempotency_key`` the session already holds, the event stored under it is
        returned and nothing is written (also once the session is closed); it must be the
        same event, or :class:`IdempotencyConflictError` is raised.
        """
        self._check_ids(session_id, project_id)
        values = {
            "role": check_choice(role, Role, "role").value,
            "content": encode_json(content, "event content", self.settings.max_content_bytes),
            "metadata": encode_json(check_metadata(metadata), "event metadata",
                                    self.settings.max_content_bytes),
            "idempotency_key": check_identifier(idempotency_key or new_idempotency_key(),
                                                "idempotency_key"),
        }
        actor = check_identifier(actor or self.settings.actor, "actor")

        def unit(tx: Tx) -> dict[str, Any]:
            row = require_session(tx, session_id, project_id, lock=True)
            stored = tx.one("session_event_by_key", session_id=session_id,
                            idempotency_key=values["idempotency_key"])
            if stored is not None:
                return same_request(decode(stored), {
                    "role": values["role"], "content": json.loads(values["content"]),
                    "metadata": json.loads(values["metadata"])}, what="event",
                    key=values["idempotency_key"], id_field="event_id")
            _require_open(tx, row, "append to it")
            sequence = tx.value("next_event_sequence", session_id=session_id)
            event_id = tx.value("insert_session_event", session_id=session_id,
                                sequence=sequence, **values)
            audit(tx, actor, "session.append", "session", session_id, row["project_id"],
                  event_id=event_id, sequence=sequence, role=values["role"])
            return decode(self._event(tx, event_id))

        return self.storage.write(unit)

    def events(
        self,
        session_id: str,
        *,
        after_sequence: int = 0,
        limit: int = 100,
        project_id: str | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """A page of events in order: those numbered after ``after_sequence``, at most
        ``limit``; pass the last one's ``sequence`` to read the next page."""
        self._check_ids(session_id, project_id)
        check_non_negative_int(after_sequence, "after_sequence")
        check_limit(limit, MAX_PAGE)

        def unit(tx: Tx) -> builtins.list[dict[str, Any]]:
            require_session(tx, session_id, project_id)
            return [decode(row) for row in tx.all(
                "list_session_events", session_id=session_id, after_sequence=after_sequence,
                limit=limit)]

        return self.storage.read(unit)

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _check_ids(session_id: str, project_id: str | None) -> None:
        check_identifier(session_id, "session_id")
        if project_id is not None:
            check_identifier(project_id, "project_id")

    @staticmethod
    def _event(tx: Tx, event_id: int) -> Row:
        row = tx.one("get_session_event", event_id=event_id)
        if row is None:  # just inserted in this transaction: cannot happen
            raise SessionNotFoundError(f"event {event_id} vanished", event_id=event_id)
        return row
