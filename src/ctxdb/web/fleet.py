"""The fleet page: every project the token may see, its live instances and its alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from ctxdb.domain.models import InstanceStatus
from ctxdb.web.render import page, parse_time
from ctxdb.web.session import Viewer, current_viewer

routes = APIRouter()
Seeing = Annotated[Viewer, Depends(current_viewer)]
INSTANCES_PER_PAGE = 100
ALERTS_PER_KIND = 20


def visible_projects(viewer: Viewer) -> list[dict[str, Any]]:
    """The active projects the token may see, with their story points and live counts."""
    rows = viewer.db.projects.summary()
    if viewer.fleet_wide:
        return rows
    return [row for row in rows if row["project_id"] == viewer.token["project_id"]]


def heartbeat_late(instance: dict[str, Any], stale_after: float, now: datetime) -> bool:
    """A live instance whose last heartbeat is older than the crash timeout: it will be
    marked crashed at the next reaping, and is shown so now."""
    beat = parse_time(instance["last_heartbeat"])
    live = instance["status"] in (InstanceStatus.ACTIVE, InstanceStatus.IDLE)
    return live and beat is not None and (now - beat).total_seconds() > stale_after


def project_view(viewer: Viewer, summary: dict[str, Any], now: datetime) -> dict[str, Any]:
    db, project_id = viewer.db, summary["project_id"]
    instances = db.instances.list(project_id)
    near = {row["instance_id"] for row in db.tokens.all_usage(project_id)["instances"]
            if row["status"] == "warning"}
    by_status = {status.value: 0 for status in InstanceStatus}
    for instance in instances:
        by_status[instance["status"]] += 1
        instance["near_threshold"] = instance["instance_id"] in near
        instance["late"] = heartbeat_late(instance, db.settings.stale_after, now)
    shown = [i for i in instances if i["status"] != InstanceStatus.COMPLETED]
    shown.sort(key=lambda i: (i["status"] != InstanceStatus.CRASHED, i["instance_id"]))
    total, done = summary["total_story_points"] or 0, summary["completed_story_points"] or 0
    return {
        **summary,
        "phase": db.phases.current(project_id),
        "points": {"done": done, "total": total},
        "by_status": by_status,
        "instances": shown,
        "alerts": alerts(viewer, project_id, instances),
    }


def alerts(viewer: Viewer, project_id: str,
           instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What needs a person: crashed or late instances, instances near their clear threshold,
    pending approvals and failed tasks."""
    db = viewer.db
    found: list[dict[str, Any]] = []
    for instance in instances:
        if instance["status"] == InstanceStatus.CRASHED or instance["late"]:
            found.append({"kind": "crashed", "instance_id": instance["instance_id"],
                          "text": f"{instance['instance_id']} crashed (last heartbeat "
                                  f"{instance['last_heartbeat']})"})
        elif instance["near_threshold"]:
            found.append({"kind": "threshold", "instance_id": instance["instance_id"],
                          "text": f"{instance['instance_id']} is near its clear threshold"})
    for gate in db.approvals.list(project_id, status="pending", limit=ALERTS_PER_KIND):
        found.append({"kind": "approval", "gate_id": gate["gate_id"],
                      "text": f"approval {gate['gate_id']} waits: "
                              f"{gate['title'] or gate['gate_type']}"})
    for task in db.tasks.list(project_id, status="failed", limit=ALERTS_PER_KIND):
        found.append({"kind": "failed", "task_id": task["task_id"],
                      "text": f"task {task['task_id']} failed: {task['title']}"})
    return found


def fleet_view(viewer: Viewer, page_number: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    projects = [project_view(viewer, row, now) for row in visible_projects(viewer)]
    start = page_number * INSTANCES_PER_PAGE
    more = False
    for project in projects:
        more = more or len(project["instances"]) > start + INSTANCES_PER_PAGE
        project["instances"] = project["instances"][start:start + INSTANCES_PER_PAGE]
    return {"projects": projects, "page_number": page_number, "more": more,
            "threshold": viewer.db.settings.clear_threshold}


@routes.get("/", name="fleet")
def fleet(request: Request, viewer: Seeing,
          page_number: Annotated[int, Query(alias="page", ge=0, le=100_000)] = 0) -> Response:
    # A project's token sees one project: the navigation leads straight to its pages.
    return page(request, "fleet.html", {"viewer": viewer, "title": "Fleet",
                                        "project_id": viewer.token["project_id"],
                                        **fleet_view(viewer, page_number)})
