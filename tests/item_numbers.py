"""What a project's item numbers promise, by backend: SQLite draws them from the project's row,
one writer at a time, so they are 1..n; PostgreSQL (migration 0029) draws them from a sequence
without waiting for other writers' commits, so they are unique and increasing, with gaps
(docs/architecture.md, "Writers of one project draw numbers with gaps")."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from ctxdb.service import Ctxdb


def gapless(db: Ctxdb) -> bool:
    return not db.storage.dialect.numbers_commit_out_of_order


def check_numbers(db: Ctxdb, numbers: Iterable[int]) -> None:
    """A project's item numbers, in the order the items were stored where that is known: each
    one once; 1..n where they are gapless."""
    numbers = list(numbers)
    assert len(set(numbers)) == len(numbers), f"a number given twice: {numbers}"
    assert all(n >= 1 for n in numbers), numbers
    if gapless(db):
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), \
            "sequence numbers have gaps or repeats"


def check_increasing(db: Ctxdb, numbers: Iterable[int], *, alone: bool = True) -> None:
    """Numbers of items stored one after the other: each above the one before; by one where
    they are gapless and nothing else stored into the project meanwhile (``alone``)."""
    numbers = list(numbers)
    for earlier, later in itertools.pairwise(numbers):
        if alone and gapless(db):
            assert later == earlier + 1, numbers
        else:
            assert later > earlier, numbers
