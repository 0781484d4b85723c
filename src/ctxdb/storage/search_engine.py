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
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Protocol

from ctxdb.errors import StorageError
from ctxdb.storage.base import Tx, raw
from ctxdb.storage.dialect import POSTGRES, SQLITE, Dialect


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
        if self.dialect.search_rebuild is not None:
            raw(tx).one_raw(self.dialect.search_rebuild, {})

    def refused(self, error: StorageError) -> bool:
        """Whether ``error`` is the engine refusing a query in its own syntax (raw searches)."""
        return any(marker in str(error) for marker in self.dialect.search_query_errors)


def fts5_query(query: Query) -> str:
    """The SQLite FTS5 MATCH expression of a parsed query."""
    def term(t: Term) -> str:
        return f'"{" ".join(t.words)}"' + (" *" if t.prefix else "")

    def group(terms: Sequence[Term]) -> str:
        text = " AND ".join(term(t) for t in terms if not t.excluded)
        # FTS5's NOT is binary ("a NOT b"), which is why a group needs a term to find.
        return "(" + text + "".join(f" NOT {term(t)}" for t in terms if t.excluded) + ")"

    return " OR ".join(group(g) for g in query.groups)


def tsquery(query: Query) -> str:
    """The PostgreSQL ``to_tsquery`` text of a parsed query."""
    def term(t: Term) -> str:
        text = " <-> ".join(f"'{word}'" for word in t.words) + (":*" if t.prefix else "")
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
