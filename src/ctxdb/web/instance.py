"""The instance page: its token gauge, usage over time, generations and handoffs (every
one, newest first, paged), checkpoints, and what was injected into it (the recorded
injections with their items)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from ctxdb.errors import ContextItemNotFoundError, InstanceNotFoundError
from ctxdb.web.charts import api_points, audit_points, chart
from ctxdb.web.render import page
from ctxdb.web.session import Viewer, current_viewer

routes = APIRouter()
Seeing = Annotated[Viewer, Depends(current_viewer)]
AUDIT_DEPTH = 500
INJECTIONS_SHOWN = 20
ITEMS_PER_INJECTION = 30
CHECKPOINTS_SHOWN = 50
HANDOFFS_PER_PAGE = 10


def instance_of(viewer: Viewer, project_id: str, instance_id: str) -> dict[str, Any]:
    """The instance, when it belongs to the project: another project's answers as unknown."""
    instance = viewer.db.instances.get(instance_id)
    if instance["project_id"] != project_id:
        raise InstanceNotFoundError(f"unknown instance {instance_id!r}", instance_id=instance_id)
    return instance


def injected_items(viewer: Viewer, project_id: str, ids: list[int]) -> list[dict[str, Any]]:
    items = []
    for item_id in ids[:ITEMS_PER_INJECTION]:
        try:
            items.append(viewer.db.context.get(int(item_id), project_id))
        except ContextItemNotFoundError:  # archived by gc since: named, not shown
            items.append({"item_id": item_id, "missing": True})
    return items


def injections(viewer: Viewer, project_id: str, instance_id: str) -> list[dict[str, Any]]:
    """The newest injections first, each with the items it held."""
    rows = viewer.db.sessions.injections(instance_id)[-INJECTIONS_SHOWN:]
    return [{**row, "items": injected_items(viewer, project_id, row["item_ids"] or []),
             "more_items": max(0, len(row["item_ids"] or []) - ITEMS_PER_INJECTION)}
            for row in reversed(rows)]


def history(viewer: Viewer, instance: dict[str, Any]) -> dict[str, Any]:
    """Usage over time, and the generations: each clear that saved a handoff."""
    db = viewer.db
    entries = db.audit_log(project_id=instance["project_id"],
                           entity_id=instance["instance_id"], limit=AUDIT_DEPTH)
    points = audit_points(entries)
    if instance["session_id"]:
        points += api_points(db.transcripts.usage(instance["session_id"])["responses"])
    generations = [entry for entry in entries if entry["action"].startswith("tokens.clear")
                   or entry["action"] == "tokens.handoff"]
    return {"chart": chart(points, instance["context_window"], db.settings.clear_threshold),
            "generations": generations}


def handoffs(viewer: Viewer, project_id: str, instance_id: str,
             before_id: int | None) -> dict[str, Any]:
    """A page of the instance's handoffs, newest first, and whether older ones remain."""
    rows = viewer.db.tokens.handoffs(instance_id, project_id, before_id=before_id,
                                     limit=HANDOFFS_PER_PAGE + 1)
    return {"handoffs": rows[:HANDOFFS_PER_PAGE], "handoffs_before": before_id,
            "older_handoffs": len(rows) > HANDOFFS_PER_PAGE}


@routes.get("/projects/{project_id}/instances/{instance_id}", name="instance")
def instance_page(request: Request, project_id: str, instance_id: str, viewer: Seeing,
                  handoffs_before: Annotated[int | None, Query(ge=1)] = None) -> Response:
    instance = instance_of(viewer, project_id, instance_id)
    db = viewer.db
    return page(request, "instance.html", {
        "viewer": viewer, "title": f"Instance {instance_id}", "section": "instance",
        "project_id": project_id, "instance": instance,
        "threshold": db.settings.clear_threshold,
        **handoffs(viewer, project_id, instance_id, handoffs_before),
        "checkpoints": db.checkpoints.list(project_id, instance_id=instance_id,
                                           limit=CHECKPOINTS_SHOWN),
        "injections": injections(viewer, project_id, instance_id),
        **history(viewer, instance),
    })
