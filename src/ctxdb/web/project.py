"""The project pages: context items (search, filters, paging, supersede and delete history),
the pack preview with its manifest, memories with their versions, the audit log and its
hash chain."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from ctxdb.domain.models import PRIORITY_ORDER
from ctxdb.errors import BudgetExceededError
from ctxdb.web.render import page
from ctxdb.web.session import Viewer, current_viewer

routes = APIRouter()
Seeing = Annotated[Viewer, Depends(current_viewer)]
ITEMS_PER_PRIORITY = 10
ITEMS_PER_PAGE = 50
HISTORY_DEPTH = 500
MEMORIES_PER_PAGE = 50
DEFAULT_BUDGET = 20_000
Text = Annotated[str, Query(max_length=1_000)]


def item_pages(viewer: Viewer, project_id: str, priority: str, after: int) -> list[dict[str, Any]]:
    """One page of one priority when it is chosen, else the first items of each."""
    chosen = [priority] if priority else [p.value for p in PRIORITY_ORDER]
    size = ITEMS_PER_PAGE if priority else ITEMS_PER_PRIORITY
    return [{"priority": level, "after": after if priority else 0,
             **viewer.db.context.page(project_id, level, after if priority else 0, size)}
            for level in chosen]


def changes(viewer: Viewer, project_id: str) -> list[dict[str, Any]]:
    """Supersedes and deletes among the project's newest audit entries."""
    entries = viewer.db.audit_log(project_id=project_id, limit=HISTORY_DEPTH)
    return [e for e in entries if e["action"] in ("context.supersede", "context.delete")]


@routes.get("/projects/{project_id}", name="project")
def project_page(request: Request, project_id: str, viewer: Seeing, q: Text = "",
                 priority: Annotated[str, Query(pattern="^(|CRITICAL|HIGH|MEDIUM|LOW)$")] = "",
                 content_type: Text = "", after: Annotated[int, Query(ge=0)] = 0) -> Response:
    db = viewer.db
    searching = bool(q.strip() or content_type)
    found = db.context.search(project_id, q, priority=priority or None,
                              content_type=content_type or None,
                              limit=ITEMS_PER_PAGE) if searching else None
    return page(request, "project.html", {
        "viewer": viewer, "title": "Project", "section": "project", "project_id": project_id,
        "project": db.projects.get(project_id), "counts": db.context.counts(project_id),
        "q": q, "priority": priority, "content_type": content_type, "found": found,
        "pages": None if searching else item_pages(viewer, project_id, priority, after),
        "changes": changes(viewer, project_id),
        "priorities": [p.value for p in PRIORITY_ORDER],
    })


@routes.get("/projects/{project_id}/pack", name="pack")
def pack_page(request: Request, project_id: str, viewer: Seeing,
              budget: Annotated[int, Query(ge=0, le=10_000_000)] = DEFAULT_BUDGET) -> Response:
    error = pack = None
    try:
        built = viewer.db.context.pack(project_id, budget)
        pack = {"items": built.items, "manifest": built.manifest.to_dict(),
                "counts": built.counts()}
    except BudgetExceededError as exc:
        error = exc.message
    return page(request, "pack.html", {
        "viewer": viewer, "title": "Pack preview", "section": "pack",
        "project_id": project_id, "budget": budget, "pack": pack, "error": error})


@routes.get("/projects/{project_id}/memories", name="memories")
def memories_page(request: Request, project_id: str, viewer: Seeing, prefix: Text = "",
                  after_ns: Text = "", after_key: Text = "", ns: Text = "",
                  key: Text = "") -> Response:
    db = viewer.db
    listed = db.memories.list(project_id, prefix, limit=MEMORIES_PER_PAGE,
                              after=(after_ns, after_key) if after_ns else None,
                              include_deleted=True)
    more = len(listed) == MEMORIES_PER_PAGE
    return page(request, "memories.html", {
        "viewer": viewer, "title": "Memories", "section": "memories",
        "project_id": project_id, "memories": listed, "prefix": prefix,
        "next": (listed[-1]["namespace"], listed[-1]["key"]) if more else None,
        "ns": ns, "key": key,
        "history": db.memories.history(project_id, ns, key) if ns and key else None})


@routes.get("/projects/{project_id}/audit", name="audit")
def audit_page(request: Request, project_id: str, viewer: Seeing,
               limit: Annotated[int, Query(ge=1, le=5_000)] = 100,
               verify: bool = False) -> Response:
    db = viewer.db
    return page(request, "audit.html", {
        "viewer": viewer, "title": "Audit log", "section": "audit", "project_id": project_id,
        "entries": db.audit_log(project_id=project_id, limit=limit), "limit": limit,
        "unsealed": db.audit_chain.unsealed(project_id),
        "verification": db.audit_chain.verify(project_id) if verify else None})
