"""Agent instances: registration, heartbeats, ending, and crash detection."""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from typing import Any

from ctxdb.domain.ids import new_instance_id
from ctxdb.domain.models import LIVE_INSTANCE_STATUSES, InstanceStatus, parse_status
from ctxdb.domain.validation import (
    MAX_INTEGER,
    check_identifier,
    check_metadata,
    check_non_negative_int,
    check_optional_int,
    check_text,
    encode_json,
)
from ctxdb.errors import (
    InstanceNotFoundError,
    InvalidTransitionError,
    TooManyInstancesError,
    ValidationError,
)
from ctxdb.logs import get_logger
from ctxdb.service.common import Service, audit, decode, decode_all
from ctxdb.service.idempotency import claim_of, write_once
from ctxdb.service.usecases.phases import require_phase
from ctxdb.service.usecases.projects import refuse_archived, require_project
from ctxdb.settings import Settings
from ctxdb.storage import Row, Tx

log = get_logger(__name__)
_OPTIONAL_TEXT = ("client", "session_id", "worktree", "branch", "model", "hostname")


def require_instance(tx: Tx, instance_id: str, project_id: str | None = None) -> dict[str, Any]:
    """The instance row; with ``project_id``, an instance of another project is refused."""
    row = tx.one("get_instance", instance_id=check_identifier(instance_id, "instance_id"))
    return instance_of_project(row, instance_id, project_id)


def instance_of_project(row: Row | None, instance_id: str,
                        project_id: str | None = None) -> dict[str, Any]:
    """``row``, the instance read (or locked) by id: typed refusals when there is none or,
    with ``project_id``, when it belongs to another project."""
    if row is None:
        raise InstanceNotFoundError(f"unknown instance {instance_id!r}", instance_id=instance_id)
    if project_id is not None and row["project_id"] != project_id:
        raise ValidationError(
            f"instance {instance_id!r} belongs to project {row['project_id']!r}, "
            f"not {project_id!r}",
            instance_id=instance_id,
        )
    return decode(row)


def reap_stale(
    tx: Tx, settings: Settings, actor: str, project_id: str = ""
) -> list[dict[str, Any]]:
    """Mark live instances whose heartbeat is older than ``stale_after`` as crashed, and put
    the tasks they held leases on back in the queue (the epoch moves on: their writes are
    stale)."""
    crashed = tx.all("reap_stale_instances", stale_after=settings.stale_after,
                     project_id=project_id)
    _reaped(tx, settings, actor, crashed)
    return crashed


def _reaped(tx: Tx, settings: Settings, actor: str, crashed: list[dict[str, Any]]) -> None:
    """What follows the instances marked crashed: their audit rows, their leases released."""
    for row in crashed:
        log.info("reaping instance %s of %s: no heartbeat since %s (stale after %s s); it "
                 "is marked crashed and its task leases go back to the queue",
                 row["instance_id"], row["project_id"], row["last_heartbeat"],
                 settings.stale_after)
        audit(tx, actor, "instance.crashed", "instance", row["instance_id"], row["project_id"],
              last_heartbeat=row["last_heartbeat"], stale_after=settings.stale_after)
        for task in tx.all("release_tasks_of_instance", instance_id=row["instance_id"]):
            audit(tx, actor, "task.release", "task", task["task_id"], task["project_id"],
                  epoch=task["epoch"], instance_id=row["instance_id"],
                  reason="instance crashed")


class InstanceService(Service):
    def launch(self, project_id: str, phase_id: int | None = None, *,
               actor: str | None = None, idempotency_key: str | None = None,
               **fields: Any) -> dict[str, Any]:
        """Register an instance (see :meth:`validated_fields` for the accepted fields).

        Registering an id that already exists in the project revives that instance. With
        ``idempotency_key``, a retry gets the first answer (the request is the fields given,
        not the defaults filled in, which differ between processes).
        """
        values = self.validated_fields(project_id, phase_id, **fields)
        claim = claim_of(values["project_id"], "instance.launch", idempotency_key,
                         {"phase_id": phase_id, **fields})
        return write_once(self.storage, claim, lambda tx: self.register(tx, values, actor))

    def validated_fields(
        self,
        project_id: str,
        phase_id: int | None = None,
        *,
        instance_id: str | None = None,
        hostname: str | None = None,
        process_id: int | None = None,
        client: str = "api",
        session_id: str | None = None,
        worktree: str | None = None,
        branch: str | None = None,
        model: str | None = None,
        context_window: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Check and complete the fields of a new instance before any transaction starts."""
        import socket  # here, not at the top: a prompt hook never registers an instance

        fields = {
            "instance_id": check_identifier(instance_id or new_instance_id(), "instance_id"),
            "project_id": check_identifier(project_id, "project_id"),
            "phase_id": check_optional_int(phase_id, "phase_id"),
            "hostname": socket.gethostname() if hostname is None else hostname,
            "process_id": os.getpid() if process_id is None else check_non_negative_int(
                process_id, "process_id", MAX_INTEGER),
            "client": client, "session_id": session_id, "worktree": worktree,
            "branch": branch, "model": model,
            "context_window": self.settings.context_window if context_window is None
            else check_non_negative_int(context_window, "context_window", MAX_INTEGER),
            "metadata": encode_json(check_metadata(metadata), "metadata"),
        }
        for name in _OPTIONAL_TEXT:
            if fields[name] is not None:
                check_text(fields[name], name, 4_096)
        if int(fields["context_window"] or 0) < 1:
            raise ValidationError("context_window must be at least 1 token")
        return fields

    def register(self, tx: Tx, fields: dict[str, Any], actor: str | None) -> dict[str, Any]:
        """Insert or revive an instance inside the caller's transaction."""
        instance, joined = self.enter(tx, fields, actor)
        if joined:
            self.make_room(tx, instance["project_id"])
        return instance

    def enter(self, tx: Tx, fields: dict[str, Any], actor: str | None, *,
              project: Mapping[str, Any] | None = None,
              existing: Row | None = None,
              existing_read: bool = False) -> tuple[dict[str, Any], bool]:
        """Insert or revive an instance, and say whether it became live (a new one, or one
        that had crashed or ended). The project's room for it is not checked here: the caller
        must call :meth:`make_room` before its transaction ends when it did, as late as it
        can, since that holds the project's registrations back until COMMIT.

        ``project`` and ``existing``: the project's row and the instance's, when the caller
        has read them in this transaction already (they are not read again); with
        ``existing_read``, ``existing`` None says there is no instance of that id."""
        project_id, instance_id = fields["project_id"], fields["instance_id"]
        actor = actor or instance_id
        if project is None:
            require_project(tx, project_id, active=True)
        else:
            refuse_archived(project)
        if fields["phase_id"] is not None:
            require_phase(tx, fields["phase_id"], project_id)
        if existing is None and not existing_read:
            existing = tx.one("get_instance", instance_id=instance_id)
        if existing is not None:
            return self._revive(tx, existing, fields, actor)
        inserted = tx.one("insert_instance", **fields)
        audit(tx, actor, "instance.launch", "instance", instance_id, project_id,
              client=fields["client"], session_id=fields["session_id"],
              hostname=fields["hostname"], process_id=fields["process_id"])
        return instance_of_project(inserted, instance_id), True

    def _revive(
        self, tx: Tx, existing: dict[str, Any], fields: dict[str, Any], actor: str
    ) -> tuple[dict[str, Any], bool]:
        instance_id = existing["instance_id"]
        if existing["project_id"] != fields["project_id"]:
            raise ValidationError(
                f"instance {instance_id!r} belongs to project {existing['project_id']!r}, "
                f"not {fields['project_id']!r}",
                instance_id=instance_id,
            )
        revived = tx.one("revive_instance", instance_id=instance_id, phase_id=fields["phase_id"])
        audit(tx, actor, "instance.register", "instance", instance_id, fields["project_id"],
              previous_status=existing["status"])
        joined = existing["status"] not in LIVE_INSTANCE_STATUSES
        return instance_of_project(revived, instance_id), joined

    def make_room(self, tx: Tx, project_id: str) -> None:
        """Refuse (``TooManyInstancesError``) an instance this transaction has just made live
        when, with it, the project has more than ``max_instances_per_project`` live ones.

        Exact under concurrency: the count runs under a lock on the project's registrations
        (``lock_project_instances``: PostgreSQL's advisory lock, held to COMMIT; SQLite's one
        writer), so every registration counts the ones that took the lock before it as
        committed, and each later one counts this one. The lock is not the project's row:
        the stores' sequence draws (an update of that row) do not wait for it. Silent
        instances are marked crashed first, so they hold no room."""
        # Deferred: the lock travels with the reap (one round trip), which the server runs
        # only once it holds the lock.
        tx.defer("lock_project_instances", project_id=project_id)
        if tx.chains_writes:  # the reap and the count in one statement, one round trip
            rows = tx.all("reap_stale_and_count_live", stale_after=self.settings.stale_after,
                          project_id=project_id)
            _reaped(tx, self.settings, self.settings.actor,
                    [row for row in rows if row["instance_id"] is not None])
            live = int(rows[0]["n"])
        else:
            reap_stale(tx, self.settings, self.settings.actor, project_id)
            live = int(tx.value("count_live_instances", project_id=project_id))
        others = live - 1
        limit = self.settings.max_instances_per_project
        if others >= limit:
            raise TooManyInstancesError(
                f"project {project_id!r} already has {others} live instances, the limit is "
                f"{limit} (setting max_instances_per_project)",
                project_id=project_id, limit=limit,
            )

    def get(self, instance_id: str) -> dict[str, Any]:
        return self.storage.read(lambda tx: require_instance(tx, instance_id))

    def list(
        self, project_id: str | None = None, status: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The instances, oldest first; ``silent`` marks a live one without a heartbeat for
        ``stale_after`` seconds (crash detection marks it crashed at its next run)."""
        status_value = "" if status is None else parse_status(InstanceStatus, status).value

        def unit(tx: Tx) -> list[dict[str, Any]]:
            if project_id is not None:
                require_project(tx, project_id)
            rows = decode_all(tx.all("list_instances", project_id=project_id or "",
                                     status=status_value,
                                     stale_after=self.settings.stale_after))
            for row in rows:
                row["silent"] = bool(row["silent"])
            return rows

        return self.storage.read(unit)

    def heartbeat(
        self, instance_id: str, phase_id: int | None = None, actor: str | None = None, *,
        project_id: str | None = None,
    ) -> dict[str, Any]:
        """Record that the instance is alive; a crashed instance that beats again is revived
        (``TooManyInstancesError`` when its project has no room for another live one). With
        ``project_id``, an instance of another project is refused."""

        def unit(tx: Tx) -> dict[str, Any]:
            instance = require_instance(tx, instance_id, project_id)
            if instance["status"] == "completed":
                raise InvalidTransitionError(
                    f"instance {instance_id!r} has ended; launch a new one",
                    instance_id=instance_id,
                )
            if phase_id is not None:
                require_phase(tx, phase_id, instance["project_id"])
            tx.execute("heartbeat_instance", instance_id=instance_id, phase_id=phase_id)
            if instance["status"] not in LIVE_INSTANCE_STATUSES:
                self.make_room(tx, instance["project_id"])
            audit(tx, actor or instance_id, "instance.heartbeat", "instance", instance_id,
                  instance["project_id"], previous_status=instance["status"])
            return require_instance(tx, instance_id)

        return self.storage.write(unit)

    def set_status(
        self, instance_id: str, status: str, actor: str | None = None
    ) -> dict[str, Any]:
        target = parse_status(InstanceStatus, status)

        def unit(tx: Tx) -> dict[str, Any]:
            instance = require_instance(tx, instance_id)
            if instance["status"] == "completed" and target != InstanceStatus.COMPLETED:
                raise InvalidTransitionError(
                    f"instance {instance_id!r} has ended; it cannot become {target.value}",
                    instance_id=instance_id,
                )
            tx.execute("set_instance_status", instance_id=instance_id, status=target.value)
            if (target in LIVE_INSTANCE_STATUSES
                    and instance["status"] not in LIVE_INSTANCE_STATUSES):
                self.make_room(tx, instance["project_id"])
            audit(tx, actor or self.settings.actor, f"instance.{target.value}", "instance",
                  instance_id, instance["project_id"], previous_status=instance["status"])
            return require_instance(tx, instance_id)

        return self.storage.write(unit)

    def end(self, instance_id: str, actor: str | None = None) -> dict[str, Any]:
        """Mark the instance completed (its session ended normally)."""
        return self.set_status(instance_id, InstanceStatus.COMPLETED.value, actor)

    def reap_stale(self, project_id: str | None = None) -> builtins.list[dict[str, Any]]:
        """Mark instances without a heartbeat for ``stale_after`` seconds as crashed."""

        def unit(tx: Tx) -> builtins.list[dict[str, Any]]:
            if project_id is not None:
                require_project(tx, project_id)
            return reap_stale(tx, self.settings, self.settings.actor, project_id or "")

        return self.storage.write(unit)
