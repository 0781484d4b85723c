"""A context item's insert: the sequence number drawn, the item, its audit row and, where the
database allows, its search document, in as few statements as the backend can chain.

The statements differ by what the transaction can do (``Tx.documents_written_once``: a
data-modifying ``WITH`` on a schema where the store writes the search document with its
terms), not by backend name; each way writes the same rows (docs/architecture.md).
"""

from __future__ import annotations

from typing import Any

from ctxdb.domain.validation import check_identifier
from ctxdb.service.common import audit
from ctxdb.storage import Tx


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
        from ctxdb.storage.search_body import postgres_document_text
        from ctxdb.storage.search_text import index_terms

        body = postgres_document_text(values["content"])
        run = tx.commit_with if last else tx.one
        return run("store_next_item", **values, actor=check_identifier(actor, "actor"),
                   search_body=body, search_terms=index_terms(body))
    tx.defer("draw_sequence", project_id=values["project_id"])
    row = tx.one("insert_next_item", **values)
    if row is not None:
        audit(tx, actor, "context.store", "context_item", row["item_id"],
              values["project_id"], priority=values["priority"],
              sequence_number=row["sequence_number"], token_count=values["token_count"])
    return row
