"""What the agent sessions' service reads without writing: a repository's project, an
instance's injections, the instance of a session and the projects a hook event reaches
(kept apart from agent_sessions.py, whose use cases write)."""

from __future__ import annotations

from typing import Any

from ctxdb.domain.agents import AgentSession
from ctxdb.domain.validation import check_identifier
from ctxdb.service.common import decode
from ctxdb.service.usecases.agent_session_rows import injection_view
from ctxdb.service.usecases.instances import require_instance
from ctxdb.storage import Storage, Tx


class AgentSessionReads:
    storage: Storage

    def find_project(self, repo_key: str) -> dict[str, Any] | None:
        """The project of a repository, or None if no session has created it yet."""
        check_identifier(repo_key, "repo_key")

        def unit(tx: Tx) -> dict[str, Any] | None:
            row = tx.one("project_by_repo_key", repo_key=repo_key)
            return None if row is None else decode(tx.one("get_project", **row) or {})

        return self.storage.read(unit)

    def injections(self, instance_id: str) -> list[dict[str, Any]]:
        """Every injection into an instance, oldest first (item ids decoded)."""
        check_identifier(instance_id, "instance_id")

        def unit(tx: Tx) -> list[dict[str, Any]]:
            require_instance(tx, instance_id)
            return [injection_view(row) for row in
                    tx.all("injections_of_instance", instance_id=instance_id)]

        return self.storage.read(unit)

    def projects_reached(self, session: AgentSession, repo_key: str | None
                         ) -> tuple[str | None, str | None]:
        """The project of the session's instance and the project of the repository ``repo_key``
        (None where there is none yet, or none given), read by one statement: what a server
        judges a project's token by on every hook event (``http.hook_routes``)."""
        session = session.checked()
        if repo_key is not None:
            check_identifier(repo_key, "repo_key")
        row = self.storage.read_one("projects_reached", session_id=session.session_id,
                                    client=session.client, repo_key=repo_key)
        instance_project = None if row is None else row["instance_project"]
        repo_project = None if row is None else row["repo_project"]
        return (None if instance_project is None else str(instance_project),
                None if repo_project is None else str(repo_project))

    def instance_of(self, session: AgentSession) -> dict[str, Any] | None:
        session = session.checked()

        def unit(tx: Tx) -> dict[str, Any] | None:
            row = tx.one("instance_of_session", session_id=session.session_id,
                         client=session.client)
            return None if row is None else require_instance(tx, row["instance_id"])

        return self.storage.read(unit)
