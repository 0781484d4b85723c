"""The project of a repository: found by its ``repo_key``, created on first use.

Every clone and worktree of one repository computes the same key (see
``ctxdb.repo_identity``), so they share one project. Creation is race-safe on both
backends: the creating transaction holds the project-creation lock (an advisory lock on
PostgreSQL, the write lock on SQLite) and looks again once it has it, and the insert itself
ignores a key another session stored first.
"""

from __future__ import annotations

from typing import Any

from ctxdb.domain.agents import RepoIdentity
from ctxdb.domain.ids import new_project_id
from ctxdb.domain.validation import encode_json
from ctxdb.errors import TooManyProjectsError
from ctxdb.service.common import audit, decode
from ctxdb.settings import Settings
from ctxdb.storage import Tx
from ctxdb.storage.dialect import LOCK_PROJECT_CREATION


def project_for_repo(tx: Tx, repo: RepoIdentity, settings: Settings,
                     actor: str) -> dict[str, Any]:
    """Inside the caller's write transaction: the repository's project (created if new)."""
    row = tx.one("project_row_by_repo_key", repo_key=repo.repo_key)
    if row is None:
        tx.lock(LOCK_PROJECT_CREATION)
        row = tx.one("project_row_by_repo_key", repo_key=repo.repo_key)
    if row is not None:
        return decode(row)
    count = tx.value("count_active_projects")
    if count >= settings.max_projects:
        raise TooManyProjectsError(
            f"there are already {count} projects, the limit is {settings.max_projects} "
            "(setting max_projects)", limit=settings.max_projects)
    project_id = new_project_id()
    tx.execute("insert_repo_project", project_id=project_id, name=repo.name,
               description=f"created for repository {repo.repo_key}", repo_key=repo.repo_key,
               metadata=encode_json({"created_from": repo.worktree}, "metadata"))
    row = tx.one("project_row_by_repo_key", repo_key=repo.repo_key)
    assert row is not None  # inserted above, or by a session that committed it first
    if row["project_id"] == project_id:
        audit(tx, actor, "project.create", "project", project_id, project_id,
              name=repo.name, repo_key=repo.repo_key)
    return decode(row)
