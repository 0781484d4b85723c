"""The put of a live memory (``update_live_memory``) and its search document (SQLite's
migrations 0024 and 0028, PostgreSQL's 0026).

The put claims the memory's search document in the row it writes, so that the trigger on
``memories`` leaves the document alone. On SQLite it answers with the document's body as
``search_memory_source`` makes it, and the put then writes the document here, in one write
(docs/architecture.md, "The memory put's document written once"). Where documents may wait
for their index terms (``Tx.pending_limit``: SQLite from 0027) it writes it without them: the
full-text index keeps the old terms, and the row keeps them too (0028's ``indexed_terms``),
until the batch that gives every waiting document its terms deletes the old ones and inserts
the new, one FTS5 segment for the batch instead of one per put ("The memory put's index work
in the batch too"); below that, with its terms. On PostgreSQL the put's one statement writes
the document too, its body and terms made here (:func:`put_document`) ("The PostgreSQL memory
put's document written once").
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from ctxdb.service.common import audit
from ctxdb.storage import Row, Tx
from ctxdb.storage.search_text import index_terms
from ctxdb.storage.sqlite_body import sqlite_memory_text

# index_terms is imported above, not in the function: this module is imported only by
# memories.py, whose writes all index their documents, and an import in a function costs
# each call about 10 K instructions (the module's spec and __path__ looked up, and missed).


def decoded(row: Row) -> dict[str, Any]:
    """The row as callers see it: the value parsed, without the query's helper columns."""
    row.pop("expired", None)
    row.pop("project_status", None)
    if isinstance(row.get("value"), str):  # both backends hand JSON over as text
        row["value"] = json.loads(row["value"])
    return row


def put_live(tx: Tx, fast: dict[str, Any]) -> dict[str, Any] | None:
    """The put of a live memory at the expected version (``update_live_memory``, with the
    parameters ``fast`` of MemoryService.put), which claims the memory's search document and
    writes it once: on PostgreSQL in one statement with its history and audit rows, on
    SQLite in a statement after the update. ``None``: nothing written, the general path
    says why."""
    namespace, key, value_json = fast["namespace"], fast["key"], fast["value"]
    if tx.chains_writes:
        written = tx.one("put_live_memory_recorded", **fast,
                         **put_document(namespace, key, value_json))
        return None if written is None else decoded(written)
    # Whether the documents waiting for their terms are as many as may wait, this put's own
    # counted (it leaves its document waiting where documents may wait), else whether any.
    waiting = tx.pending_limit - 1 if tx.pending_limit else 1
    written = tx.one("update_live_memory", **fast, waiting=waiting,
                     search_body=sqlite_memory_text(namespace, key, value_json))
    if written is None:
        return None
    write_put_document(tx, written)
    return record_put(tx, written, fast["project_id"], fast["expected_version"], fast["actor"])


def record_put(
    tx: Tx, written: Row, project_id: str, expected: int | None, actor: str
) -> dict[str, Any]:
    """The history row and the audit row of a put; returns the memory as written."""
    tx.defer("insert_memory_version", memory_id=written["memory_id"], op="put")
    audit(tx, actor, "memory.put", "memory", written["memory_id"], project_id,
          namespace=written["namespace"], key=written["key"], version=written["version"],
          expected_version=expected, memory_type=written["memory_type"])
    return decoded(written)


def write_put_document(tx: Tx, written: Row) -> None:
    """The document of the memory ``written`` (a row ``update_live_memory`` returned, whose
    ``search_body``, ``search_terms`` and ``documents_pending`` are taken out of it): where
    documents may wait for their terms, without them (the batch gives them), else with
    them; tells the transaction whether documents are left for it to give their terms."""
    body = written.pop("search_body")
    old_terms = written.pop("search_terms")
    pending = written.pop("documents_pending")
    # Cleared, the terms wait for the batch, and search_terms_held (0028) keeps in the row
    # the terms the index holds, which the batch then deletes from it: the index does not
    # change here. Below 0028 (a database taken back to 0027) the index deletes them at once.
    terms = None if tx.pending_limit else index_terms(body)
    values: dict[str, Any] = {
        "memory_id": written["memory_id"], "project_id": written["project_id"],
        "memory_type": written["memory_type"], "namespace": written["namespace"],
        "body": body, "terms": terms, "expires_at": written["expires_at"],
        "updated_at": written["updated_at"]}
    # A live memory has its document (the triggers wrote it); one without (a repair
    # removed it, say) gets it here, as the trigger would have written it.
    if not tx.execute("write_memory_document", **values):
        tx.execute("insert_memory_document", **values)
    if tx.pending_limit:
        # As many wait as may, this document counted: the batch, in this transaction. Else
        # fewer: they wait for a later write, or a search.
        if pending:
            tx.documents_pending()
        else:
            tx.documents_indexed()
    # Where none may wait, the look after the unit finds nothing to do when none waited as
    # the put wrote its row (another connection's write would have left one) and the terms
    # just written stay: search_terms_stale clears them where a new body has the old body's
    # terms, which the put cannot tell from a body left as it was (the trigger then keeps
    # them), so with the old terms it looks as before.
    elif not pending and terms != old_terms:
        tx.documents_indexed()


def put_document(namespace: str, key: str, value_json: str) -> dict[str, str]:
    """``put_live_memory_recorded``'s ``search_body`` and ``search_terms`` (PostgreSQL): the
    body ``search_memory_source`` makes of the memory (its namespace's segments, its key and
    what ``ctxdb_search_text`` makes of its value, cut at 200,000 characters) and its terms."""
    document_text, limit = _postgres_text()
    body = f"{namespace.replace(':', ' ')}\n{key}\n{document_text(value_json)}"[:limit]
    return {"search_body": body, "search_terms": index_terms(body)}


@functools.cache
def _postgres_text() -> tuple[Callable[[str], str], int]:
    """PostgreSQL's body maker, imported on the first put that needs it: SQLite's puts never
    do (it imports ``decimal``), and an import statement run on every put costs about 10 K
    instructions (see above)."""
    from ctxdb.storage.search_body import BODY_LIMIT, postgres_document_text

    return postgres_document_text, BODY_LIMIT
