"""Phases: the numbered lifecycle stages of a project; the current phase ranks context."""

from __future__ import annotations

from typing import Any

from ctxdb.domain.models import PHASE_TRANSITIONS, PhaseStatus
from ctxdb.domain.validation import (
    MAX_INTEGER,
    check_identifier,
    check_metadata,
    check_non_negative_int,
    check_text,
    encode_json,
)
from ctxdb.errors import ConflictError, InvalidTransitionError, PhaseNotFoundError
from ctxdb.service.common import Service, audit, decode, decode_all
from ctxdb.service.idempotency import claim_of, write_once
from ctxdb.service.usecases.projects import require_project
from ctxdb.storage import Tx


def require_phase(tx: Tx, phase_id: int, project_id: str | None = None) -> dict[str, Any]:
    """The phase row; with ``project_id``, a phase of another project is refused as unknown."""
    check_non_negative_int(phase_id, "phase_id")
    row = tx.one("get_phase", phase_id=phase_id)
    if row is None or (project_id is not None and row["project_id"] != project_id):
        where = f" in project {project_id!r}" if project_id else ""
        raise PhaseNotFoundError(f"unknown phase {phase_id}{where}", phase_id=phase_id)
    return decode(row)


class PhaseService(Service):
    def create(
        self,
        project_id: str,
        phase_number: int,
        name: str,
        story_points: int = 0,
        description: str = "",
        metadata: dict[str, Any] | None = None,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Add a phase; with ``idempotency_key``, a retry gets the first answer."""
        check_identifier(project_id, "project_id")
        check_non_negative_int(phase_number, "phase_number", MAX_INTEGER)
        check_identifier(name, "phase name")
        check_non_negative_int(story_points, "story_points", MAX_INTEGER)
        check_text(description, "description", 10_000)
        metadata_json = encode_json(check_metadata(metadata), "metadata")
        claim = claim_of(project_id, "phase.create", idempotency_key, {
            "phase_number": phase_number, "name": name, "story_points": story_points,
            "description": description, "metadata": metadata})

        def unit(tx: Tx) -> dict[str, Any]:
            require_project(tx, project_id, active=True)
            if tx.one("phase_by_number", project_id=project_id, phase_number=phase_number):
                raise ConflictError(
                    f"project {project_id!r} already has a phase number {phase_number}",
                    project_id=project_id, phase_number=phase_number,
                )
            phase_id = tx.value("insert_phase", project_id=project_id,
                                phase_number=phase_number, name=name, description=description,
                                story_points=story_points, metadata=metadata_json)
            audit(tx, actor or self.settings.actor, "phase.create", "phase", phase_id,
                  project_id, phase_number=phase_number, name=name)
            return require_phase(tx, phase_id)

        return write_once(self.storage, claim, unit)

    def get(self, phase_id: int) -> dict[str, Any]:
        return self.storage.read(lambda tx: require_phase(tx, phase_id))

    def list(self, project_id: str) -> list[dict[str, Any]]:
        def unit(tx: Tx) -> list[dict[str, Any]]:
            require_project(tx, project_id)
            return decode_all(tx.all("list_phases", project_id=project_id))

        return self.storage.read(unit)

    def current(self, project_id: str) -> dict[str, Any] | None:
        """The active phase with the highest number, or ``None``."""

        def unit(tx: Tx) -> dict[str, Any] | None:
            require_project(tx, project_id)
            row = tx.one("current_phase", project_id=project_id)
            return decode(row) if row else None

        return self.storage.read(unit)

    def start(self, phase_id: int, actor: str | None = None) -> dict[str, Any]:
        return self._move(phase_id, PhaseStatus.ACTIVE, None, actor)

    def complete(self, phase_id: int, actor: str | None = None) -> dict[str, Any]:
        return self._move(phase_id, PhaseStatus.COMPLETED, None, actor)

    def block(self, phase_id: int, reason: str = "", actor: str | None = None) -> dict[str, Any]:
        check_text(reason, "reason", 2_000)
        return self._move(phase_id, PhaseStatus.BLOCKED, reason or None, actor)

    def _move(
        self, phase_id: int, target: PhaseStatus, reason: str | None, actor: str | None
    ) -> dict[str, Any]:
        def unit(tx: Tx) -> dict[str, Any]:
            phase = require_phase(tx, phase_id)
            require_project(tx, phase["project_id"], active=True)
            current = PhaseStatus(phase["status"])
            if current not in PHASE_TRANSITIONS[target]:
                raise InvalidTransitionError(
                    f"phase {phase_id} is {current.value}; it cannot become {target.value}",
                    phase_id=phase_id, status=current.value,
                )
            tx.execute("set_phase_status", phase_id=phase_id, status=target.value,
                       blocked_reason=reason)
            audit(tx, actor or self.settings.actor, f"phase.{target.value}", "phase", phase_id,
                  phase["project_id"], previous=current.value, reason=reason)
            return require_phase(tx, phase_id)

        return self.storage.write(unit)
