"""How long operations report progress: a phase with a total, then steps of it.

The one progress protocol of ctxdb: bundles, ``db copy``, ``gc``, ``doctor``, the audit chain,
imports, and backups down to the backend that copies pages (so it imports nothing of ctxdb,
like ``errors.py``). The code doing the work calls it; a front end decides how to show it (the
CLI: a Rich progress bar on stderr). Calls come every batch of rows, never every row.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, phase: str, total: int | None) -> None:
        """A new phase (``verify``, ``import``, ``copy`` …) of ``total`` units, if known."""

    def advance(self, amount: int) -> None:
        """``amount`` more units of the current phase are done."""


class NoProgress:
    """Reports nothing (library callers that do not ask for progress)."""

    def start(self, phase: str, total: int | None) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass
