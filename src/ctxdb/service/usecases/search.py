"""Full-text search over a project's context items, memories and conversation events.

The index is kept by the database itself (migration 0008: triggers write a document for every
live context item, every live memory at its latest version and every session event, in the
transaction that writes the record), so no write path has to remember it, and a search sees
exactly what is committed. This service reads it: ranked hits with a snippet each, filtered by
kind, type, priority, namespace and time, always within one project. See docs/search.md.

What a user types is read by ``domain.search`` (words, "phrases", -excluded, or, prefix*) and
handed to the engine with every word quoted, so free text can never be a syntax error;
``raw=True`` passes the text in the engine's own syntax instead (FTS5 on SQLite,
``to_tsquery`` on PostgreSQL), and a query the engine cannot parse is then refused with
:class:`InvalidSearchQueryError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ctxdb.domain.checks import check_kinds, check_namespace
from ctxdb.domain.models import Priority, choices
from ctxdb.domain.search import (
    parse_instant,
    parse_query,
    raw_words,
    snippet,
)
from ctxdb.domain.validation import (
    check_identifier,
    check_limit,
    check_text,
)
from ctxdb.domain.vocabulary import SearchKind
from ctxdb.errors import InvalidSearchQueryError, StorageError, ValidationError
from ctxdb.service.common import Service, audit
from ctxdb.service.usecases.projects import require_project
from ctxdb.storage import Row, Tx

MAX_RESULTS = 200
MAX_QUERY_LENGTH = 1_000
EARLIEST = "0001-01-01T00:00:00.000Z"
LATEST = "9999-12-31T23:59:59.999Z"


KINDS: tuple[str, ...] = tuple(choices(SearchKind))
# Repairs of the documents of each kind, in the order they run (see queries/search.sql).
_REPAIRS = {"context": ("search_remove_stale_context", "search_add_missing_context"),
            "memory": ("search_remove_stale_memories", "search_add_missing_memories"),
            "event": ("search_remove_stale_events", "search_add_missing_events")}


def _hit(row: Row, words: list[str], prefixes: list[str]) -> dict[str, Any]:
    kind = row["kind"]
    ids = {"context": row["item_id"], "memory": row["memory_id"], "event": row["event_id"]}
    return {
        "kind": kind,
        "id": ids[kind],
        "score": float(row["score"]),
        "time": row["occurred_at"],
        "type": row["content_type"],  # content type, memory type or event role
        "priority": row["priority"],
        "namespace": row["namespace"],
        "key": row["key"],
        "version": row["version"],
        "session_id": row["session_id"],
        # the item's sequence number in its project, or the event's in its session
        "sequence": row["sequence_number"] if kind == "context" else row["sequence"],
        "snippet": snippet(row["body"], words, prefixes),
    }


class SearchService(Service):
    def search(
        self,
        project_id: str,
        query: str,
        *,
        kinds: str | Iterable[str] = KINDS,
        priority: str | None = None,
        content_type: str | None = None,
        namespace: str | None = None,
        since: Any = None,
        until: Any = None,
        limit: int = 20,
        raw: bool = False,
    ) -> list[dict[str, Any]]:
        """The records of the project that match ``query``, best first (then newest first).

        ``kinds`` narrows to context items, memories and/or events; ``content_type`` is an
        item's content type, a memory's type or an event's role; ``priority`` only matches
        context items and ``namespace`` (a path and everything below it) only memories;
        ``since`` (inclusive) and ``until`` (exclusive) bound when the record was written
        (a memory: its latest version), as ISO-8601 text, a ``datetime`` or an age (``7d``).
        Each hit has ``kind``, ``id``, ``score``, ``time``, ``type`` and a ``snippet`` with
        the matching words between ``**``, plus where the record lives (priority and
        sequence; namespace, key and version; session and sequence).
        """
        check_identifier(project_id, "project_id")
        check_text(query, "query", MAX_QUERY_LENGTH)
        if raw:
            if not query.strip():
                raise InvalidSearchQueryError("the search query is empty", query=query)
            match, rank, words, prefixes = query, query, raw_words(query), []
        else:
            parsed = parse_query(query)
            engine = self.storage.search_engine()
            match, rank = engine.query_text(parsed), engine.query_text(parsed.wanted())
            words, prefixes = parsed.words, parsed.prefixes
        chosen = check_kinds(kinds)
        start = EARLIEST if since is None else parse_instant(since, "since")
        end = LATEST if until is None else parse_instant(until, "until")
        if start >= end:
            raise ValidationError(f"since ({start}) must be before until ({end})")
        check_limit(limit, MAX_RESULTS)
        params = {
            "project_id": project_id,
            "match": match,
            "rank": rank,
            "kind_1": chosen[0], "kind_2": chosen[1 % len(chosen)],
            "kind_3": chosen[2 % len(chosen)],
            "priority": "" if priority is None else Priority.parse(priority).value,
            "content_type": "" if content_type is None else check_identifier(
                content_type, "content_type"),
            "namespace": "" if namespace is None else check_namespace(namespace),
            "since": start,
            "until": end,
            "limit": limit,
        }

        def unit(tx: Tx) -> list[dict[str, Any]]:
            require_project(tx, project_id)
            return [_hit(row, words, prefixes) for row in tx.all("search_hits", **params)]

        try:
            return self.storage.read(unit)
        except StorageError as exc:
            # Only a raw query can be refused by the engine: ours quote every word.
            if raw and self.storage.search_engine().refused(exc):
                raise InvalidSearchQueryError(
                    f"the full-text engine cannot parse the raw query {query!r}: {exc}",
                    query=query) from exc
            raise

    # --- the index, for `ctxdb doctor` ----------------------------------------------------------

    def index_status(self) -> dict[str, tuple[int, int]]:
        """Per kind: (records that should be indexed, documents in the full-text index).

        The two agree unless the index was damaged or written around; SQLite counts the
        documents its FTS5 index holds, PostgreSQL those with a (generated) search vector.
        An expired memory counts until it is swept (its document stays; searches skip it).
        """
        def unit(tx: Tx) -> dict[str, tuple[int, int]]:
            sources = {row["kind"]: int(row["n"]) for row in tx.all("search_source_counts")}
            indexed = {row["kind"]: int(row["n"]) for row in tx.all("search_index_counts")}
            return {kind: (sources.get(kind, 0), indexed.get(kind, 0)) for kind in KINDS}

        return self.storage.read(unit)

    def rebuild_index(self, actor: str | None = None) -> dict[str, int]:
        """Make the index agree with the records; returns the documents indexed per kind.

        In one audited transaction: SQLite's FTS5 index is rebuilt from the documents, then
        documents that do not match their record are replaced and missing ones added (their
        number is in the audit row). Searches keep working meanwhile (they read the last
        committed index); writers wait for the transaction, as for any other write.
        """
        actor = check_identifier(actor or self.settings.actor, "actor")
        engine = self.storage.search_engine()

        def unit(tx: Tx) -> dict[str, int]:
            engine.refresh_index(tx)
            repaired = {}
            for kind, (remove, add) in _REPAIRS.items():
                repaired[kind] = {"removed": tx.execute(remove), "added": tx.execute(add)}
            indexed = {row["kind"]: int(row["n"]) for row in tx.all("search_index_counts")}
            counts = {kind: indexed.get(kind, 0) for kind in KINDS}
            audit(tx, actor, "search.rebuild", "search_index", "search_documents", None,
                  indexed=counts, repaired=repaired)
            return counts

        return self.storage.write(unit)
