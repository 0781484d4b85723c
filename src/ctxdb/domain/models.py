"""Domain vocabulary: priorities, statuses and their legal transitions."""

from __future__ import annotations

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
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        raise InvalidPriorityError(
            f"invalid priority {value!r}: expected one of CRITICAL, HIGH, MEDIUM, LOW",
            value=repr(value),
        )


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

# Which phase transitions each command may make; anything else is an InvalidTransitionError.
PHASE_TRANSITIONS: dict[PhaseStatus, tuple[PhaseStatus, ...]] = {
    PhaseStatus.ACTIVE: (PhaseStatus.PENDING, PhaseStatus.BLOCKED),
    PhaseStatus.COMPLETED: (PhaseStatus.ACTIVE, PhaseStatus.BLOCKED),
    PhaseStatus.BLOCKED: (PhaseStatus.PENDING, PhaseStatus.ACTIVE),
}


E = TypeVar("E", bound=StrEnum)


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
