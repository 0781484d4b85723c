"""The limits every JSON input is read within: nesting depth and integer length.

A module of its own, importing nothing: ``domain.validation`` reads JSON with them, and so
does the remote hook's short path (``hooks.remote_entry``), which cannot afford ``json``
(it imports ``re``) on every prompt.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's own costs the hook more than this module
if TYPE_CHECKING:
    from collections.abc import Iterable

MAX_JSON_DEPTH = 100
# Integers: Python converts at most 4,300 digits between text and int (CVE-2020-10735).
MAX_JSON_INTEGER_DIGITS = 4_300


class IntegerTooLong(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


def bounded_int(digits: str) -> int:
    """``int(digits)``, or :class:`IntegerTooLong` over ``MAX_JSON_INTEGER_DIGITS`` digits
    (JSON's ``parse_int``)."""
    if len(digits.lstrip("-")) > MAX_JSON_INTEGER_DIGITS:
        raise IntegerTooLong(len(digits.lstrip("-")))
    return int(digits)


def json_depth_over(value: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests lists and objects deeper than ``limit`` (iterative: a value
    too deep for recursion is measured too)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            children: Iterable[object] = current.values()
        elif isinstance(current, list | tuple):
            children = current
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
