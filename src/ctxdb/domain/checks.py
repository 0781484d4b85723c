"""Checks of the fields the use cases take that have rules of their own: task priorities,
command arguments and exit codes, memory namespaces and versions, message recipients, search
kinds, conversation state.

Pure, and run by the services before any transaction starts, so that bad input changes
nothing; the checks every kind of record shares (ids, text, limits, choices from an enum,
durations) are in :mod:`ctxdb.domain.validation`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from ctxdb.domain.models import choices
from ctxdb.domain.validation import (
    MAX_INTEGER,
    check_choice,
    check_identifier,
    check_non_negative_int,
    encode_json,
)
from ctxdb.domain.vocabulary import RecipientKind, SearchKind
from ctxdb.errors import InvalidIdentifierError, InvalidPriorityError, ValidationError

MIN_TASK_PRIORITY, MAX_TASK_PRIORITY = -1_000_000, 1_000_000
# The context's priority names as task priorities: spaced, so numbers fit between them.
TASK_PRIORITY_OF = {"CRITICAL": 30, "HIGH": 20, "MEDIUM": 10, "LOW": 0}
MAX_ARGUMENTS = 10_000
_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+)*")


def check_task_priority(value: object) -> int:
    """A task's priority: an integer, higher runs first, or the name of a context priority
    (``TASK_PRIORITY_OF``: CRITICAL 30, HIGH 20, MEDIUM 10, LOW 0), so that people who
    think in the context's names need not learn a second scale."""
    if isinstance(value, str) and value.upper() in TASK_PRIORITY_OF:
        return TASK_PRIORITY_OF[value.upper()]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPriorityError(f"priority must be an integer or one of "
                                   f"{', '.join(TASK_PRIORITY_OF)}, got {value!r}")
    if not MIN_TASK_PRIORITY <= value <= MAX_TASK_PRIORITY:
        raise InvalidPriorityError(
            f"priority must be between {MIN_TASK_PRIORITY} and {MAX_TASK_PRIORITY}, got {value}")
    return value


def check_arguments(value: object, max_bytes: int) -> str:
    """A command run's arguments: a list of JSON values (usually strings), returned as JSON
    text."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValidationError(f"arguments must be a list, got {type(value).__name__}")
    if len(value) > MAX_ARGUMENTS:
        raise ValidationError(f"a command run has at most {MAX_ARGUMENTS} arguments")
    return encode_json(list(value), "command arguments", max_bytes)


def check_exit_code(value: object) -> int | None:
    """An exit status: any integer (negative for a signal, as Python reports it)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"exit_code must be an integer, got {value!r}")
    if not -MAX_INTEGER <= value <= MAX_INTEGER:
        raise ValidationError(f"exit_code is out of range: {value}")
    return value


def check_state(value: object, max_bytes: int) -> str:
    """A conversation session's state: a JSON object, returned as JSON text."""
    if not isinstance(value, dict):
        raise ValidationError(f"session state must be a JSON object, got {type(value).__name__}")
    return encode_json(value, "session state", max_bytes)


def check_namespace(value: object, what: str = "namespace") -> str:
    """A memory namespace path: segments of letters, digits, ``_ . -`` separated by ``:``."""
    value = check_identifier(value, what)
    if not _NAMESPACE.fullmatch(value):
        raise InvalidIdentifierError(
            f"{what} {value!r} is not a namespace path: segments of letters, digits, "
            "'_', '.' or '-' separated by ':' (such as 'user:prefs')", value=value)
    return value


def check_expected_version(value: object) -> int | None:
    """The memory version a compare-and-set expects (None: write unconditionally)."""
    if value is None:
        return None
    return check_non_negative_int(value, "expected_version", MAX_INTEGER)


def check_ttl(value: object) -> int | None:
    """A memory's time to live in seconds (None: its type's default)."""
    if value is None:
        return None
    seconds = check_non_negative_int(value, "ttl_seconds", MAX_INTEGER)
    if seconds == 0:
        raise ValidationError("ttl_seconds must be more than 0 (omit it for the type's default)")
    return seconds


def check_recipient(kind: object, recipient: object) -> tuple[RecipientKind, str | None]:
    """The addressing of a message: a broadcast has no recipient, the other kinds need one."""
    parsed = check_choice(kind, RecipientKind, "recipient_kind")
    if parsed is RecipientKind.BROADCAST:
        if recipient is not None:
            raise ValidationError(f"a broadcast has no recipient, got {recipient!r}")
        return parsed, None
    return parsed, check_identifier(recipient, "recipient")


def check_kinds(kinds: str | Iterable[str]) -> tuple[str, ...]:
    """The kinds to search: one name or several, each of context, memory, event, observation."""
    chosen = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    for kind in chosen:
        check_choice(kind, SearchKind, "kind", value=repr(kind))
    if not chosen:
        raise ValidationError(
            f"kinds must name at least one of {', '.join(choices(SearchKind))}")
    return tuple(dict.fromkeys(chosen))


def check_batch_size(value: Any, maximum: int) -> int:
    """How many records one transaction may change: 1 to ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError(f"batch_size must be an integer between 1 and {maximum}, "
                              f"got {value!r}", batch_size=repr(value))
    return value
