"""Context items: store, load by priority, page, pack within a budget, supersede, delete."""

from __future__ import annotations

import json
import time
from typing import Any

from ctxdb.domain.ids import new_idempotency_key
from ctxdb.domain.models import DEFAULT_CONTENT_TYPE, PRIORITY_ORDER, Priority
from ctxdb.domain.packing import DEFAULT_MAX_SKIPS, Pack
from ctxdb.domain.search import parse_query
from ctxdb.domain.tokens import estimate_tokens
from ctxdb.domain.validation import (
    MAX_INTEGER,
    check_identifier,
    check_limit,
    check_non_negative_int,
    check_optional_int,
    check_text,
    encode_json,
    metadata_json,
)
from ctxdb.errors import (
    ConflictError,
    ContextItemNotFoundError,
    InvalidTransitionError,
)
from ctxdb.service.common import audit, decode, decode_all, same_request
from ctxdb.service.idempotency import claim_of, write_once
from ctxdb.service.usecases.context_insert import NotStored, draw_and_insert, with_search_body
from ctxdb.service.usecases.instances import InstanceService, require_instance
from ctxdb.service.usecases.packs import pack_in_tx
from ctxdb.service.usecases.phases import require_phase
from ctxdb.service.usecases.projects import require_project
from ctxdb.service.usecases.search import newest_matching_items
from ctxdb.settings import Settings
from ctxdb.storage import Storage, Tx

MAX_PAGE = 1_000
MAX_SEARCH_RESULTS = 200
MAX_QUERY_LENGTH = 1_000


# What a store answers with, the first time and on a retry alike.
SUMMARY_FIELDS = ("item_id", "project_id", "phase_id", "sequence_number", "content_type",
                  "priority", "token_count", "created_by", "state")
# What a retry must repeat: the request's own fields. The token count is left out: when the
# caller gives none it is estimated, and items never change these fields once stored.
REQUEST_FIELDS = ("content", "priority", "content_type", "phase_id", "metadata", "created_by")


class KeyTaken(Exception):
    """An item with this idempotency key was stored by a concurrent transaction after this
    one looked: abandon the transaction (it drew a sequence number), and run it again."""


def require_item(tx: Tx, item_id: int) -> dict[str, Any]:
    check_non_negative_int(item_id, "item_id")
    row = tx.one("get_item", item_id=item_id)
    if row is None:
        raise ContextItemNotFoundError(f"unknown context item {item_id}", item_id=item_id)
    return decode(row)


class ContextService:
    def __init__(self, storage: Storage, settings: Settings, instances: InstanceService) -> None:
        self.storage = storage
        self.settings = settings
        self.instances = instances

    # --- writing ---------------------------------------------------------------------------

    def store(
        self,
        project_id: str,
        content: Any,
        priority: str = "HIGH",
        content_type: str = DEFAULT_CONTENT_TYPE,
        phase_id: int | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        created_by: str | None = None,
        token_count: int | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Store one item; returns its summary (no content). Storing the same request again
        with the same ``idempotency_key`` returns the first item's summary and writes nothing;
        another request under that key is refused (:class:`IdempotencyConflictError`)."""
        values = self.item_values(project_id, content, priority, content_type, phase_id,
                                  metadata, created_by, token_count, idempotency_key)
        try:
            return self.storage.write(lambda tx: self._insert(tx, values, actor, last=True))
        except NotStored:  # a repeated call? else the careful way: the project's state
            if stored := self.storage.read(lambda tx: self._stored_before(tx, values)):
                return stored
        try:
            return self.storage.write(lambda tx: self._insert(tx, values, actor))
        except KeyTaken:
            # Stored before (a repeated call, or a retry whose first attempt committed).
            return self.storage.read(lambda tx: self._stored_item(tx, values))

    def store_in_tx(self, tx: Tx, values: dict[str, Any], actor: str | None) -> dict[str, Any]:
        """:meth:`store` inside the caller's write transaction, with ``values`` from
        :meth:`item_values`: the item stored before with the same key, or the new item.
        Raises :class:`KeyTaken` when a concurrent store took the key meanwhile; the caller
        abandons its transaction and runs it again."""
        return self._stored_before(tx, values) or self._insert(tx, values, actor)

    @classmethod
    def _stored_item(cls, tx: Tx, values: dict[str, Any]) -> dict[str, Any]:
        item = cls._stored_before(tx, values)
        if item is None:  # gone since: only deleting its whole project can do that
            raise ContextItemNotFoundError(
                f"no context item with idempotency key {values['idempotency_key']!r} in "
                f"project {values['project_id']!r}")
        return item

    @staticmethod
    def _stored_before(tx: Tx, values: dict[str, Any]) -> dict[str, Any] | None:
        """The summary of the item stored before under the key of ``values``, if any; typed
        refusal when that item was stored by another request."""
        existing = tx.one("item_by_key", project_id=values["project_id"],
                          idempotency_key=values["idempotency_key"])
        if existing is None:
            return None
        sent = {name: values[name] for name in REQUEST_FIELDS}
        sent.update(content=json.loads(values["content"]),
                    metadata=json.loads(values["metadata"]))
        item = same_request(require_item(tx, existing["item_id"]), sent, what="context item",
                            key=values["idempotency_key"], id_field="item_id")
        return {name: item[name] for name in SUMMARY_FIELDS}

    def item_values(
        self, project_id: str, content: Any, priority: str, content_type: str,
        phase_id: int | None, metadata: dict[str, Any] | None, created_by: str | None,
        token_count: int | None, idempotency_key: str | None,
    ) -> dict[str, Any]:
        """The checked column values of a new item (typed errors for bad input)."""
        content_json = encode_json(content, "content", self.settings.max_content_bytes)
        if token_count is None:
            token_count = estimate_tokens(content_json)
        return with_search_body(self.storage.dialect, {
            "project_id": check_identifier(project_id, "project_id"),
            "priority": Priority.parse(priority).value,
            "content_type": check_identifier(content_type, "content_type"),
            "phase_id": check_optional_int(phase_id, "phase_id"),
            "content": content_json,
            "metadata": metadata_json(metadata, self.settings.max_content_bytes),
            "created_by": None if created_by is None else check_identifier(created_by,
                                                                           "created_by"),
            "token_count": check_non_negative_int(token_count, "token_count", MAX_INTEGER),
            "idempotency_key": check_identifier(idempotency_key or new_idempotency_key(),
                                                "idempotency_key"),
        })

    def _insert(self, tx: Tx, values: dict[str, Any], actor: str | None,
                last: bool = False) -> dict[str, Any]:
        """Insert the item and its audit row; raises ``KeyTaken`` if the key is already used
        (``NotStored`` if ``last``: see draw_and_insert).

        The idempotency check is the insert itself (``ON CONFLICT DO NOTHING`` on the key),
        which saves a statement per store, and the sequence number is drawn by a deferred
        statement that travels with the insert, which reads it: one round trip for both on
        PostgreSQL. When the key is taken the number is drawn already, so the caller's whole
        transaction must be abandoned: hence the error.
        """
        project_id = values["project_id"]
        if values["phase_id"] is not None:
            require_phase(tx, values["phase_id"], project_id)
        if values["created_by"] is not None:
            require_instance(tx, values["created_by"], project_id)
        actor = actor or values["created_by"] or self.settings.actor
        row = draw_and_insert(tx, values, actor, last)
        if row is None and last:  # committed or not, nothing was written
            raise NotStored
        if row is None:  # the key is taken, or no such active project: say which
            if self._stored_before(tx, values) is not None:
                raise KeyTaken
            require_project(tx, project_id, active=True)
            # The project was committed by another transaction after the first look
            # (PostgreSQL, read committed): it is visible now, so draw the number again.
            row = draw_and_insert(tx, values, actor)
            if row is None:
                raise ConflictError(
                    f"project {project_id!r} changed while the item was stored; try again",
                    project_id=project_id)
        item_id, sequence = row["item_id"], row["sequence_number"]
        summary = {"item_id": item_id, "sequence_number": sequence, "state": "active",
                   **{name: values[name] for name in SUMMARY_FIELDS if name in values}}
        return {name: summary[name] for name in SUMMARY_FIELDS}

    def supersede(
        self,
        item_id: int,
        content: Any,
        *,
        priority: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, Any] | None = None,
        created_by: str | None = None,
        token_count: int | None = None,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Replace an item by a new one; the old one stays, marked superseded, for history.
        With ``idempotency_key``, a retry gets the first answer (the replacement) instead of
        being refused because the item is superseded by then."""
        check_non_negative_int(item_id, "item_id")
        old = self.storage.read(lambda tx: require_item(tx, item_id))
        values = self.item_values(
            old["project_id"], content, priority or old["priority"],
            content_type or old["content_type"], old["phase_id"],
            old["metadata"] if metadata is None else metadata, created_by, token_count,
            # One key per call: a retry of this call finds its own replacement, while a
            # second call on the same (by then superseded) item is refused below.
            f"supersede:{item_id}:{new_idempotency_key()}",
        )
        claim = claim_of(old["project_id"], "context.supersede", idempotency_key, {
            "item_id": item_id, "content": content, "priority": priority,
            "content_type": content_type, "metadata": metadata, "created_by": created_by,
            "token_count": token_count})

        def unit(tx: Tx) -> dict[str, Any]:
            current = require_item(tx, item_id)
            retried = tx.one("item_by_key", project_id=current["project_id"],
                             idempotency_key=values["idempotency_key"])
            if retried is not None:  # this unit's first attempt committed; nothing to redo
                return require_item(tx, retried["item_id"])
            if current["state"] != "active":
                raise InvalidTransitionError(
                    f"context item {item_id} is {current['state']}; only active items can be "
                    "superseded", item_id=item_id)
            new = self._insert(tx, values, actor)
            tx.execute("supersede_item", item_id=item_id, superseded_by=new["item_id"])
            audit(tx, actor or created_by or self.settings.actor, "context.supersede",
                  "context_item", item_id, current["project_id"],
                  superseded_by=new["item_id"])
            return new

        return write_once(self.storage, claim, unit)

    def delete(self, item_id: int, actor: str | None = None) -> dict[str, Any]:
        """Tombstone an item: it leaves every load and pack but stays for audit and export."""
        actor = check_identifier(actor or self.settings.actor, "actor")  # stored as deleted_by

        def unit(tx: Tx) -> dict[str, Any]:
            item = require_item(tx, item_id)
            require_project(tx, item["project_id"], active=True)
            if item["state"] != "active":
                raise InvalidTransitionError(
                    f"context item {item_id} is already {item['state']}", item_id=item_id)
            tx.execute("delete_item", item_id=item_id, deleted_by=actor)
            audit(tx, actor, "context.delete", "context_item", item_id, item["project_id"])
            return require_item(tx, item_id)

        return self.storage.write(unit)

    # --- reading ---------------------------------------------------------------------------

    def get(self, item_id: int, project_id: str | None = None) -> dict[str, Any]:
        """One item by its id (database-wide); with ``project_id``, only an item of that
        project: another project's item is refused as unknown, so a fetch never crosses
        projects silently."""
        if project_id is not None:  # a bad one is named as such, not as "unknown item"
            check_identifier(project_id, "project_id")
        item = self.storage.read(lambda tx: require_item(tx, item_id))
        if project_id is not None and item["project_id"] != project_id:
            raise ContextItemNotFoundError(
                f"unknown context item {item_id} in project {project_id!r}",
                item_id=item_id, project_id=project_id)
        return item

    def load_for_instance(
        self, instance_id: str, project_id: str, phase_id: int | None = None,
        **instance_fields: Any,
    ) -> dict[str, Any]:
        """Register the instance and return the project's CRITICAL items in sequence order."""
        started = time.perf_counter()
        fields = self.instances.validated_fields(project_id, phase_id, instance_id=instance_id,
                                                 **instance_fields)

        def unit(tx: Tx) -> list[dict[str, Any]]:
            self.instances.register(tx, fields, None)
            return decode_all(tx.all("items_of_priority", project_id=project_id,
                                     priority="CRITICAL", phase_id=phase_id))

        items = self.storage.write(unit)
        return {
            "instance_id": instance_id,
            "project_id": project_id,
            "phase_id": phase_id,
            "critical_context": items,
            "status": "ready",
            "load_time_ms": (time.perf_counter() - started) * 1000,
        }

    def full(self, project_id: str, phase_id: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """Every live item, grouped by priority, each group in sequence order."""
        check_optional_int(phase_id, "phase_id")

        def unit(tx: Tx) -> dict[str, list[dict[str, Any]]]:
            require_project(tx, project_id)
            if phase_id is not None:
                require_phase(tx, phase_id, project_id)
            grouped: dict[str, list[dict[str, Any]]] = {p.value: [] for p in PRIORITY_ORDER}
            for row in tx.all("all_live_items", project_id=project_id, phase_id=phase_id):
                grouped[row["priority"]].append(decode(row))
            return grouped

        return self.storage.read(unit)

    def page(
        self, project_id: str, priority: str, after_sequence: int = 0, limit: int = 100
    ) -> dict[str, Any]:
        """One page of live items of a priority, after ``after_sequence`` (keyset paging)."""
        level = Priority.parse(priority).value
        check_non_negative_int(after_sequence, "after_sequence")
        check_limit(limit, MAX_PAGE)

        def unit(tx: Tx) -> dict[str, Any]:
            if self.storage.dialect.numbers_commit_out_of_order:  # see await_item_draws
                tx.execute("await_item_draws", project_id=project_id)
            require_project(tx, project_id)
            items = decode_all(tx.all("items_page", project_id=project_id, priority=level,
                                      after_sequence=after_sequence, limit=limit))
            more = len(items) == limit
            return {"items": items,
                    "next_after_sequence": items[-1]["sequence_number"] if more else None}

        return self.storage.read(unit)

    def search(
        self, project_id: str, query: str | None = None, *, priority: str | None = None,
        content_type: str | None = None, phase_id: int | None = None, limit: int = 20,
    ) -> dict[str, Any]:
        """Live items, newest first, narrowed by priority, content type, phase and words.

        ``query`` is read as in ``db.search`` (``domain.search``: every word must occur,
        "phrases", -excluded, or, prefix*) and looked up in the full-text index, so every
        matching item is found however old; a blank query lists items by the other filters.
        ``has_more`` says that more than ``limit`` items matched. For hits ranked by
        relevance, with snippets, across memories and events too, use ``db.search.search``.
        """
        check_identifier(project_id, "project_id")
        text = "" if query is None else check_text(query, "query", MAX_QUERY_LENGTH)
        match = self.storage.search_engine().query_text(parse_query(text)) if text.strip() \
            else None
        level = "" if priority is None else Priority.parse(priority).value
        kind = "" if content_type is None else check_identifier(content_type, "content_type")
        check_optional_int(phase_id, "phase_id")
        check_limit(limit, MAX_SEARCH_RESULTS)

        def unit(tx: Tx) -> dict[str, Any]:
            require_project(tx, project_id)
            if phase_id is not None:
                require_phase(tx, phase_id, project_id)
            filters = {"project_id": project_id, "priority": level, "content_type": kind,
                       "phase_id": phase_id, "limit": limit + 1}  # one more: has_more
            rows = (tx.all("live_items_newest_first", **filters) if match is None
                    else newest_matching_items(tx, match, filters))
            items = decode_all(rows)
            return {"items": items[:limit], "has_more": len(items) > limit}

        return self.storage.read(unit)

    def pack(
        self, project_id: str, budget_tokens: int, phase_id: int | None = None,
        max_skips: int = DEFAULT_MAX_SKIPS, *, partial_critical: bool = False,
    ) -> Pack:
        """The budgeted pack (see ``domain.packing``); the current phase ranks first.

        CRITICAL items alone over the budget are a :class:`BudgetExceededError`; with
        ``partial_critical`` (the pack a reload injects) those that fit, the rest named in
        ``Pack.critical_omitted`` and the manifest.
        """
        check_non_negative_int(budget_tokens, "budget_tokens")
        check_optional_int(phase_id, "phase_id")

        def unit(tx: Tx) -> Pack:
            require_project(tx, project_id)
            if phase_id is not None:
                require_phase(tx, phase_id, project_id)
            return pack_in_tx(tx, project_id, budget_tokens, phase_id, max_skips,
                              partial_critical=partial_critical)

        return self.storage.read(unit)

    def counts(self, project_id: str) -> dict[str, dict[str, int]]:
        """Live items and tokens per priority."""

        def unit(tx: Tx) -> dict[str, dict[str, int]]:
            require_project(tx, project_id)
            counts = {p.value: {"items": 0, "tokens": 0} for p in PRIORITY_ORDER}
            for row in tx.all("count_items_by_priority", project_id=project_id):
                counts[row["priority"]] = {"items": int(row["n"]), "tokens": int(row["tokens"])}
            return counts

        return self.storage.read(unit)
