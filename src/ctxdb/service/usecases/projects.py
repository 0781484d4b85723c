"""Projects: the isolation boundary of everything else."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from ctxdb.domain.ids import new_project_id
from ctxdb.domain.validation import (
    MAX_INTEGER,
    check_identifier,
    check_metadata,
    check_non_negative_int,
    check_optional_int,
    check_text,
    encode_json,
)
from ctxdb.errors import (
    ConflictError,
    InvalidTransitionError,
    ProjectNotFoundError,
    TooManyProjectsError,
)
from ctxdb.service.common import Service, audit, decode, decode_all
from ctxdb.service.idempotency import FLEET, claim_of, write_once
from ctxdb.storage import Tx
from ctxdb.storage.dialect import LOCK_PROJECT_CREATION

MAX_DESCRIPTION = 10_000


def require_project(tx: Tx, project_id: str, *, active: bool = False) -> dict[str, Any]:
    """The project row, or a typed error; ``active`` also refuses archived projects."""
    row = tx.one("get_project", project_id=check_identifier(project_id, "project_id"))
    if row is None:
        raise ProjectNotFoundError(f"unknown project {project_id!r}", project_id=project_id)
    if active:
        refuse_archived(row)
    return decode(row)


def refuse_archived(project: Mapping[str, Any]) -> None:
    """``InvalidTransitionError`` when ``project`` (a row read in this transaction) is
    archived: what ``require_project(active=True)`` checks, without reading it again."""
    if project["status"] != "active":
        project_id = project["project_id"]
        raise InvalidTransitionError(
            f"project {project_id!r} is archived", project_id=project_id
        )


class ProjectService(Service):
    def create(
        self,
        name: str,
        description: str = "",
        total_story_points: int = 0,
        metadata: dict[str, Any] | None = None,
        repo_key: str | None = None,
        actor: str | None = None,
        project_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Create a project; ``project_id`` may be chosen by the caller (e.g. on import).
        With ``idempotency_key`` (fleet-wide: a project belongs to none), a retry gets the
        first answer (see service/idempotency.py)."""
        check_identifier(name, "project name")
        check_text(description, "description", MAX_DESCRIPTION)
        check_non_negative_int(total_story_points, "total_story_points", MAX_INTEGER)
        metadata_json = encode_json(check_metadata(metadata), "metadata",
                                    self.settings.max_content_bytes)
        if repo_key is not None:
            check_identifier(repo_key, "repo_key")
        claim = claim_of(FLEET, "project.create", idempotency_key, {
            "name": name, "description": description, "metadata": metadata,
            "total_story_points": total_story_points, "repo_key": repo_key,
            "project_id": project_id})
        project_id = check_identifier(project_id or new_project_id(), "project_id")
        actor = actor or self.settings.actor

        def unit(tx: Tx) -> dict[str, Any]:
            existing = tx.one("get_project", project_id=project_id)
            if existing is not None:
                if (existing["name"], existing["description"]) != (name, description):
                    raise ConflictError(f"project id {project_id!r} is already taken",
                                        project_id=project_id)
                return decode(existing)  # a retried unit whose first attempt committed
            tx.lock(LOCK_PROJECT_CREATION)
            count = tx.value("count_active_projects")
            if count >= self.settings.max_projects:
                raise TooManyProjectsError(
                    f"there are already {count} projects, the limit is "
                    f"{self.settings.max_projects} (setting max_projects)",
                    limit=self.settings.max_projects,
                )
            tx.execute("insert_project", project_id=project_id, name=name,
                       description=description, total_story_points=total_story_points,
                       repo_key=repo_key, metadata=metadata_json)
            audit(tx, actor, "project.create", "project", project_id, project_id, name=name)
            return require_project(tx, project_id)

        return write_once(self.storage, claim, unit)

    def get(self, project_id: str) -> dict[str, Any]:
        return self.storage.read(lambda tx: require_project(tx, project_id))

    def list(self, include_archived: bool = False) -> list[dict[str, Any]]:
        return self.storage.read(
            lambda tx: decode_all(tx.all("list_projects", include_archived=int(include_archived)))
        )

    def update(
        self,
        project_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        total_story_points: int | None = None,
        completed_story_points: int | None = None,
        metadata: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        if name is not None:
            check_identifier(name, "project name")
        if description is not None:
            check_text(description, "description", MAX_DESCRIPTION)
        check_optional_int(total_story_points, "total_story_points", MAX_INTEGER)
        check_optional_int(completed_story_points, "completed_story_points", MAX_INTEGER)
        metadata_json = None if metadata is None else encode_json(
            check_metadata(metadata), "metadata", self.settings.max_content_bytes)
        changes = {k: v for k, v in {
            "name": name, "description": description, "total_story_points": total_story_points,
            "completed_story_points": completed_story_points, "metadata": metadata,
        }.items() if v is not None}

        def unit(tx: Tx) -> dict[str, Any]:
            require_project(tx, project_id, active=True)
            tx.execute("update_project", project_id=project_id, name=name,
                       description=description, total_story_points=total_story_points,
                       completed_story_points=completed_story_points, metadata=metadata_json)
            audit(tx, actor or self.settings.actor, "project.update", "project", project_id,
                  project_id, changes=sorted(changes))
            return require_project(tx, project_id)

        return self.storage.write(unit)

    def archive(self, project_id: str, actor: str | None = None) -> dict[str, Any]:
        """Archive a project: kept with all its data, hidden from listings and limits."""

        def unit(tx: Tx) -> dict[str, Any]:
            require_project(tx, project_id, active=True)
            tx.execute("archive_project", project_id=project_id)
            audit(tx, actor or self.settings.actor, "project.archive", "project", project_id,
                  project_id)
            return require_project(tx, project_id)

        return self.storage.write(unit)

    def summary(self) -> builtins.list[dict[str, Any]]:
        """The seed's ``v_project_summary``: one row per active project. ``context_items``
        counts its live context items; ``total_snapshots`` is the same number under the
        seed's name, kept for its callers."""
        return self.storage.read(lambda tx: tx.all("project_summary"))
