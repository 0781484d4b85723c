"""The plain records an import plans to write, and the report of what it did."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# What happened to each record; the report counts them per kind.
IMPORTED = "imported"  # new
UPDATED = "updated"  # replaced an older import of the same section, item or memory
UNCHANGED = "unchanged"  # imported before exactly like this
SKIPPED = "skipped"  # not imported, with a reason
OUTCOMES = (IMPORTED, UPDATED, UNCHANGED, SKIPPED)


def digest(text: str, length: int = 16) -> str:
    """A short, stable hex digest of ``text`` (for idempotency keys)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def canonical(value: Any) -> str:
    """JSON text that is equal for equal values (keys sorted), for hashing."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class ItemRecord:
    """A context item to import.

    ``slot`` names where it came from (a file and a section, or a file and an item key). The
    item's idempotency key is ``import:<kind>:<slot digest>:<content digest>:<base>``, where
    ``base`` is the id of the item it replaces (0 for the first): importing content the
    slot already holds adds nothing, and new content supersedes what the slot held.
    """

    kind: str
    source: str
    slot: str
    content: Any
    priority: str
    content_type: str
    metadata: dict[str, Any]
    token_count: int | None = None

    @property
    def slot_prefix(self) -> str:
        return f"import:{self.kind}:{digest(self.slot)}:"

    @property
    def content_digest(self) -> str:
        return digest(canonical([self.content, self.priority, self.content_type,
                                 self.metadata, self.token_count]))

    def idempotency_key(self, replaces: int | None) -> str:
        return f"{self.slot_prefix}{self.content_digest}:{replaces or 0}"


def key_slot_and_digest(key: str) -> tuple[str, str] | None:
    """(slot prefix, content digest) of an import key, or ``None`` for another key."""
    parts = key.split(":")
    if len(parts) != 5 or parts[0] != "import":
        return None
    return ":".join(parts[:3]) + ":", parts[3]


@dataclass(frozen=True)
class MemoryRecord:
    """A memory to import: a new version is written only when the value differs."""

    kind: str
    source: str
    namespace: str
    key: str
    value: Any
    memory_type: str = "semantic"


@dataclass(frozen=True)
class Skip:
    """A file (or part of one) that is not imported, and why."""

    kind: str
    source: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.source, "reason": self.reason}


@dataclass
class FilesPlan:
    """Everything a scan of a folder found, before anything is written."""

    root: str
    items: list[ItemRecord] = field(default_factory=list)
    memories: list[MemoryRecord] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    files_read: int = 0


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do): counts per kind and outcome."""

    source: str
    dry_run: bool
    project_id: str | None = None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def count(self, kind: str, outcome: str, n: int = 1) -> None:
        per_kind = self.counts.setdefault(kind, dict.fromkeys(OUTCOMES, 0))
        per_kind[outcome] += n

    def skip(self, skip: Skip) -> None:
        self.count(skip.kind, SKIPPED)
        self.skipped.append(skip.to_dict())

    def total(self, outcome: str) -> int:
        return sum(per_kind[outcome] for per_kind in self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "project_id": self.project_id,
            "counts": self.counts,
            "totals": {outcome: self.total(outcome) for outcome in OUTCOMES},
            "skipped": self.skipped,
            **self.details,
        }
