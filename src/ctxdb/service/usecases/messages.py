"""Messages between agent instances of a project, delivered at least once.

A message is addressed to one instance of the project, to a role (every instance whose
``metadata`` has that ``"role"``), or broadcast to the whole project; role and broadcast
messages are not delivered to the instance that sent them. Its body is any JSON value.

Each consuming instance has its own delivery of a message: :meth:`MessageService.inbox` hands
out the messages addressed to the instance that it has not acknowledged and that are visible
to it, and hides each one from it for ``visibility_seconds`` (by the database clock). A
consumer that crashes before :meth:`MessageService.ack` gets the message again once that time
has passed; an acknowledged message is never delivered to that consumer again. A message can
be promoted into a memory or a context item (see :meth:`MessageService.promote`).
"""

from __future__ import annotations

import builtins
import json
from typing import TYPE_CHECKING, Any

from ctxdb.domain.checks import check_namespace, check_recipient
from ctxdb.domain.models import Priority
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
from ctxdb.domain.vocabulary import PromotionTarget, RecipientKind
from ctxdb.errors import MessageNotFoundError, ValidationError
from ctxdb.service.common import audit, decode_all
from ctxdb.service.idempotency import claim_of, write_once
from ctxdb.service.usecases.context import KeyTaken
from ctxdb.service.usecases.instances import require_instance
from ctxdb.service.usecases.projects import require_project
from ctxdb.settings import Settings
from ctxdb.storage import Row, Storage, Tx

if TYPE_CHECKING:
    from ctxdb.service.usecases.context import ContextService
    from ctxdb.service.usecases.memories import MemoryService

MAX_INBOX = 1_000
MAX_SUBJECT = 1_000
MAX_VISIBILITY_SECONDS = 7 * 24 * 3600.0


def role_of(instance: dict[str, Any]) -> str:
    """The instance's role: its metadata's ``"role"`` text, or ``""`` when it has none."""
    metadata = instance.get("metadata")
    role = metadata.get("role") if isinstance(metadata, dict) else None
    return role if isinstance(role, str) else ""


def _message(row: Row) -> dict[str, Any]:
    if isinstance(row.get("body"), str):  # both backends hand JSON over as text
        row["body"] = json.loads(row["body"])
    return row


def require_message(tx: Tx, message_id: int, project_id: str | None = None) -> dict[str, Any]:
    row = tx.one("get_message", message_id=message_id)
    if row is None or (project_id is not None and row["project_id"] != project_id):
        where = "" if project_id is None else f" in project {project_id!r}"
        raise MessageNotFoundError(f"unknown message {message_id}{where}",
                                   message_id=message_id)
    return _message(row)


def _addressed_to(message: dict[str, Any], instance: dict[str, Any]) -> bool:
    kind, recipient = message["recipient_kind"], message["recipient"]
    if message["project_id"] != instance["project_id"]:
        return False
    if kind == RecipientKind.INSTANCE:
        return bool(recipient == instance["instance_id"])
    if message["sender"] == instance["instance_id"]:
        return False
    return bool(kind == RecipientKind.BROADCAST or recipient == role_of(instance))


class MessageService:
    def __init__(self, storage: Storage, settings: Settings, memories: MemoryService,
                 context: ContextService) -> None:
        self.storage = storage
        self.settings = settings
        self.memories = memories
        self.context = context

    def send(self, project_id: str, recipient_kind: str, recipient: str | None, body: Any, *,
             subject: str = "", sender: str | None = None,
             idempotency_key: str | None = None) -> dict[str, Any]:
        """Send ``body`` (any JSON value) to an instance of the project (``"instance"``), to
        the instances of a role (``"role"``) or to all of them (``"broadcast"``, recipient
        ``None``). ``sender`` is an instance id or an actor (the settings' actor by default);
        an instance of another project is refused. With ``idempotency_key``, a retry gets
        the first answer."""
        check_identifier(project_id, "project_id")
        kind, to = check_recipient(recipient_kind, recipient)
        body_json = encode_json(body, "message body", self.settings.max_content_bytes)
        check_text(subject, "subject", MAX_SUBJECT)
        claim = claim_of(project_id, "message.send", idempotency_key, {
            "recipient_kind": kind.value, "recipient": to, "body": body, "subject": subject,
            "sender": sender})
        sender = check_identifier(sender or self.settings.actor, "sender")

        def unit(tx: Tx) -> dict[str, Any]:
            require_project(tx, project_id, active=True)
            if kind is RecipientKind.INSTANCE:
                require_instance(tx, str(to), project_id)
            if tx.one("get_instance", instance_id=sender) is not None:
                # A sender naming an instance speaks for it: it must be one of the project's.
                require_instance(tx, sender, project_id)
            message_id = tx.value("insert_message", project_id=project_id, sender=sender,
                                  recipient_kind=kind.value, recipient=to, subject=subject,
                                  body=body_json)
            audit(tx, sender, "message.send", "message", message_id, project_id,
                  recipient_kind=kind.value, recipient=to, subject=subject)
            message = require_message(tx, message_id)
            # Who would receive it now: 0 for a role no live instance has yet (it waits
            # for one), which a sender would otherwise never learn.
            live = decode_all(tx.all("list_live_instances", project_id=project_id))
            message["live_recipients"] = sum(_addressed_to(message, i) for i in live)
            return message

        return write_once(self.storage, claim, unit)

    def get(self, message_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        check_positive_id(message_id, "message_id")
        if project_id is not None:
            check_identifier(project_id, "project_id")
        return self.storage.read(lambda tx: require_message(tx, message_id, project_id))

    def list(self, project_id: str, *, before: int = 0,
             limit: int = 100) -> builtins.list[dict[str, Any]]:
        """A page of the project's messages, newest first, with how many consumers
        acknowledged each; pass the last one's id as ``before`` for the next page. Reading
        them delivers nothing (unlike :meth:`inbox`)."""
        check_identifier(project_id, "project_id")
        check_non_negative_int(before, "before")
        check_limit(limit, MAX_INBOX)

        def unit(tx: Tx) -> builtins.list[dict[str, Any]]:
            require_project(tx, project_id)
            return [_message(row) for row in tx.all(
                "list_messages", project_id=project_id, before_message_id=before, limit=limit)]

        return self.storage.read(unit)

    def inbox(self, instance_id: str, visibility_seconds: float = 30.0, limit: int = 10, *,
              project_id: str | None = None,
              actor: str | None = None) -> builtins.list[dict[str, Any]]:
        """Receive up to ``limit`` visible, unacknowledged messages addressed to the instance,
        oldest first; each is hidden from it for ``visibility_seconds`` and comes back after
        that unless acknowledged. Each message carries this consumer's ``delivered_count``.
        With ``project_id``, an instance of another project is refused."""
        check_identifier(instance_id, "instance_id")
        if project_id is not None:
            check_identifier(project_id, "project_id")
        seconds = check_seconds(visibility_seconds, "visibility_seconds", MAX_VISIBILITY_SECONDS)
        check_limit(limit, MAX_INBOX)
        actor = check_identifier(actor or instance_id, "actor")

        def unit(tx: Tx) -> builtins.list[dict[str, Any]]:
            instance = require_instance(tx, instance_id, project_id)
            owner = instance["project_id"]
            rows = tx.all("visible_messages", project_id=owner, instance_id=instance_id,
                          role=role_of(instance), limit=limit)
            received = []
            for row in rows:
                count = tx.value("deliver_message", message_id=row["message_id"],
                                 instance_id=instance_id, visibility_seconds=seconds)
                if count is None:  # a concurrent inbox of this consumer took it first
                    continue
                audit(tx, actor, "message.deliver", "message", row["message_id"], owner,
                      instance_id=instance_id, delivered_count=count,
                      visibility_seconds=seconds)
                message = require_message(tx, row["message_id"])
                message["delivered_count"] = count
                received.append(message)
            return received

        return self.storage.write(unit)

    def ack(self, message_id: int, instance_id: str, *, project_id: str | None = None,
            actor: str | None = None) -> dict[str, Any]:
        """Acknowledge the message for this consumer: it is never delivered to it again.
        Acknowledging again changes nothing (the first ``acked_at`` stays). With
        ``project_id``, a message of another project is refused as unknown."""
        check_positive_id(message_id, "message_id")
        check_identifier(instance_id, "instance_id")
        if project_id is not None:
            check_identifier(project_id, "project_id")
        actor = check_identifier(actor or instance_id, "actor")

        def unit(tx: Tx) -> dict[str, Any]:
            message = require_message(tx, message_id, project_id)
            instance = require_instance(tx, instance_id, message["project_id"])
            if not _addressed_to(message, instance):
                raise ValidationError(
                    f"message {message_id} is not addressed to instance {instance_id!r}",
                    message_id=message_id, instance_id=instance_id)
            before = tx.one("get_delivery", message_id=message_id, instance_id=instance_id)
            tx.execute("ack_message", message_id=message_id, instance_id=instance_id)
            if before is None or before["acked_at"] is None:
                audit(tx, actor, "message.ack", "message", message_id, message["project_id"],
                      instance_id=instance_id)
            delivery = tx.one("get_delivery", message_id=message_id, instance_id=instance_id)
            return dict(delivery or {})

        return self.storage.write(unit)

    def promote(self, message_id: int, to: str, *, project_id: str | None = None,
                namespace: str | None = None, key: str | None = None,
                priority: str = "HIGH", actor: str | None = None) -> dict[str, Any]:
        """Keep a message: as a memory (``to="memory"``, under ``namespace`` and ``key``; its
        value is the body) or as a context item (``to="context"``, with ``priority``; its
        content is the subject and body, the message id and sender in its metadata).

        One transaction: the memory's new version or the item, with their audit rows, and a
        ``message.promote`` audit row. Promoting a message to context again returns the first
        item (its idempotency key is the message's); again with another priority is refused
        (:class:`IdempotencyConflictError`)."""
        check_positive_id(message_id, "message_id")
        target = check_choice(to, PromotionTarget, "what a message is promoted to")
        if project_id is not None:
            check_identifier(project_id, "project_id")
        if target is PromotionTarget.MEMORY:
            check_namespace(namespace)
            check_identifier(key, "key")
        else:
            Priority.parse(priority)
        actor = check_identifier(actor or self.settings.actor, "actor")

        def unit(tx: Tx) -> dict[str, Any]:
            message = require_message(tx, message_id, project_id)
            pid = message["project_id"]
            if target is PromotionTarget.MEMORY:
                result = self._to_memory(tx, message, str(namespace), str(key), actor)
                details: dict[str, Any] = {"namespace": namespace, "key": key,
                                           "version": result["version"]}
            else:
                result = self._to_context(tx, message, priority, actor)
                details = {"item_id": result["item_id"], "priority": result["priority"]}
            audit(tx, actor, "message.promote", "message", message_id, pid, to=target.value,
                  **details)
            return result

        try:
            return self.storage.write(unit)
        except KeyTaken:  # a concurrent promotion stored the item first: this one finds it
            return self.storage.write(unit)

    def _to_memory(self, tx: Tx, message: dict[str, Any], namespace: str, key: str,
                   actor: str) -> dict[str, Any]:
        require_project(tx, message["project_id"], active=True)
        value = encode_json(message["body"], "message body", self.settings.max_content_bytes)
        return self.memories.put_in_tx(tx, message["project_id"], namespace, key, value,
                                       kind=None, expected_version=None, ttl_seconds=None,
                                       actor=actor)

    def _to_context(self, tx: Tx, message: dict[str, Any], priority: str,
                    actor: str) -> dict[str, Any]:
        values = self.context.item_values(
            message["project_id"], {"subject": message["subject"], "body": message["body"]},
            priority, "message", None,
            {"message_id": message["message_id"], "sender": message["sender"]},
            self._sender_instance(tx, message), None, f"message-{message['message_id']}")
        return self.context.store_in_tx(tx, values, actor)

    @staticmethod
    def _sender_instance(tx: Tx, message: dict[str, Any]) -> str | None:
        """The sender if it is an instance of the message's project (a context item's
        ``created_by`` names an instance), else ``None``: the sender was an actor."""
        row = tx.one("get_instance", instance_id=message["sender"])
        if row is None or row["project_id"] != message["project_id"]:
            return None
        return str(message["sender"])
