"""The MCP tool for continuity across sessions: the project's live sibling sessions.

:func:`siblings_text` is the plain function behind the tool, :func:`siblings` the tool (a
module-level function of the server's ``ContextTools``), listed in :data:`TOOLS` for
``server.build_server``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ctxdb.domain.resume import siblings_text as render_siblings
from ctxdb.mcp.toolbox import READ_ONLY, ProjectId, Tool, in_thread
from ctxdb.mcp.tools import ContextTools

# Rendered whole: a tool's answer has no injection limit, and live instances are few.
UNLIMITED = 10**9


def siblings_text(tools: ContextTools, project_id: str | None = None,
                  instance_id: str | None = None) -> str:
    """The live sessions of the project other than ``instance_id``, as a new session is told
    of them at startup (client, branch, when last heard from, task held, latest handoff)."""
    project = tools.project(project_id)
    text, _named = render_siblings(tools.db.continuity.siblings(project, instance_id),
                                   UNLIMITED)
    return text or f"No other live sessions in project {project}."


async def siblings(
    tools: ContextTools,
    instance_id: Annotated[str | None, Field(
        description="Your instance id, left out of the list.")] = None,
    project_id: ProjectId = None,
) -> str:
    """Other live sessions of the project: client, branch, last heard from, task held,
    latest handoff. Avoid their work."""
    return await in_thread(siblings_text, tools=tools, project_id=project_id,
                           instance_id=instance_id)


TOOLS: list[Tool] = [(siblings, READ_ONLY)]
