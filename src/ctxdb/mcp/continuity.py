"""The MCP tool for continuity across sessions: the project's live sibling sessions.

:func:`siblings` is the tool (a module-level function of the server's ``ContextTools``),
listed in :data:`TOOLS` for ``server.build_server``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ctxdb.domain.resume import siblings_text as render_siblings
from ctxdb.mcp.toolbox import READ_ONLY, Declared, ProjectId
from ctxdb.mcp.tools import ContextTools

# Rendered whole: a tool's answer has no injection limit, and live instances are few.
UNLIMITED = 10**9


def siblings(
    tools: ContextTools,
    instance_id: Annotated[str | None, Field(
        description="Your instance id, left out of the list.")] = None,
    project_id: ProjectId = None,
) -> str:
    """Other live sessions of the project: client, branch, last heard from, task held,
    latest handoff. Avoid their work."""
    project = tools.project(project_id)
    text, _named = render_siblings(tools.db.continuity.siblings(project, instance_id),
                                   UNLIMITED)
    return text or f"No other live sessions in project {project}."


TOOLS: list[Declared] = [Declared(siblings, READ_ONLY)]
