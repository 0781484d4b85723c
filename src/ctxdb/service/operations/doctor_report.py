"""What ``ctxdb doctor`` reports: one :class:`Check` per probe, gathered in a
:class:`DoctorReport`, and how their details name what they found."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

PASS, WARN, FAIL = "pass", "warn", "fail"
# A check that could not look (PostgreSQL without amcheck): neither a pass nor a finding.
SKIP = "skipped"
_MOST_LISTED = 5  # problems named in a detail line; the data carries all of them


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # PASS, WARN, FAIL or SKIP
    detail: str
    fixed: str = ""  # what --fix did about it; empty when nothing
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DoctorReport:
    backend: str
    location: str
    fix: bool
    thorough: bool
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """No check failed (warnings are allowed)."""
        return all(check.status != FAIL for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        counts = {status: sum(c.status == status for c in self.checks)
                  for status in (PASS, WARN, FAIL, SKIP)}
        return {"backend": self.backend, "location": self.location, "ok": self.ok,
                "fix": self.fix, "thorough": self.thorough, "summary": counts,
                "checks": [check.to_dict() for check in self.checks]}


def listed(items: list[str]) -> str:
    shown = "; ".join(items[:_MOST_LISTED])
    return shown + (f"; … {len(items) - _MOST_LISTED} more" if len(items) > _MOST_LISTED else "")


def mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
