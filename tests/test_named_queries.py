"""Named queries: how a ``.sql`` file is read, and each query compiled when first run."""

from __future__ import annotations

import pytest

from ctxdb.storage.dialect import POSTGRES, SQLITE, Dialect
from ctxdb.storage.queries import (
    compiled_queries,
    document_writers,
    parse_queries,
    raw_queries,
    with_included,
)


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


def test_a_query_includes_another_by_name() -> None:
    queries = {"inner": "UPDATE t SET n = n + 1 RETURNING n", "outer": "x"}
    assert with_included(queries, "WITH w AS ($QUERY(inner)) SELECT n FROM w") == (
        "WITH w AS (UPDATE t SET n = n + 1 RETURNING n) SELECT n FROM w")
    with pytest.raises(ValueError, match="'nested' is included and includes another"):
        with_included({"nested": "$QUERY(outer)"}, "$QUERY(nested)")
    every = raw_queries()
    assert not [name for name, sql in every.items() if "$QUERY(" in sql]
    # The PostgreSQL put is the SQLite put's update with its history and audit rows.
    assert every["update_live_memory"] in every["put_live_memory_recorded"]
    assert document_writers()["put_live_memory_recorded"]


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
