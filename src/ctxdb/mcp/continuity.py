"""The MCP tool for continuity across sessions: the project's live sibling sessions.

Kept apart from ``server.py`` and ``tools.py``: ``server.build_server`` calls
:func:`register` with its tool decorator, and :func:`siblings_text` is the plain function
behind the tool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from mcp.types import ToolAnnotations
from pydantic import Field

from ctxdb.domain.resume import siblings_text as render_siblings
from ctxdb.mcp.server import ProjectId, ToolFunction, _in_thread
from ctxdb.mcp.tools import ContextTools

Decorator = Callable[[ToolAnnotations], Callable[[ToolFunction], ToolFunction]]
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


def register(tool: Decorator, read_only: ToolAnnotations, tools: ContextTools) -> None:
    @tool(read_only)
    async def siblings(
        instance_id: Annotated[str | None, Field(
            description="Your instance id, left out of the list.")] = None,
        project_id: ProjectId = None,
    ) -> str:
        """Other live sessions of the project: client, branch, last heard from, task held,
        latest handoff. Avoid their work."""
        return await _in_thread(siblings_text, tools=tools, project_id=project_id,
                                instance_id=instance_id)
