"""A context item's insert: the sequence number drawn, the item, its audit row and, where the
database allows, its search document, in as few statements as the backend can chain.

The statements differ by what the transaction can do (``Tx.documents_written_once``: a
data-modifying ``WITH`` on a schema where the store writes the search document with its
terms; ``Tx.item_documents_once``: a schema where the store writes the document before the
item, whose trigger then writes none; ``Tx.item_numbers_drawn``: a schema where the number
comes from a sequence, with gaps, not from the project's row), not by backend name; each
way writes the same rows (docs/architecture.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ctxdb.domain.validation import check_identifier
from ctxdb.storage import Tx
from ctxdb.storage.dialect import Dialect
from ctxdb.storage.sqlite_body import sqlite_document_text

# The key of an item's values (ContextService.item_values) under which the body of its
# SQLite search document is made before the write (sqlite_document_text; ``None``: SQLite
# makes it), so that the store does not walk the item's JSON while it holds the write lock
# (docs/architecture.md, SQLite rules). Values without it get the body made in the store.
DOCUMENT_BODY = "document_body"


def with_search_body(dialect: Dialect, values: dict[str, Any]) -> dict[str, Any]:
    """An item's ``values`` (ContextService.item_values) with the body of its search document
    under DOCUMENT_BODY where the dialect's store writes the document itself (SQLite), made
    before the write takes its turn at the write lock rather than by the store inside its
    transaction."""
    if dialect.item_documents_probe is not None:
        values[DOCUMENT_BODY] = sqlite_document_text(values["content"])
    return values


class NotStored(Exception):
    """A store that was its transaction's last statement inserted nothing (the key is taken,
    or no active project was seen); it wrote nothing either: the careful way says which."""


def draw_and_insert(tx: Tx, values: dict[str, Any], actor: str,
                    last: bool = False) -> dict[str, Any] | None:
    """Draw the number, insert the item with it and write its audit row; ``None`` when
    nothing was inserted (see ``ContextService._insert``). ``last``: nothing runs in this
    transaction after it, which may then be committed with the statement (Tx.commit_with:
    the one statement writes nothing when it answers with no row); the caller then raises
    ``NotStored`` for ``None``."""
    if tx.documents_written_once:  # all four in one statement, the document with its terms
        document_text, index_terms = _document_makers()
        body = document_text(values["content"])
        run = tx.commit_with if last else tx.one
        # From migration 0029 the number comes from a sequence, with gaps, and the project's
        # row is only read: writers of a project no longer wait for each other's COMMIT.
        query = "store_drawn_item" if tx.item_numbers_drawn else "store_next_item"
        return run(query, **values, actor=check_identifier(actor, "actor"),
                   search_body=body, search_terms=index_terms(body))
    if tx.item_documents_once:
        row = _document_then_item(tx, values)
    else:
        tx.defer("draw_sequence", project_id=values["project_id"])
        row = tx.one("insert_next_item", **values)
    if row is not None:
        tx.defer("insert_audit", actor=check_identifier(actor, "actor"),
                 action="context.store", entity_type="context_item",
                 entity_id=str(row["item_id"]), project_id=values["project_id"],
                 details=store_audit_details(values["priority"], row["sequence_number"],
                                             values["token_count"]))
    return row


def store_audit_details(priority: str, sequence_number: int, token_count: int) -> str:
    """The details of a store's audit row, as ``audit`` would encode them (the order, the
    compact separators), made without a JSON encoder: a level name and two checked integers
    need no escaping."""
    return (f'{{"priority":"{priority}","sequence_number":{sequence_number:d},'
            f'"token_count":{token_count:d}}}')


def _document_then_item(tx: Tx, values: dict[str, Any]) -> dict[str, Any] | None:
    """The number and the item's id drawn, its search document written, then the item
    (SQLite from migration 0025): the document once, instead of the trigger's body and then
    the terms in a second write. Where documents may wait for their index terms
    (``Tx.pending_limit``), the document is written without them, for the write that finds
    that many waiting to give them all theirs at once (this one, when the draw says so);
    else with them. ``None`` as ``insert_next_item``'s: no active project (nothing
    written), or the key taken (the document is written: the caller rolls the transaction
    back, as it must for the number drawn)."""
    waiting = tx.pending_limit - 1 if tx.pending_limit else 1  # this store's own not counted
    body = (values[DOCUMENT_BODY] if DOCUMENT_BODY in values
            else sqlite_document_text(values["content"]))
    drawn = tx.one("draw_item", project_id=values["project_id"], content=values["content"],
                   search_body=body, waiting=waiting)
    if drawn is None:
        return None
    if drawn["documents_pending"]:
        tx.documents_pending()
    body = drawn["search_body"]
    terms = None if tx.pending_limit else _document_makers()[1](body)
    tx.execute("insert_item_document", project_id=values["project_id"],
               item_id=drawn["item_id"], content_type=values["content_type"],
               priority=values["priority"], search_body=body, search_terms=terms,
               created_at=drawn["created_at"])
    item_id, sequence = drawn["item_id"], drawn["sequence_number"]
    if not tx.execute("insert_drawn_item", **values, item_id=item_id, sequence_number=sequence,
                      created_at=drawn["created_at"]):
        return None
    return {"item_id": item_id, "sequence_number": sequence}


@functools.cache
def _document_makers() -> tuple[Callable[[str], str], Callable[[str], str]]:
    """The search document's body and index terms, imported on the first store: the hook
    path, which imports this module, stores rarely and need not load them (nor ``decimal``);
    an import statement run on every store instead cost about 5,000 instructions each."""
    from ctxdb.storage.search_body import postgres_document_text
    from ctxdb.storage.search_text import index_terms

    return postgres_document_text, index_terms
