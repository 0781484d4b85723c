"""A memory put's search document, written once with its index terms (SQLite's migration
0024, PostgreSQL's 0026).

The put of a live memory (``update_live_memory``) claims the memory's search document in the
row it writes, so that the trigger on ``memories`` leaves the document alone. On SQLite it
answers with the document's body as ``search_memory_source`` makes it, and the put then writes
the document here, its body and its terms in one write (docs/architecture.md, "The memory
put's document written once"). Before, the trigger wrote the body, a second trigger cleared
the terms and the look for documents without terms wrote them again: three writes of the row,
and FTS5's index changed four times instead of twice. On PostgreSQL the put's one statement
writes the document too, its body made here (:func:`put_document`), where the trigger wrote
the body and the look the terms: two versions of the row ("The PostgreSQL memory put's
document written once").
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ctxdb.storage import Row, Tx
from ctxdb.storage.search_text import index_terms

# index_terms is imported above, not in the function: this module is imported only by
# memories.py, whose writes all index their documents, and an import in a function costs
# each call about 10 K instructions (the module's spec and __path__ looked up, and missed).


def write_put_document(tx: Tx, written: Row) -> None:
    """The document of the memory ``written`` (a row ``update_live_memory`` returned, whose
    ``search_body``, ``search_terms`` and ``documents_pending`` are taken out of it), with its
    index terms; tells the transaction when no document is left without its terms."""
    body = written.pop("search_body")
    old_terms = written.pop("search_terms")
    pending = written.pop("documents_pending")
    terms = index_terms(body)
    values: dict[str, Any] = {
        "memory_id": written["memory_id"], "project_id": written["project_id"],
        "memory_type": written["memory_type"], "namespace": written["namespace"],
        "body": body, "terms": terms, "expires_at": written["expires_at"],
        "updated_at": written["updated_at"]}
    # A live memory has its document (the triggers wrote it); one without (a repair
    # removed it, say) gets it here, as the trigger would have written it.
    if not tx.execute("write_memory_document", **values):
        tx.execute("insert_memory_document", **values)
    # The look for documents without terms (Storage.indexing) would find nothing to do when
    # none waited as the put wrote its row (another connection's write would have left one),
    # or, where documents may wait (Tx.pending_limit, SQLite), fewer than may, and the terms
    # just written stay: search_terms_stale clears them where a new body has the old body's
    # terms, which the put cannot tell from a body left as it was (the trigger then keeps
    # them), so with the old terms it looks as before.
    if not pending and terms != old_terms:
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
