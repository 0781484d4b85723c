"""What the ``/v1`` routes share: the scope each needs (``Reader``, ``Writer``,
``FleetAdmin``), the ``Idempotency-Key`` header, and the lookups of a record by id within the
caller's project, so that another project's id answers exactly like an unknown one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header

from ctxdb.errors import (
    ConflictError,
    ContextItemNotFoundError,
    InstanceNotFoundError,
)
from ctxdb.http.auth import ADMIN, FLEET_ADMIN, READ, WRITE, Caller

# Honoured by every create: a retry with the same key and body gets the first answer
# (service/idempotency.py).
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
Reader = Annotated[Caller, Depends(READ)]
Writer = Annotated[Caller, Depends(WRITE)]
Admin = Annotated[Caller, Depends(ADMIN)]
FleetAdmin = Annotated[Caller, Depends(FLEET_ADMIN)]


def item_of(caller: Caller, project_id: str, item_id: int) -> dict[str, Any]:
    item = caller.db.context.get(item_id)
    if item["project_id"] != caller.project(project_id):
        raise ContextItemNotFoundError(f"unknown context item {item_id}", item_id=item_id)
    return item


def instance_of(caller: Caller, project_id: str, instance_id: str) -> dict[str, Any]:
    instance = caller.db.instances.get(instance_id)
    if instance["project_id"] != caller.project(project_id):
        raise InstanceNotFoundError(f"unknown instance {instance_id!r}",
                                    instance_id=instance_id)
    return instance


def taken_elsewhere(caller: Caller, project_id: str, instance_id: str) -> None:
    """An instance id a client chose that another project already holds: refused without
    naming that project (ids are global, so only that the id is taken can be said)."""
    try:
        instance = caller.db.instances.get(instance_id)
    except InstanceNotFoundError:
        return
    if instance["project_id"] != project_id:
        raise ConflictError(f"instance id {instance_id!r} is taken: launch with another id, "
                            f"or none to get a new one", instance_id=instance_id)


def project_naming(caller: Caller, project_id: str, instance_id: str | None) -> str:
    """The URL's project, when the instance a body or filter names (if any) is one of its
    own: another project's instance answers like an unknown one, where the service's own
    refusal would name the project it belongs to."""
    pid = caller.project(project_id)
    if instance_id is not None:
        instance_of(caller, pid, instance_id)
    return pid
