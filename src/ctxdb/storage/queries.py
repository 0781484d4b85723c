"""Named SQL queries, loaded once from the ``.sql`` files in ``queries/``.

A file holds blocks introduced by ``-- name: some_query``. Names are unique across files.
Each query is compiled for a dialect when first run: a hook process runs a dozen of the
hundreds there are.

``$QUERY(other)`` in a query stands for the whole text of the query named ``other`` (which
holds no ``$QUERY`` itself), so that a statement one backend sends alone and the other sends
as a part of a larger one (PostgreSQL's data-modifying ``WITH``) is written once.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from ctxdb.storage.dialect import Dialect

_NAME = re.compile(r"--[ \t]*name:[ \t]*(\w+)\s*$")
_INCLUDE = re.compile(r"\$QUERY\((\w+)\)")
# A statement that writes a record the search triggers make a document of, or a document.
_WRITES_DOCUMENTS = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE)\s+(?:context_items|memories|session_events|observations|search_documents)\b",
    re.IGNORECASE)
# Said in a query's comment by a statement that writes such a record but leaves no document
# without its terms that the look after the unit must find: the store's document written with
# them (or, where documents may wait for their terms, Tx.pending_limit, without them, the
# store having asked whether the look is due), and the item it was written for.
_LEAVES_NONE = "-- Leaves no document without terms"


def parse_queries(text: str) -> dict[str, str]:
    """Each ``-- name: N`` line's query: the lines up to the next one (what comes before the
    first is no query). Read line by line, only comment lines tried as a name: every
    process reads all the files."""
    queries: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []
    for line in [*text.splitlines(keepends=True), "-- name: _end"]:
        header = _NAME.match(line) if line.startswith("--") else None
        if header is None:
            body.append(line)
            continue
        if name is not None:
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice")
            queries[name] = "".join(body).strip().rstrip(";")
        name, body = header[1], []
    return queries


@functools.cache
def raw_queries() -> dict[str, str]:
    merged: dict[str, str] = {}
    # The package's own folder, read directly: importing importlib.resources costs every
    # short-lived process (a hook per agent event) more than reading the files.
    folder = Path(__file__).with_name("queries")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, sql in parse_queries(entry.read_text("utf-8")).items():
            if name in merged:
                raise ValueError(f"query {name!r} is defined in two files")
            merged[name] = sql
    return {name: with_included(merged, sql) for name, sql in merged.items()}


def with_included(queries: dict[str, str], sql: str) -> str:
    """``sql`` with each ``$QUERY(name)`` replaced by that query's text."""
    if "$QUERY(" not in sql:  # nearly every query: no pattern run on every process's start
        return sql

    def text(match: re.Match[str]) -> str:
        included = queries[match[1]]
        if "$QUERY(" in included:
            raise ValueError(f"query {match[1]!r} is included and includes another itself")
        return included

    return _INCLUDE.sub(text, sql)


class CompiledQueries(dict[str, str]):
    """Query name -> its SQL in one dialect, compiled on first use; a ``KeyError`` for a name
    no file defines."""

    def __init__(self, dialect: Dialect) -> None:
        super().__init__()
        self.dialect = dialect

    def __missing__(self, name: str) -> str:
        sql = self[name] = self.dialect.compile(raw_queries()[name])
        return sql


@functools.cache
def compiled_queries(dialect: Dialect) -> CompiledQueries:
    return CompiledQueries(dialect)


class DocumentWriters(dict[str, bool]):
    """Query name -> whether it may leave search documents without their index terms in the
    transaction (Storage.indexing looks for them only then); answered on first use."""

    def __missing__(self, name: str) -> bool:
        sql = raw_queries().get(name, "")
        writes = self[name] = (_WRITES_DOCUMENTS.search(sql) is not None
                               and _LEAVES_NONE not in sql)
        return writes


@functools.cache
def document_writers() -> DocumentWriters:
    return DocumentWriters()
