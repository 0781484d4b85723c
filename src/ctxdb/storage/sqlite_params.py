"""Named queries as SQLite runs them: numbered placeholders, their values taken in order.

The ``sqlite3`` module binds a ``:name`` placeholder from a dict by making a string of each
name and looking it up, on every execute; a numbered one (``?1``) is bound from a tuple by
position. So each named query is sent with ``?N`` in place of each ``:name`` (the same number
for each use of a name), and its values are picked from the keyword arguments in that order by
one C-level ``operator.itemgetter``: about a fifth of the driver's work for a statement of a
dozen values (see docs/benchmarks.md). The text is otherwise the query's own.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

# A string literal, a quoted name, a comment (left as they are), or a placeholder (group 1):
# a colon not after another colon or a word character, then a name.
_PIECES = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|(?<![:\w]):([A-Za-z_]\w*)",
    re.DOTALL)

Values = Callable[[dict[str, Any]], tuple[Any, ...]]


def numbered(sql: str) -> tuple[str, Values]:
    """``sql`` with numbered placeholders, and what picks its values from a dict of them
    (``KeyError`` for a name the dict lacks)."""
    names: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        if match[1] is None:
            return match[0]
        return f"?{names.setdefault(match[1], len(names) + 1)}"

    text = _PIECES.sub(number, sql)
    return text, _picker(tuple(names))


def _picker(names: tuple[str, ...]) -> Values:
    if not names:
        return lambda params: ()
    if len(names) == 1:  # itemgetter of one name answers the value itself, not a tuple
        (name,) = names
        return lambda params: (params[name],)
    pick: Values = operator.itemgetter(*names)
    return pick


class NumberedQueries(dict[str, tuple[str, Values]]):
    """Query name -> its numbered SQL and value picker, made on first use from ``named``
    (the dialect's compiled queries, ``:name`` placeholders)."""

    def __init__(self, named: dict[str, str]) -> None:
        super().__init__()
        self.named = named

    def __missing__(self, name: str) -> tuple[str, Values]:
        statement = self[name] = numbered(self.named[name])
        return statement
