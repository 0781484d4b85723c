"""Named queries: how a ``.sql`` file is read, and each query compiled when first run."""

from __future__ import annotations

import pytest

from ctxdb.storage.dialect import POSTGRES, SQLITE, Dialect
from ctxdb.storage.queries import compiled_queries, document_writers, parse_queries, raw_queries


def test_a_file_is_read_as_the_queries_under_their_name_lines() -> None:
    text = ("-- Queries of a table (no query before the first name line).\n"
            "-- name: first\n-- what it does\nSELECT 1;\n\n"
            "--name:second  \nSELECT 2\n  FROM t -- name: not_a_header\n;  \n"
            "-- name: last\nSELECT 3")
    assert parse_queries(text) == {"first": "-- what it does\nSELECT 1",
                                   "second": "SELECT 2\n  FROM t -- name: not_a_header\n",
                                   "last": "SELECT 3"}
    assert parse_queries("no queries here\n") == {}
    with pytest.raises(ValueError, match="'first' is defined twice"):
        parse_queries("-- name: first\nSELECT 1;\n-- name: first\nSELECT 2;\n")


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES], ids=["sqlite", "postgres"])
def test_every_query_compiles_on_first_use_as_it_would_all_at_once(dialect: Dialect) -> None:
    compiled = compiled_queries(dialect)
    for name, sql in raw_queries().items():
        assert compiled[name] == dialect.compile(sql)
    with pytest.raises(KeyError):
        _ = compiled["no_such_query"]


def test_the_queries_that_write_documents_are_told_apart() -> None:
    writers = document_writers()
    assert writers["insert_item"] and not writers["latest_applied_version"]
    assert not writers["no_such_query"]
