"""The work page: the task board, messages between instances, command runs with their
output, and the approvals inbox where a person approves or rejects a pending gate with a
reason."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from ctxdb.domain.vocabulary import GateStatus, TaskStatus
from ctxdb.errors import ValidationError
from ctxdb.web.render import page
from ctxdb.web.session import Viewer, current_viewer, posting_viewer

routes = APIRouter()
Seeing = Annotated[Viewer, Depends(current_viewer)]
TASKS_PER_COLUMN = 50
RUNS_PER_PAGE = 50
MESSAGES_PER_PAGE = 50
RECENT_DECISIONS = 20
MAX_REASON = 2_000
BOARD = (TaskStatus.READY, TaskStatus.CLAIMED, TaskStatus.RUNNING, TaskStatus.BLOCKED,
         TaskStatus.PENDING, TaskStatus.FAILED, TaskStatus.DONE)


def task_board(viewer: Viewer, project_id: str) -> list[dict[str, Any]]:
    return [{"status": status.value,
             "tasks": viewer.db.tasks.list(project_id, status=status.value,
                                           limit=TASKS_PER_COLUMN)}
            for status in BOARD]


def approvals(viewer: Viewer, project_id: str) -> dict[str, Any]:
    db = viewer.db
    pending = db.approvals.list(project_id, status=GateStatus.PENDING.value, limit=100)
    decided = [gate for gate in db.approvals.list(project_id, limit=1_000)
               if gate["status"] != GateStatus.PENDING]
    return {"pending": pending, "decided": list(reversed(decided[-RECENT_DECISIONS:]))}


def runs(viewer: Viewer, project_id: str, after: int, run_id: int | None) -> dict[str, Any]:
    listed = viewer.db.commands.list(project_id, after=after, limit=RUNS_PER_PAGE)
    shown = viewer.db.commands.get(run_id, project_id=project_id) if run_id else None
    more = len(listed) == RUNS_PER_PAGE
    return {"runs": listed, "run": shown, "runs_after": after,
            "next_after": listed[-1]["run_id"] if more else None}


def messages(viewer: Viewer, project_id: str, before: int) -> dict[str, Any]:
    listed = viewer.db.messages.list(project_id, before=before, limit=MESSAGES_PER_PAGE)
    more = len(listed) == MESSAGES_PER_PAGE
    return {"messages": listed, "messages_before": before,
            "older": listed[-1]["message_id"] if more else None}


@routes.get("/projects/{project_id}/work", name="work")
def work(request: Request, project_id: str, viewer: Seeing,
         runs_after: Annotated[int, Query(ge=0)] = 0,
         run: Annotated[int | None, Query(ge=1)] = None,
         messages_before: Annotated[int, Query(ge=0)] = 0) -> Response:
    return page(request, "work.html", {
        "viewer": viewer, "title": "Work", "section": "work", "project_id": project_id,
        "project": viewer.db.projects.get(project_id),
        "board": task_board(viewer, project_id),
        **approvals(viewer, project_id),
        **runs(viewer, project_id, runs_after, run),
        **messages(viewer, project_id, messages_before),
    })


def decide(viewer: Viewer, project_id: str, gate_id: int, form: dict[str, str]) -> None:
    viewer.need_write()
    decision, reason = form.get("decision", ""), form.get("reason", "").strip()
    if decision not in ("approve", "reject"):
        raise ValidationError("decision must be approve or reject", decision=decision)
    if len(reason) > MAX_REASON:
        raise ValidationError(f"the reason is longer than {MAX_REASON} characters")
    response = {"reason": reason, "via": "dashboard"}
    verb = viewer.db.approvals.approve if decision == "approve" else viewer.db.approvals.reject
    verb(gate_id, response, project_id=project_id, actor=viewer.actor)


@routes.post("/projects/{project_id}/approvals/{gate_id}", name="decide")
async def decide_gate(request: Request, project_id: str, gate_id: int) -> Response:
    viewer, form = await posting_viewer(request)
    await run_in_threadpool(decide, viewer, project_id, gate_id, form)
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/projects/{project_id}/work", status_code=303)
