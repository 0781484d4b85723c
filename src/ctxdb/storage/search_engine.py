"""The full-text engine of each backend: its query syntax and its index's upkeep.

A search as a user types it is parsed by ``domain.search`` into alternatives (OR) of groups
of terms (AND), each term a word or a phrase, possibly excluded or a prefix. How that is
written for the engine is the backend's business: SQLite FTS5's ``MATCH`` syntax, PostgreSQL's
``to_tsquery`` text. :class:`SearchEngine` is the interface, with one implementation per
backend (:meth:`Storage.search_engine`, :func:`engine_of`); the queries themselves (``$SEARCH_*`` in
``queries/search.sql``) are expanded by ``dialect.py``.

Every word is quoted, and words hold only letters and digits, so nothing a user types can
become an operator: the quotes need no escaping. The parsed query is read through the
:class:`Query` protocol, so storage needs nothing of the domain's types.

Both engines index ``search_documents.terms``, the text ``search_text.py`` makes of a
document's body (words split, camelCase split, stemmed), and the words of a query are written
through the same normalisation, so a query matches alike on both backends.
:func:`index_pending` gives their terms to the documents the triggers wrote in a transaction,
before it commits (:meth:`Storage.write`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Protocol

from ctxdb.errors import StorageError
from ctxdb.storage.base import PENDING_BATCH, Tx, raw
from ctxdb.storage.dialect import POSTGRES, SQLITE, Dialect
from ctxdb.storage.search_text import prefix_words, query_words, word_matcher


class Term(Protocol):
    """A word or a phrase (words that must follow each other), possibly excluded."""

    @property
    def words(self) -> tuple[str, ...]: ...

    @property
    def excluded(self) -> bool: ...

    @property
    def prefix(self) -> bool: ...


class Query(Protocol):
    """Alternatives (OR) of groups of terms that must all hold (AND)."""

    @property
    def groups(self) -> Sequence[Sequence[Term]]: ...


class SearchEngine(abc.ABC):
    dialect: Dialect

    @abc.abstractmethod
    def query_text(self, query: Query) -> str:
        """The engine's own text of a parsed query (the ``:match`` and ``:rank`` parameters
        of the search queries)."""

    def refresh_index(self, tx: Tx) -> None:
        """Make the engine's index agree with the documents whatever state it is in, in
        ``tx``, before documents that disagree with their record are repaired (nothing
        where the index is a generated column, which cannot disagree)."""
        rebuild_engine_index(tx, self.dialect)

    def index_pending(self, tx: Tx) -> int:
        """Give their terms to the documents that have none (see :func:`index_pending`);
        returns the highest id among them (0 when there were none)."""
        return index_pending(tx)

    def reindex_changed(self, tx: Tx) -> int:
        """Write again the terms that the rules of search_text.py no longer make."""
        return reindex_changed(tx)

    def highlighter(self, query: Query) -> Callable[[str], bool]:
        """Whether a word of a document is one ``query`` finds (for snippets)."""
        return highlighter(query)

    def raw_highlighter(self, words: Sequence[str]) -> Callable[[str], bool]:
        """The same for the words of a query in the engine's own syntax (index words)."""
        return word_matcher(query_words(tuple(words)), ())

    def refused(self, error: StorageError) -> bool:
        """Whether ``error`` is the engine refusing a query in its own syntax (raw searches)."""
        return any(marker in str(error) for marker in self.dialect.search_query_errors)


def index_words(term: Term) -> tuple[str, ...]:
    """The words of a query term as the index holds them (the last one a prefix if the term
    is one)."""
    return prefix_words(term.words) if term.prefix else query_words(term.words)


def highlighter(query: Query) -> Callable[[str], bool]:
    """Whether a word of a document is one ``query`` finds (not one it excludes)."""
    terms = [t for group in query.groups for t in group if not t.excluded]
    words = [word for t in terms for word in (index_words(t)[:-1] if t.prefix else index_words(t))]
    prefixes = [index_words(t)[-1] for t in terms if t.prefix and index_words(t)]
    return word_matcher(words, prefixes)


def index_pending(tx: Tx, after: int = 0) -> int:
    """Give their terms to the documents that have none (written or changed in this
    transaction, or by a migration), those with an id above ``after``; returns the highest
    id among them (``after`` when there were none)."""
    from ctxdb.storage.search_text import index_terms

    # Asked with the last statement that wrote a document, where that saves a round trip.
    looked = raw(tx).looked("search_pending_documents", after=after, limit=PENDING_BATCH)
    while rows := (looked if looked is not None else
                   tx.all("search_pending_documents", after=after, limit=PENDING_BATCH)):
        looked = None
        raw(tx).set_terms([(row["doc_id"], index_terms(row["body"])) for row in rows])
        after = rows[-1]["doc_id"]
        if len(rows) < PENDING_BATCH:  # the last batch: asking again would find nothing
            break
    return after


def reindex_changed(tx: Tx) -> int:
    """Write again the terms of the documents whose terms are not what the rules of
    ``search_text.py`` make of their body now (a damaged row, another stemmer version);
    returns how many."""
    from ctxdb.storage.search_text import index_terms

    changed, after = 0, 0
    while rows := tx.all("search_indexed_documents", after=after, limit=PENDING_BATCH):
        for row in rows:
            terms = index_terms(row["body"])
            if terms != row["terms"]:
                tx.defer("search_set_terms", doc_id=row["doc_id"], terms=terms)
                changed += 1
        after = rows[-1]["doc_id"]
    return changed


def rebuild_engine_index(tx: Tx, dialect: Dialect) -> None:
    """Rebuild the engine's own index from the documents (SQLite's FTS5 table), after giving
    every document its terms: the rebuild reads them, and would otherwise enter documents
    without terms that the triggers add again once they have them."""
    if dialect.search_rebuild is not None:
        index_pending(tx)
        raw(tx).one_raw(dialect.search_rebuild, {})


def fts5_query(query: Query) -> str:
    """The SQLite FTS5 MATCH expression of a parsed query."""
    def term(t: Term) -> str:
        return f'"{" ".join(index_words(t))}"' + (" *" if t.prefix else "")

    def group(terms: Sequence[Term]) -> str:
        text = " AND ".join(term(t) for t in terms if not t.excluded)
        # FTS5's NOT is binary ("a NOT b"), which is why a group needs a term to find.
        return "(" + text + "".join(f" NOT {term(t)}" for t in terms if t.excluded) + ")"

    return " OR ".join(group(g) for g in query.groups)


def tsquery(query: Query) -> str:
    """The PostgreSQL ``to_tsquery`` text of a parsed query."""
    def term(t: Term) -> str:
        text = " <-> ".join(f"'{word}'" for word in index_words(t)) + (":*" if t.prefix else "")
        return f"!({text})" if t.excluded else f"({text})"

    return " | ".join("(" + " & ".join(term(t) for t in g) + ")" for g in query.groups)


class Fts5Engine(SearchEngine):
    """SQLite: an FTS5 table over the documents (an external-content index)."""

    dialect = SQLITE

    def query_text(self, query: Query) -> str:
        return fts5_query(query)


class TsqueryEngine(SearchEngine):
    """PostgreSQL: a generated ``tsvector`` column of the documents with a GIN index."""

    dialect = POSTGRES

    def query_text(self, query: Query) -> str:
        return tsquery(query)


def engine_of(dialect: Dialect) -> SearchEngine:
    """The full-text engine of the backend that speaks ``dialect``."""
    return next(kind() for kind in (Fts5Engine, TsqueryEngine) if kind.dialect is dialect)
