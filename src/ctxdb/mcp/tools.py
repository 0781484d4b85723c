"""The MCP tools as plain synchronous functions over the service layer.

Each method validates nothing itself beyond choosing the project: the services check every
argument and raise :class:`ctxdb.errors.CtxdbError` subclasses, which the server turns into
MCP tool errors. Each returns the plain text the model reads.
"""

from __future__ import annotations

from typing import Any

from ctxdb.cli.packs import pack_as_text, pack_payload
from ctxdb.errors import ValidationError
from ctxdb.mcp import render
from ctxdb.service import Ctxdb

NO_PROJECT = ("no project given: pass project_id, or start the server with "
              "'ctxdb mcp --project PROJECT_ID'")


class ContextTools:
    """The tools of one server: a store and the project used when a call names none."""

    def __init__(self, db: Ctxdb, default_project: str | None = None) -> None:
        self.db = db
        self.default_project = default_project

    def project(self, project_id: str | None) -> str:
        chosen = project_id if project_id is not None else self.default_project
        if chosen is None:
            raise ValidationError(NO_PROJECT)
        return chosen

    def scope(self, project_id: str | None) -> str | None:
        """The project a session must belong to: the one named, else the server's (if any)."""
        return project_id if project_id is not None else self.default_project

    def get_context(self, project_id: str | None = None, budget_tokens: int | None = None,
                    phase_id: int | None = None) -> str:
        """The project's latest handoff (if any), then its budgeted pack, as text."""
        project = self.project(project_id)
        settings = self.db.settings
        budget = budget_tokens if budget_tokens is not None else int(
            settings.context_window * settings.pack_budget_fraction)
        pack = self.db.context.pack(project, budget, phase_id)
        handoff = self.db.tokens.latest_handoff(project_id=project)
        text = pack_as_text(pack_payload(project, pack))
        return text if handoff is None else f"{render.handoff_text(handoff)}\n\n{text}"

    def store_context(self, content: Any, priority: str = "HIGH", content_type: str = "note",
                      phase_id: int | None = None, created_by: str | None = None,
                      project_id: str | None = None) -> str:
        item = self.db.context.store(self.project(project_id), content, priority, content_type,
                                     phase_id, created_by=created_by)
        return render.stored_text(item)

    def search_context(self, query: str | None = None, priority: str | None = None,
                       content_type: str | None = None, phase_id: int | None = None,
                       limit: int = 20, full_content: bool = False,
                       project_id: str | None = None) -> str:
        project = self.project(project_id)
        result = self.db.context.search(project, query, priority=priority,
                                        content_type=content_type, phase_id=phase_id,
                                        limit=limit)
        return render.search_text(project, query, result, full_content)

    def record_handoff(self, instance_id: str, summary: str = "",
                       next_steps: list[str] | None = None,
                       working_set: dict[str, Any] | None = None) -> str:
        handoff = self.db.tokens.record_handoff(instance_id, summary=summary,
                                                next_steps=next_steps, working_set=working_set)
        return render.handoff_recorded_text(handoff)

    def heartbeat(self, instance_id: str, phase_id: int | None = None) -> str:
        return render.heartbeat_text(self.db.instances.heartbeat(instance_id, phase_id))

    def list_instances(self, project_id: str | None = None, status: str | None = None) -> str:
        project = self.project(project_id)
        return render.instances_text(project, self.db.instances.list(project, status), status)

    def memory_get(self, namespace: str, key: str, version: int | None = None,
                   project_id: str | None = None) -> str:
        memory = self.db.memories.get(self.project(project_id), namespace, key, version)
        if version is None:
            return render.memory_text(memory)
        return render.memory_version_text(memory)

    def memory_put(self, namespace: str, key: str, value: Any, memory_type: str | None = None,
                   expected_version: int | None = None, ttl_seconds: int | None = None,
                   project_id: str | None = None) -> str:
        memory = self.db.memories.put(self.project(project_id), namespace, key, value,
                                      memory_type=memory_type,
                                      expected_version=expected_version,
                                      ttl_seconds=ttl_seconds)
        return render.memory_stored_text(memory)

    def memory_list(self, prefix: str = "", limit: int = 50,
                    after_namespace: str | None = None, after_key: str | None = None,
                    project_id: str | None = None) -> str:
        project = self.project(project_id)
        after = None
        if after_namespace is not None or after_key is not None:
            after = (after_namespace or "", after_key or "")
        memories = self.db.memories.list(project, prefix, limit=limit, after=after)
        return render.memories_text(project, prefix, memories, limit)

    def session_append(self, session_id: str, role: str, content: Any,
                       metadata: dict[str, Any] | None = None,
                       idempotency_key: str | None = None,
                       project_id: str | None = None) -> str:
        event = self.db.conversations.append(session_id, role, content, metadata=metadata,
                                             idempotency_key=idempotency_key,
                                             project_id=self.scope(project_id))
        return render.event_appended_text(event)

    def session_events(self, session_id: str, after_sequence: int = 0, limit: int = 50,
                       project_id: str | None = None) -> str:
        events = self.db.conversations.events(session_id, after_sequence=after_sequence,
                                              limit=limit, project_id=self.scope(project_id))
        return render.session_events_text(session_id, events, after_sequence, limit)
