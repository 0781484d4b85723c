"""Helpers shared by the services: row decoding, the audit row and the idempotency check."""

from __future__ import annotations

import json
from _json import scanstring  # the C scanner json.loads itself ends in
from collections.abc import Iterable
from typing import Any

from ctxdb.domain.validation import check_identifier, encode_json
from ctxdb.errors import IdempotencyConflictError
from ctxdb.settings import Settings
from ctxdb.storage import Row, Storage, Tx

JSON_FIELDS = frozenset({"content", "metadata", "details", "next_steps", "working_set"})


def decode(row: Row) -> dict[str, Any]:
    """Parse the JSON columns of a row (both backends hand JSON over as text)."""
    for name in JSON_FIELDS.intersection(row):
        value = row[name]
        if isinstance(value, str):
            row[name] = parse_json(value)
    return row


def parse_json(text: str) -> Any:
    """``json.loads(text)``, with the two shapes most columns hold taken first: a JSON string
    (an item's content) and an empty object. A pack decodes every row of a project's tiers,
    and ``json.loads`` costs several times the C string scanner it ends in."""
    if text == "{}":
        return {}
    if text[:1] == '"':
        try:
            value, end = scanstring(text, 1)
        except ValueError:
            return json.loads(text)  # raises the error json.loads gives
        if end == len(text):
            return value
    return json.loads(text)


def decode_all(rows: Iterable[Row]) -> list[dict[str, Any]]:
    return [decode(row) for row in rows]


def same_request(stored: dict[str, Any], sent: dict[str, Any], *, what: str, key: str,
                 id_field: str) -> dict[str, Any]:
    """``stored``, the record an idempotency key already names, when ``sent`` (the new
    request's fields, decoded like the stored record's) asks for the same thing: a retry.

    Anything else is another request reusing the key; answering it with the stored record
    would report success for content that was never stored, so it is refused.
    """
    differing = sorted(name for name, value in sent.items() if stored.get(name) != value)
    if differing:
        raise IdempotencyConflictError(
            f"idempotency key {key!r} already names {what} {stored[id_field]}, stored with "
            f"another {' and '.join(differing)}; a retry must send the same request and a "
            f"new {what} needs a new key; nothing was written",
            idempotency_key=key, fields=differing, **{id_field: stored[id_field]})
    return stored


def audit(
    tx: Tx,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: object,
    project_id: str | None,
    **details: Any,
) -> None:
    """Write the audit row of a mutation; always called inside the mutation's transaction.

    The actor is checked here, the one place every caller-supplied actor passes: a bad one
    fails the whole transaction with a typed error, on both backends alike.
    """
    check_identifier(actor, "actor")
    tx.defer(
        "insert_audit",
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        project_id=project_id,
        details=encode_json(details, "audit details"),
    )


class Service:
    """Base of the services: each works over one storage with the entry point's settings."""

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.storage = storage
        self.settings = settings
