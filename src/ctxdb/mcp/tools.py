"""The state every MCP tool works with: the store, and the project of calls that name none.

The tools themselves (in :mod:`ctxdb.mcp.knowledge`, :mod:`ctxdb.mcp.coordination`,
:mod:`ctxdb.mcp.continuity` and :mod:`ctxdb.mcp.details`) validate nothing beyond choosing
the project: the services check every argument and raise :class:`ctxdb.errors.CtxdbError`
subclasses, which the server turns into MCP tool errors.
"""

from __future__ import annotations

from ctxdb.errors import ProjectNotFoundError, ValidationError
from ctxdb.service import Ctxdb

NO_PROJECT = ("no project given: pass project_id, start the server with "
              "'ctxdb mcp --project PROJECT_ID', or start it inside a repository")


class ContextTools:
    """The tools of one server (or one HTTP session): a store and the project used when a call
    names none. ``no_project_hint`` says why there is none (where the server runs)."""

    def __init__(self, db: Ctxdb, default_project: str | None = None,
                 no_project_hint: str = "", *, only_default: bool = False) -> None:
        self.db = db
        self.default_project = default_project
        self.no_project_hint = no_project_hint
        # Over HTTP a token of one project reaches that project only.
        self.only_default = only_default

    def project(self, project_id: str | None) -> str:
        chosen = self._reachable(project_id)
        if chosen is None:
            raise ValidationError(NO_PROJECT + self.no_project_hint)
        # Any call of the project notices its sessions that stopped without a handoff.
        self.db.continuity.settle(chosen)
        return chosen

    def scope(self, project_id: str | None) -> str | None:
        """The project a record named by id must belong to: the one named, else the server's
        (if any). The services refuse a record of another project."""
        return self._reachable(project_id)

    def _reachable(self, project_id: str | None) -> str | None:
        if project_id is None or project_id == self.default_project:
            return self.default_project
        if self.only_default:  # answered as an unknown project: nothing tells it exists
            raise ProjectNotFoundError(f"unknown project {project_id!r}",
                                       project_id=project_id)
        return project_id
