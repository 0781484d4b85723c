"""A memory put's search document, written once with its index terms (SQLite, migration 0024).

The put of a live memory (``update_live_memory``) claims the memory's search document in the
row it writes, so that the trigger on ``memories`` leaves the document alone, and answers
with the document's body as ``search_memory_source`` makes it; the put then writes the
document here, its body and its terms in one write (docs/architecture.md, "The memory put's
document written once"). Before, the trigger wrote the body, a second trigger cleared the
terms and the look for documents without terms wrote them again: three writes of the row,
and FTS5's index changed four times instead of twice.
"""

from __future__ import annotations

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
