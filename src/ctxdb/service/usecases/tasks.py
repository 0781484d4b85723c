"""Tasks: a project's work queue, handed to agent instances under leases.

A task has a title, a description, an optional parent task, dependencies on other tasks of the
same project, a priority (higher first) and a status:

    pending ─(dependencies done)→ ready ─claim→ claimed ─start→ running ─complete→ done
                                    ↑                     └──────────fail───→ failed
                                    └──release / lease expired / holder crashed──┘

A task with unfinished dependencies is ``pending``; one whose dependency failed or was
cancelled is ``blocked``; ``cancel`` ends any unfinished task.

``claim`` gives one instance the highest-priority claimable task with a lease (an expiry by the
database clock) and a new ``epoch``. Every later write of the holder (start, renew, complete,
fail, release) carries that epoch: the epoch moves on whenever the lease changes hands (a new
claim, a release, the holder crashing, a cancel), so a write with an older epoch is refused
with :class:`StaleEpochError`, and one made after the lease ran out with
:class:`LeaseExpiredError`; either refusal changes nothing. A task whose lease ran out is
claimable again (the reclaim); its former holder's completion can then never count.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable
from typing import Any

from ctxdb.domain.checks import check_task_priority
from ctxdb.domain.models import LIVE_INSTANCE_STATUSES
from ctxdb.domain.validation import (
    check_choice,
    check_identifier,
    check_limit,
    check_non_negative_int,
    check_positive_id,
    check_seconds,
    check_text,
    encode_json,
)
from ctxdb.domain.vocabulary import FINISHED_TASK_STATUSES, LEASED_TASK_STATUSES, TaskStatus
from ctxdb.errors import (
    InvalidStatusError,
    InvalidTransitionError,
    LeaseExpiredError,
    StaleEpochError,
    TaskNotFoundError,
    ValidationError,
)
from ctxdb.service.common import Service, audit
from ctxdb.service.usecases.instances import require_instance
from ctxdb.service.usecases.projects import require_project
from ctxdb.storage import Row, Tx

MAX_PAGE = 1_000
MAX_LEASE_SECONDS = 7 * 24 * 3600.0
MAX_DESCRIPTION = 100_000
MAX_DEPENDENCIES = 1_000


def _task(row: Row, dependencies: Iterable[int] | None = None) -> dict[str, Any]:
    if isinstance(row.get("result"), str):  # both backends hand JSON over as text
        row["result"] = json.loads(row["result"])
    row["lease_live"] = bool(row["lease_live"])
    if dependencies is not None:
        row["depends_on"] = builtins.list(dependencies)
    return row


def require_task(tx: Tx, task_id: int, project_id: str | None = None,
                 *, lock: bool = False) -> Row:
    """The task row (locked with ``lock``); with ``project_id``, another project's task is
    refused as unknown, so that ids never reach across projects."""
    row = tx.one("lock_task" if lock else "get_task", task_id=task_id)
    if row is None or (project_id is not None and row["project_id"] != project_id):
        where = f" in project {project_id!r}" if project_id is not None else ""
        raise TaskNotFoundError(f"unknown task {task_id!r}{where}", task_id=task_id)
    return row


def _load(tx: Tx, task_id: int) -> dict[str, Any]:
    dependencies = [r["depends_on_task_id"] for r in tx.all("task_dependency_ids",
                                                            task_id=task_id)]
    return _task(require_task(tx, task_id), dependencies)


def _require_lease(row: Row, epoch: int, doing: str) -> None:
    """Refuse a holder's write unless ``epoch`` is the task's and its lease is still live."""
    task_id = row["task_id"]
    if row["epoch"] != epoch:
        raise StaleEpochError(
            f"task {task_id} is at epoch {row['epoch']}, not {epoch}: its lease has passed on, "
            f"cannot {doing}", task_id=task_id, epoch=epoch, current_epoch=row["epoch"])
    if row["status"] not in LEASED_TASK_STATUSES:
        raise InvalidTransitionError(
            f"task {task_id} is {row['status']}, not leased: cannot {doing}",
            task_id=task_id, status=row["status"])
    if not row["lease_live"]:
        raise LeaseExpiredError(
            f"the lease on task {task_id} expired at {row['lease_expires_at']}: cannot {doing}",
            task_id=task_id, epoch=epoch, lease_expires_at=row["lease_expires_at"])


class TaskService(Service):
    def create(
        self,
        project_id: str,
        title: str,
        *,
        description: str = "",
        priority: int | str = 0,
        parent_task_id: int | None = None,
        depends_on: Iterable[int] = (),
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Add a task; it is ``ready`` unless a task it depends on is not done yet."""
        check_identifier(project_id, "project_id")
        check_text(title, "title")
        if not title.strip():
            raise ValidationError("title must not be empty")
        check_text(description, "description", MAX_DESCRIPTION)
        priority = check_task_priority(priority)
        if parent_task_id is not None:
            check_positive_id(parent_task_id, "parent_task_id")
        if isinstance(depends_on, str | bytes):
            raise ValidationError("depends_on must be a list of task ids")
        dependencies = sorted({check_positive_id(d, "depends_on") for d in depends_on})
        if len(dependencies) > MAX_DEPENDENCIES:
            raise ValidationError(f"a task may depend on at most {MAX_DEPENDENCIES} tasks")
        actor = check_identifier(actor or self.settings.actor, "actor")

        def unit(tx: Tx) -> dict[str, Any]:
            require_project(tx, project_id, active=True)
            if parent_task_id is not None:
                require_task(tx, parent_task_id, project_id)
            statuses = {require_task(tx, d, project_id)["status"] for d in dependencies}
            status = TaskStatus.READY
            if statuses & {TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.BLOCKED}:
                status = TaskStatus.BLOCKED
            elif statuses - {TaskStatus.DONE}:
                status = TaskStatus.PENDING
            task_id = tx.value("insert_task", project_id=project_id,
                               parent_task_id=parent_task_id, title=title,
                               description=description, priority=priority,
                               status=status.value, created_by=actor)
            for dependency in dependencies:
                tx.execute("insert_task_dependency", task_id=task_id,
                           depends_on_task_id=dependency)
            audit(tx, actor, "task.create", "task", task_id, project_id, title=title,
                  priority=priority, status=status.value, parent_task_id=parent_task_id,
                  depends_on=dependencies)
            return _load(tx, task_id)

        return self.storage.write(unit)

    def get(self, task_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        """One task, with ``depends_on`` (the ids of the tasks it waits for)."""
        check_positive_id(task_id, "task_id")
        if project_id is not None:
            check_identifier(project_id, "project_id")

        def unit(tx: Tx) -> dict[str, Any]:
            require_task(tx, task_id, project_id)
            return _load(tx, task_id)

        return self.storage.read(unit)

    def list(
        self,
        project_id: str,
        *,
        status: str | None = None,
        lease_owner: str | None = None,
        parent_task_id: int | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> builtins.list[dict[str, Any]]:
        """A page of a project's tasks in id order; pass the last one's id as ``after``."""
        check_identifier(project_id, "project_id")
        status_value = "" if status is None else check_choice(
            status, TaskStatus, "task status", error=InvalidStatusError).value
        if lease_owner is not None:
            check_identifier(lease_owner, "lease_owner")
        if parent_task_id is not None:
            check_positive_id(parent_task_id, "parent_task_id")
        check_non_negative_int(after, "after")
        check_limit(limit, MAX_PAGE)

        def unit(tx: Tx) -> builtins.list[dict[str, Any]]:
            require_project(tx, project_id)
            if lease_owner is not None:  # a filter naming another project's record is refused
                require_instance(tx, lease_owner, project_id)
            if parent_task_id is not None:
                require_task(tx, parent_task_id, project_id)
            rows = tx.all("list_tasks", project_id=project_id, status=status_value,
                          lease_owner=lease_owner or "",
                          parent_task_id=-1 if parent_task_id is None else parent_task_id,
                          after_task_id=after, limit=limit)
            return [_task(row) for row in rows]

        return self.storage.read(unit)

    def claim(
        self, project_id: str, instance_id: str, lease_seconds: float, *,
        actor: str | None = None,
    ) -> dict[str, Any] | None:
        """Lease the highest-priority claimable task to ``instance_id`` (an instance of the
        project); ``None`` when there is none. The returned ``epoch`` fences later writes."""
        check_identifier(project_id, "project_id")
        check_identifier(instance_id, "instance_id")
        seconds = check_seconds(lease_seconds, "lease_seconds", MAX_LEASE_SECONDS)
        actor = check_identifier(actor or instance_id, "actor")

        def unit(tx: Tx) -> dict[str, Any] | None:
            require_project(tx, project_id, active=True)
            instance = require_instance(tx, instance_id, project_id)
            if instance["status"] not in LIVE_INSTANCE_STATUSES:
                # Crash detection gave its leases back: a lease now would outlive the worker.
                raise InvalidTransitionError(
                    f"instance {instance_id!r} is {instance['status']}: only an active or "
                    "idle instance can claim tasks (a heartbeat brings a crashed one back)",
                    instance_id=instance_id, status=instance["status"])
            task_id = tx.value("next_claimable_task", project_id=project_id)
            if task_id is None:
                return None
            before = require_task(tx, task_id)
            tx.execute("claim_task", task_id=task_id, instance_id=instance_id,
                       lease_seconds=seconds)
            task = _load(tx, task_id)
            audit(tx, actor, "task.claim", "task", task_id, project_id,
                  instance_id=instance_id, epoch=task["epoch"], lease_seconds=seconds,
                  reclaimed_from=(before["lease_owner"]
                                  if before["status"] in LEASED_TASK_STATUSES else None))
            return task

        return self.storage.write(unit)

    def start(self, task_id: int, epoch: int, *, project_id: str | None = None,
              actor: str | None = None) -> dict[str, Any]:
        """The holder began working: claimed → running."""

        def change(tx: Tx, row: Row) -> dict[str, Any]:
            if row["status"] != TaskStatus.CLAIMED:
                raise InvalidTransitionError(
                    f"task {task_id} is {row['status']}, not claimed: cannot start it",
                    task_id=task_id, status=row["status"])
            tx.execute("start_task", task_id=task_id)
            return {}

        return self._fenced(task_id, epoch, "start", "start it", change, actor, project_id)

    def renew(self, task_id: int, epoch: int, lease_seconds: float, *,
              project_id: str | None = None, actor: str | None = None) -> dict[str, Any]:
        """Extend a live lease to ``lease_seconds`` from now."""
        seconds = check_seconds(lease_seconds, "lease_seconds", MAX_LEASE_SECONDS)

        def change(tx: Tx, row: Row) -> dict[str, Any]:
            tx.execute("renew_task_lease", task_id=task_id, lease_seconds=seconds)
            return {"lease_seconds": seconds}

        return self._fenced(task_id, epoch, "renew", "renew its lease", change, actor, project_id)

    def complete(self, task_id: int, epoch: int, result: Any = None, *,
                 project_id: str | None = None, actor: str | None = None) -> dict[str, Any]:
        """Finish the task with ``result`` (any JSON value); pending tasks whose dependencies
        are now all done become ready."""
        result_json = None if result is None else encode_json(
            result, "task result", self.settings.max_content_bytes)

        def change(tx: Tx, row: Row) -> dict[str, Any]:
            tx.execute("finish_task", task_id=task_id, status=TaskStatus.DONE.value,
                       result=result_json, error=None)
            unblocked = [r["task_id"] for r in tx.all("unblock_dependants", task_id=task_id)]
            return {"unblocked": sorted(unblocked)}

        return self._fenced(task_id, epoch, "complete", "complete it", change, actor, project_id)

    def fail(self, task_id: int, epoch: int, error: str, *,
             project_id: str | None = None, actor: str | None = None) -> dict[str, Any]:
        """Give the task up as failed with an ``error`` message; its pending dependants are
        blocked."""
        check_text(error, "error", MAX_DESCRIPTION)

        def change(tx: Tx, row: Row) -> dict[str, Any]:
            tx.execute("finish_task", task_id=task_id, status=TaskStatus.FAILED.value,
                       result=None, error=error)
            return {"error": error, "blocked": _block_dependants(tx, task_id)}

        return self._fenced(task_id, epoch, "fail", "fail it", change, actor, project_id)

    def release(self, task_id: int, epoch: int, *, project_id: str | None = None,
                actor: str | None = None) -> dict[str, Any]:
        """Hand the task back to the queue (ready) before finishing it."""

        def change(tx: Tx, row: Row) -> dict[str, Any]:
            tx.execute("requeue_task", task_id=task_id)
            return {}

        return self._fenced(task_id, epoch, "release", "release it", change, actor, project_id)

    def cancel(self, task_id: int, *, project_id: str | None = None,
               actor: str | None = None) -> dict[str, Any]:
        """End an unfinished task (leased or not: any lease on it becomes stale)."""
        check_positive_id(task_id, "task_id")
        if project_id is not None:
            check_identifier(project_id, "project_id")
        actor = check_identifier(actor or self.settings.actor, "actor")

        def unit(tx: Tx) -> dict[str, Any]:
            row = require_task(tx, task_id, project_id, lock=True)
            require_project(tx, row["project_id"], active=True)
            if row["status"] in FINISHED_TASK_STATUSES:
                raise InvalidTransitionError(
                    f"task {task_id} is already {row['status']}: cannot cancel it",
                    task_id=task_id, status=row["status"])
            tx.execute("cancel_task", task_id=task_id)
            audit(tx, actor, "task.cancel", "task", task_id, row["project_id"],
                  previous_status=row["status"], lease_owner=row["lease_owner"],
                  blocked=_block_dependants(tx, task_id))
            return _load(tx, task_id)

        return self.storage.write(unit)

    def _fenced(self, task_id: int, epoch: int, action: str, doing: str,
                change: Any, actor: str | None, project_id: str | None) -> dict[str, Any]:
        """Run ``change`` on the locked task if ``epoch`` holds its live lease; audited. With
        ``project_id``, a task of another project is refused as unknown."""
        check_positive_id(task_id, "task_id")
        if project_id is not None:
            check_identifier(project_id, "project_id")
        check_non_negative_int(epoch, "epoch")
        actor_value = None if actor is None else check_identifier(actor, "actor")

        def unit(tx: Tx) -> dict[str, Any]:
            row = require_task(tx, task_id, project_id, lock=True)
            _require_lease(row, epoch, doing)
            require_project(tx, row["project_id"], active=True)
            details = change(tx, row)
            audit(tx, actor_value or row["lease_owner"] or self.settings.actor,
                  f"task.{action}", "task", task_id, row["project_id"], epoch=epoch,
                  instance_id=row["lease_owner"], **details)
            return _load(tx, task_id)

        return self.storage.write(unit)


def _block_dependants(tx: Tx, task_id: int) -> builtins.list[int]:
    """Block the pending tasks that wait for ``task_id`` (failed or cancelled), and theirs."""
    blocked: builtins.list[int] = []
    frontier = [task_id]
    while frontier:
        rows = tx.all("block_dependants", task_id=frontier.pop())
        ids = [r["task_id"] for r in rows]
        blocked.extend(ids)
        frontier.extend(ids)
    return sorted(blocked)
