"""Named SQL queries, loaded once from the ``.sql`` files in ``queries/``.

A file holds blocks introduced by ``-- name: some_query``. Names are unique across files.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from ctxdb.storage.dialect import Dialect

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
# A statement that writes a record the search triggers make a document of, or a document.
_WRITES_DOCUMENTS = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE)\s+(?:context_items|memories|session_events|observations|search_documents)\b",
    re.IGNORECASE)


def parse_queries(text: str) -> dict[str, str]:
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip().rstrip(";")
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
    return merged


@functools.cache
def compiled_queries(dialect: Dialect) -> dict[str, str]:
    return {name: dialect.compile(sql) for name, sql in raw_queries().items()}


@functools.cache
def document_writers() -> frozenset[str]:
    """The named queries after which a transaction may hold search documents without their
    index terms (Storage.indexing looks for them only then)."""
    return frozenset(name for name, sql in raw_queries().items() if _WRITES_DOCUMENTS.search(sql))
