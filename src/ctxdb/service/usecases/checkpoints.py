"""Checkpoints: snapshots of an agent instance's working state, to resume from.

An instance saves its state (any JSON value: the step it is on, what it has done, the files
it holds open) under an optional ``label``; the checkpoint also keeps the instance's phase
and generation at that moment. Checkpoints are never changed: a later save is a new one, and
:meth:`CheckpointService.latest` finds the newest (of an instance, of a label, or of the whole
project) — the one an instance reads back after a crash, ``/clear`` or a restart.

A save carries an idempotency key (one is made up when the caller gives none): saving the
same state again with a key the project already holds returns that checkpoint and writes
nothing; another state, label or instance under that key is refused with
:class:`IdempotencyConflictError`.
"""

from __future__ import annotations

import builtins
import json
from typing import Any

from ctxdb.domain.ids import new_idempotency_key
from ctxdb.domain.validation import (
    check_identifier,
    check_limit,
    check_non_negative_int,
    check_positive_id,
    check_text,
    encode_json,
)
from ctxdb.errors import CheckpointNotFoundError
from ctxdb.service.common import Service, audit, same_request
from ctxdb.service.usecases.instances import require_instance
from ctxdb.service.usecases.projects import require_project
from ctxdb.storage import Row, Tx

MAX_PAGE = 1_000
MAX_LABEL = 200


def _checkpoint(row: Row) -> dict[str, Any]:
    if isinstance(row.get("state"), str):  # both backends hand JSON over as text
        row["state"] = json.loads(row["state"])
    return row


def require_checkpoint(tx: Tx, checkpoint_id: int,
                       project_id: str | None = None) -> dict[str, Any]:
    """The checkpoint; with ``project_id``, another project's is refused as unknown."""
    row = tx.one("get_checkpoint", checkpoint_id=checkpoint_id)
    if row is None or (project_id is not None and row["project_id"] != project_id):
        where = f" in project {project_id!r}" if project_id is not None else ""
        raise CheckpointNotFoundError(f"unknown checkpoint {checkpoint_id}{where}",
                                      checkpoint_id=checkpoint_id)
    return _checkpoint(row)


class CheckpointService(Service):
    def save(
        self,
        instance_id: str,
        state: Any,
        *,
        label: str = "",
        project_id: str | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Save ``state`` (any JSON value) as the instance's newest checkpoint, with the
        instance's current phase and generation. With ``project_id``, an instance of another
        project is refused."""
        check_identifier(instance_id, "instance_id")
        state_json = encode_json(state, "checkpoint state", self.settings.max_content_bytes)
        check_text(label, "label", MAX_LABEL)
        if project_id is not None:
            check_identifier(project_id, "project_id")
        key = check_identifier(idempotency_key or new_idempotency_key(), "idempotency_key")
        actor = check_identifier(actor or instance_id, "actor")

        def unit(tx: Tx) -> dict[str, Any]:
            instance = require_instance(tx, instance_id, project_id)
            pid = instance["project_id"]
            existing = tx.value("checkpoint_by_key", project_id=pid, idempotency_key=key)
            if existing is not None:
                return same_request(require_checkpoint(tx, existing), {
                    "instance_id": instance_id, "label": label,
                    "state": json.loads(state_json)}, what="checkpoint", key=key,
                    id_field="checkpoint_id")
            require_project(tx, pid, active=True)
            checkpoint_id = tx.value(
                "insert_checkpoint", project_id=pid, instance_id=instance_id,
                phase_id=instance["phase_id"], generation=instance["generation"], label=label,
                state=state_json, created_by=actor, idempotency_key=key)
            audit(tx, actor, "checkpoint.save", "checkpoint", checkpoint_id, pid,
                  instance_id=instance_id, label=label, generation=instance["generation"],
                  bytes=len(state_json.encode("utf-8")))
            return require_checkpoint(tx, checkpoint_id)

        return self.storage.write(unit)

    def get(self, checkpoint_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        check_positive_id(checkpoint_id, "checkpoint_id")
        if project_id is not None:
            check_identifier(project_id, "project_id")
        return self.storage.read(lambda tx: require_checkpoint(tx, checkpoint_id, project_id))

    def latest(self, project_id: str, *, instance_id: str | None = None,
               label: str | None = None) -> dict[str, Any] | None:
        """The newest checkpoint of the project (of ``instance_id`` and with ``label`` when
        given); ``None`` when there is none."""
        check_identifier(project_id, "project_id")
        self._check_filters(instance_id, label)

        def unit(tx: Tx) -> dict[str, Any] | None:
            require_project(tx, project_id)
            if instance_id is not None:
                require_instance(tx, instance_id, project_id)
            row = tx.one("latest_checkpoint", project_id=project_id,
                         instance_id=instance_id or "", label=label or "")
            return None if row is None else _checkpoint(row)

        return self.storage.read(unit)

    def list(
        self,
        project_id: str,
        *,
        instance_id: str | None = None,
        label: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> builtins.list[dict[str, Any]]:
        """A page of the project's checkpoints, oldest first; pass the last one's id as
        ``after``."""
        check_identifier(project_id, "project_id")
        self._check_filters(instance_id, label)
        check_non_negative_int(after, "after")
        check_limit(limit, MAX_PAGE)

        def unit(tx: Tx) -> builtins.list[dict[str, Any]]:
            require_project(tx, project_id)
            if instance_id is not None:  # a filter naming another project's record is refused
                require_instance(tx, instance_id, project_id)
            rows = tx.all("list_checkpoints", project_id=project_id,
                          instance_id=instance_id or "", label=label or "",
                          after_checkpoint_id=after, limit=limit)
            return [_checkpoint(row) for row in rows]

        return self.storage.read(unit)

    @staticmethod
    def _check_filters(instance_id: str | None, label: str | None) -> None:
        if instance_id is not None:
            check_identifier(instance_id, "instance_id")
        if label is not None:
            check_text(label, "label", MAX_LABEL)
