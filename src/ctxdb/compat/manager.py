"""The seed's ``MultiProjectManager``: projects, phases and instances."""

from __future__ import annotations

from typing import Any

from ctxdb.compat._base import DEFAULT_DB_PATH, CompatBase, store_item
from ctxdb.domain.models import DEFAULT_CONTENT_TYPE

# The seed's default size of a project, in story points.
SEED_TOTAL_STORY_POINTS = 1300


class MultiProjectManager(CompatBase):
    """Manages projects and their instances; ``db_path`` may be a SQLite path or a PG URL."""

    def __init__(self, db_path: str = DEFAULT_DB_PATH) -> None:
        super().__init__(db_path)

    def create_project(
        self, name: str, description: str, total_story_points: int = SEED_TOTAL_STORY_POINTS
    ) -> str:
        """Create a project; returns its id ``proj_YYYYMMDD_HHMMSS_<hex>``."""
        return str(self.db.projects.create(name, description, total_story_points)["project_id"])

    def launch_instance(self, project_id: str, phase_id: int | None = None) -> str:
        """Register a new instance of the project; returns its id ``inst_YYYYMMDD_HHMMSS_<hex>``."""
        return str(self.db.instances.launch(project_id, phase_id)["instance_id"])

    def create_phase(
        self, project_id: str, phase_number: int, name: str, story_points: int = 0
    ) -> int:
        """Create a numbered phase of the project; returns its ``phase_id``."""
        return int(self.db.phases.create(project_id, phase_number, name, story_points)["phase_id"])

    def store_context(
        self,
        project_id: str,
        content: dict[str, Any],
        priority: str = "HIGH",
        content_type: str = DEFAULT_CONTENT_TYPE,
        phase_id: int | None = None,
    ) -> int:
        """Store one context item; returns its id (the seed's ``snapshot_id``)."""
        return store_item(self.db, project_id, content, priority, content_type, phase_id)

    def get_project_summary(self) -> list[dict[str, Any]]:
        """One row per active project: story points, active instances, snapshots, tokens."""
        return self.db.projects.summary()

    def get_project_instances(self, project_id: str) -> list[dict[str, Any]]:
        """The project's active instances, oldest first (ctxdb's extra columns included)."""
        return self.db.instances.list(project_id, status="active")

    def get_all_projects(self) -> list[dict[str, Any]]:
        """Every active project, with ``total_phases``."""
        return self.db.projects.list()
