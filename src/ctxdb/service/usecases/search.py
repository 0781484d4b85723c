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

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

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

if TYPE_CHECKING:
    from ctxdb.storage.search_engine import SearchEngine

MAX_RESULTS = 200
MAX_QUERY_LENGTH = 1_000
EARLIEST = "0001-01-01T00:00:00.000Z"
LATEST = "9999-12-31T23:59:59.999Z"


KINDS: tuple[str, ...] = tuple(choices(SearchKind))
# Ranking (docs/search.md): score = relevance x priority weight x recency weight, over the
# best CANDIDATES by relevance alone. Memories and events have no priority: weight 1.
PRIORITY_WEIGHT = {"CRITICAL": 1.5, "HIGH": 1.25, "MEDIUM": 1.0, "LOW": 0.8}
RECENCY_HALF_LIFE_DAYS = 30.0
RECENCY_FLOOR = 0.5  # however old, a record keeps half its weight
MIN_CANDIDATES, CANDIDATES_PER_HIT, MAX_CANDIDATES = 50, 5, 500
# Repairs of the documents of each kind, in the order they run (see queries/search.sql).
_REPAIRS = {"context": ("search_remove_stale_context", "search_add_missing_context"),
            "memory": ("search_remove_stale_memories", "search_add_missing_memories"),
            "event": ("search_remove_stale_events", "search_add_missing_events"),
            "observation": ("search_remove_stale_observations",
                            "search_add_missing_observations")}


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def ranked(row: Row, now: datetime) -> float:
    """A hit's score: its text relevance weighted by its priority and its age."""
    age_days = max(0.0, (now - _moment(row["occurred_at"])).total_seconds() / 86_400)
    recency = RECENCY_FLOOR + (1 - RECENCY_FLOOR) * math.pow(2, -age_days
                                                             / RECENCY_HALF_LIFE_DAYS)
    return float(row["score"]) * PRIORITY_WEIGHT.get(row["priority"] or "", 1.0) * recency


def _hit(row: Row, words: list[str], prefixes: list[str],
         matches: Callable[[str], bool], score: float) -> dict[str, Any]:
    return _record(row, score) | {
        "snippet": snippet(row["body"], words, prefixes, matches=matches)}


def _record(row: Row, score: float) -> dict[str, Any]:
    """A hit but its snippet: what it is and where it lives."""
    kind = row["kind"]
    ids = {"context": row["item_id"], "memory": row["memory_id"], "event": row["event_id"],
           "observation": row["observation_id"]}
    return {
        "kind": kind,
        "id": ids[kind],
        "score": score,
        "time": row["occurred_at"],
        "type": row["content_type"],  # content type, memory type, event role or observed kind
        "priority": row["priority"],
        "namespace": row["namespace"],
        "key": row["key"],
        "version": row["version"],
        "session_id": row["session_id"],
        # the item's sequence number in its project, or the event's in its session
        "sequence": row["sequence_number"] if kind == "context" else row["sequence"],
    }


class _Compiled(NamedTuple):
    """A query as the engine takes it: the text that must match and the text ranked by (the
    wanted words only), a looser pair when some of the words may do, and what the snippets
    highlight."""

    match: str
    rank: str
    words: list[str]
    prefixes: list[str]
    matches: Callable[[str], bool]
    relaxed: tuple[str, str] | None = None


def _compile(engine: SearchEngine, query: str, raw: bool) -> _Compiled:
    if raw:
        if not query.strip():
            raise InvalidSearchQueryError("the search query is empty", query=query)
        words = raw_words(query)
        return _Compiled(query, query, words, [], engine.raw_highlighter(words))
    parsed = parse_query(query)
    some = parsed.relaxed()
    return _Compiled(
        engine.query_text(parsed), engine.query_text(parsed.wanted()), parsed.words,
        parsed.prefixes, engine.highlighter(parsed),
        None if some is None else (engine.query_text(some), engine.query_text(some.wanted())))


def _filters(project_id: str, kinds: str | Iterable[str], priority: str | None,
             content_type: str | None, namespace: str | None, since: Any, until: Any,
             limit: int) -> dict[str, Any]:
    """The query's parameters but for the match: each filter checked ("" when unset)."""
    chosen = check_kinds(kinds)
    start = EARLIEST if since is None else parse_instant(since, "since")
    end = LATEST if until is None else parse_instant(until, "until")
    if start >= end:
        raise ValidationError(f"since ({start}) must be before until ({end})")
    check_limit(limit, MAX_RESULTS)
    return {
        "project_id": project_id,
        "kind_1": chosen[0], "kind_2": chosen[1 % len(chosen)],
        "kind_3": chosen[2 % len(chosen)], "kind_4": chosen[3 % len(chosen)],
        "priority": "" if priority is None else Priority.parse(priority).value,
        "content_type": "" if content_type is None else check_identifier(
            content_type, "content_type"),
        "namespace": "" if namespace is None else check_namespace(namespace),
        "since": start,
        "until": end,
        "limit": min(MAX_CANDIDATES, max(MIN_CANDIDATES, limit * CANDIDATES_PER_HIT)),
    }


def _best(rows: list[Row], now: datetime) -> list[tuple[float, Row]]:
    scored = [(ranked(row, now), row) for row in rows]
    # Best first; equal scores newest first (then the later document).
    scored.sort(key=lambda pair: (pair[0], _moment(pair[1]["occurred_at"]),
                                  pair[1]["doc_id"]), reverse=True)
    return scored


def _search_in_tx(tx: Tx, compiled: _Compiled, params: dict[str, Any],
                  limit: int, texts: bool = False) -> list[dict[str, Any]]:
    """The records with every word first; then, while the limit is not reached, those with
    some of them (``match`` says which). With ``texts`` each hit has, instead of a snippet,
    its record's text (``body``) and index words (``terms``: the stemmed words,
    blank-separated): a snippet stems every word it shows, a millisecond per hit in a new
    process."""
    now = datetime.now(UTC)
    found = _best(tx.all("search_hits", **params, match=compiled.match,
                         rank=compiled.rank), now)[:limit]
    hits = [_compiled_hit(compiled, row, score, texts) | {"match": "all"}
            for score, row in found]
    if compiled.relaxed is not None and len(hits) < limit:
        seen = {row["doc_id"] for _, row in found}
        match, rank = compiled.relaxed
        more = _best(tx.all("search_hits", **params, match=match, rank=rank), now)
        kept = [(score, row) for score, row in more if row["doc_id"] not in seen]
        hits += [_compiled_hit(compiled, row, score, texts) | {"match": "some"}
                 for score, row in kept[:limit - len(hits)]]
    return hits


def _compiled_hit(compiled: _Compiled, row: Row, score: float,
                  texts: bool = False) -> dict[str, Any]:
    if texts:
        return _record(row, score) | {"body": row["body"], "terms": row["terms"] or ""}
    return _hit(row, compiled.words, compiled.prefixes, compiled.matches, score)


def search_in_tx(tx: Tx, engine: SearchEngine, project_id: str, query: str, *,
                 kinds: Iterable[str], limit: int) -> list[dict[str, Any]]:
    """:meth:`SearchService.search` of free text (never raw) inside the caller's transaction,
    for a project the caller has checked; each hit with its record's text and index words
    (``body`` and ``terms``) instead of a snippet. Prompt-time recall reads it
    (``usecases.recall``)."""
    compiled = _compile(engine, query, False)
    params = _filters(project_id, kinds, None, None, None, None, None, limit)
    return _search_in_tx(tx, compiled, params, limit, texts=True)


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
        compiled = _compile(self.storage.search_engine(), query, raw)
        params = _filters(project_id, kinds, priority, content_type, namespace, since, until,
                          limit)

        def unit(tx: Tx) -> list[dict[str, Any]]:
            require_project(tx, project_id)
            return _search_in_tx(tx, compiled, params, limit)

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
            reindexed = engine.reindex_changed(tx)
            repaired: dict[str, Any] = {}
            for kind, (remove, add) in _REPAIRS.items():
                repaired[kind] = {"removed": tx.execute(remove), "added": tx.execute(add)}
            engine.index_pending(tx)  # the documents just added, before they are counted
            indexed = {row["kind"]: int(row["n"]) for row in tx.all("search_index_counts")}
            counts = {kind: indexed.get(kind, 0) for kind in KINDS}
            audit(tx, actor, "search.rebuild", "search_index", "search_documents", None,
                  indexed=counts, repaired=repaired, reindexed=reindexed)
            return counts

        return self.storage.write(unit)


# How a search finds the newest context items that match (``db.context.search``): a word in
# at least COMMON_MATCHES documents is looked for among the SEARCH_WINDOW newest items first,
# each looked up in the index, newest first until enough match (a few lookups for a common
# word, instead of reading its every match and sorting them); a rarer word, or one whose
# matches are not among the newest items, is read through all its matches, which are few.
COMMON_MATCHES = 2_000
SEARCH_WINDOW = 1_000


def newest_matching_items(tx: Tx, match: str, filters: dict[str, Any]) -> list[Row]:
    """The newest ``filters["limit"]`` live items of the project that match ``match`` (the
    engine's query text) and pass the structured filters."""
    many = tx.value("search_context_matches_upto", match=match, cap=COMMON_MATCHES,
                    project_id=filters["project_id"])
    if int(many or 0) >= COMMON_MATCHES:
        rows = tx.all("search_matching_newest_items", match=match, window=SEARCH_WINDOW,
                      **filters)
        if len(rows) == filters["limit"]:
            return rows
    return tx.all("search_matching_items", match=match, **filters)
