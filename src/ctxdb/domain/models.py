"""Domain vocabulary: priorities, phase and instance statuses and their legal transitions.

Every closed set of words a caller may pass is one ``StrEnum``, here or (for the use cases
the hooks never reach: tasks, command runs, approval gates, conversations, memories,
messages, search, handoffs) in :mod:`ctxdb.domain.vocabulary`, which keeps this module,
imported by every hook, small. The services check input against the enum (``check_choice`` in
:mod:`ctxdb.domain.validation`, or ``parse`` here) and every front end builds its choices from
it (``choices``), so that a value is added in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TypeVar

from ctxdb.errors import InvalidPriorityError, InvalidStatusError


class Priority(StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"

    @classmethod
    def parse(cls, value: object) -> Priority:
        if isinstance(value, Priority):
            return value
        if isinstance(value, str) and (level := _PRIORITY_BY_NAME.get(value.upper())):
            return level
        raise InvalidPriorityError(
            f"invalid priority {value!r}: expected one of CRITICAL, HIGH, MEDIUM, LOW",
            value=repr(value),
        )


# The levels by name, read by Priority.parse on every write: a dict's look-up, where the
# enum's own (``__members__``, ``cls[name]``) runs Python code of the enum module.
_PRIORITY_BY_NAME: dict[str, Priority] = {level.value: level for level in Priority}

PRIORITY_ORDER: tuple[Priority, ...] = (
    Priority.CRITICAL, Priority.HIGH, Priority.MEDIUM, Priority.LOW,
)


class PhaseStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    BLOCKED = "blocked"


class InstanceStatus(StrEnum):
    ACTIVE = "active"
    IDLE = "idle"
    CRASHED = "crashed"
    COMPLETED = "completed"


LIVE_INSTANCE_STATUSES = (InstanceStatus.ACTIVE, InstanceStatus.IDLE)

# A context item's content type when the caller names none. The seed's API defines it
# (store_context(..., content_type='code'), and 'code' for an item of its JSON loader without
# a type); the library, the CLI, MCP, HTTP and the JSON importer all keep that one default.
DEFAULT_CONTENT_TYPE = "code"

# Which phase transitions each command may make; anything else is an InvalidTransitionError.
PHASE_TRANSITIONS: dict[PhaseStatus, tuple[PhaseStatus, ...]] = {
    PhaseStatus.ACTIVE: (PhaseStatus.PENDING, PhaseStatus.BLOCKED),
    PhaseStatus.COMPLETED: (PhaseStatus.ACTIVE, PhaseStatus.BLOCKED),
    PhaseStatus.BLOCKED: (PhaseStatus.PENDING, PhaseStatus.ACTIVE),
}



E = TypeVar("E", bound=StrEnum)


def choices(members: Iterable[StrEnum]) -> list[str]:
    """The values of ``members`` (an enum or some of its members), in order: what a front end
    offers as choices (a CLI option, an MCP tool's schema)."""
    return [member.value for member in members]


def parse_status(enum: type[E], value: object) -> E:
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value.lower())
        except ValueError:
            pass
    allowed = ", ".join(member.value for member in enum)
    raise InvalidStatusError(
        f"invalid {enum.__name__} {value!r}: expected one of {allowed}", value=repr(value)
    )
