"""Observations: the timeline of what agent sessions did (docs/timeline.md).

They are written by transcript ingestion (``ctxdb ingest-transcript``, and the Stop,
SubagentStop and PostCompact hooks, which ingest the session's transcript each turn) and by
handoffs (the query ``observe_handoff``, run where a handoff is inserted); this module holds
the writing of ingestion, inside its transaction, and the reading:
a project's (or a session's) latest observations, one observation, and those around one.

An observation belongs to a project: a transcript whose project ctxdb does not know (no
``--project``, no instance of its session) records token usage but no observations. Its
``generation`` is the generation its instance was in when the observation was recorded
(the hooks record each turn as it ends); None without an instance.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from ctxdb.domain.search import parse_instant
from ctxdb.domain.validation import check_identifier, check_limit, is_real_timestamp
from ctxdb.errors import NotFoundError, SessionNotFoundError, ValidationError
from ctxdb.service.common import Service
from ctxdb.service.usecases.projects import require_project
from ctxdb.storage import Row, Tx
from ctxdb.transcripts import TranscriptChunk
from ctxdb.transcripts.observations import (
    command_exit_code,
    command_key,
    observations_of,
)

MAX_PAGE = 1_000
MAX_AROUND = 50
EARLIEST = "0001-01-01T00:00:00.000Z"


def _instant(value: str | None) -> str | None:
    """A transcript's timestamp as timestamps are stored (milliseconds, UTC), so that both
    backends order and compare them alike; None (the time of recording) if it is no real
    ISO-8601 UTC time."""
    if value is None or not value.endswith("Z") or not is_real_timestamp(value):
        return None
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_observations(tx: Tx, chunk: TranscriptChunk, path: Path, session_id: str,
                        owner: dict[str, Any], generation: int | None) -> int:
    """Store the observations of ``chunk`` (read from ``path``), of the session's instance in
    ``generation``; how many were new."""
    if owner["project_id"] is None:
        return 0
    added = 0
    for observation in observations_of(chunk, session_id, path.name):
        added += tx.execute(
            "insert_observation", session_id=session_id, generation=generation,
            kind=observation.kind.value, tool=observation.tool, text=observation.text,
            exit_code=observation.exit_code, source_key=observation.key,
            occurred_at=_instant(observation.timestamp), **owner)
    # A command's result read after the command (an earlier read ended between them).
    called = {use.id for use in chunk.tool_uses}
    for result in chunk.tool_results:
        code = command_exit_code(result)
        if result.tool_use_id not in called and code is not None:
            tx.execute("complete_command", exit_code=code,
                       source_key=command_key(session_id, result.tool_use_id))
    return added


class ObservationService(Service):
    def timeline(self, project_id: str, *, session_id: str | None = None,
                 since: Any = None, limit: int = 50) -> list[dict[str, Any]]:
        """The latest ``limit`` observations of a project (or of one of its agent sessions),
        since ``since`` (ISO-8601, a ``datetime`` or an age such as ``7d``), oldest first. A
        session the project does not know is refused, as one of another project is."""
        check_identifier(project_id, "project_id")
        if session_id is not None:
            check_identifier(session_id, "session_id")
        start = EARLIEST if since is None else parse_instant(since, "since")
        check_limit(limit, MAX_PAGE)

        def unit(tx: Tx) -> list[Row]:
            require_project(tx, project_id)
            if session_id is not None and tx.one("session_in_project", session_id=session_id,
                                                 project_id=project_id) is None:
                raise SessionNotFoundError(
                    f"unknown session {session_id!r} in project {project_id!r}: no instance "
                    "runs it and it has no observations", session_id=session_id)
            return tx.all("latest_observations", project_id=project_id,
                          session_id=session_id or "", since=start, limit=limit)

        return list(reversed(self.storage.read(unit)))

    def get(self, project_id: str, observation_id: int) -> dict[str, Any]:
        """One observation; one of another project is unknown."""
        check_identifier(project_id, "project_id")
        return self.storage.read(lambda tx: _require(tx, project_id, observation_id))

    def around(self, project_id: str, observation_id: int, *, before: int = 5,
               after: int = 5) -> list[dict[str, Any]]:
        """The observation and those of its session just before and after it, in order."""
        check_identifier(project_id, "project_id")
        for what, value in (("before", before), ("after", after)):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 0 <= value <= MAX_AROUND:
                raise ValidationError(f"{what} must be an integer from 0 to {MAX_AROUND}")

        def unit(tx: Tx) -> list[Row]:
            middle = _require(tx, project_id, observation_id)
            where = {"project_id": project_id, "session_id": middle["session_id"],
                     "occurred_at": middle["occurred_at"], "observation_id": observation_id}
            earlier = tx.all("observations_before", **where, limit=before) if before else []
            later = tx.all("observations_after", **where, limit=after) if after else []
            return [*reversed(earlier), middle, *later]

        return self.storage.read(unit)


def _require(tx: Tx, project_id: str, observation_id: int) -> Row:
    if isinstance(observation_id, bool) or not isinstance(observation_id, int) \
            or not 0 < observation_id < 2**63:
        raise ValidationError(f"invalid observation id {observation_id!r}")
    require_project(tx, project_id)
    row = tx.one("get_observation", observation_id=observation_id, project_id=project_id)
    if row is None:
        raise NotFoundError(
            f"project {project_id!r} has no observation {observation_id}",
            observation_id=observation_id)
    return row
