"""The one Rich progress bar on stderr, for the phases of every long operation (bundles,
``db copy``, ``gc``, ``doctor``, ``audit``, ``import``, ``backup``, ``restore``); stdout stays
for the result, or for the bundle itself with ``ctxdb export -``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctxdb.progress import Progress

LABELS = {"export": "exporting records", "verify": "verifying", "check": "checking records",
          "import": "importing records", "copy": "copying rows", "doctor": "running checks",
          "gc:memories": "removing expired memories", "gc:instances": "removing ended instances",
          "gc:session_events": "removing old session events",
          "gc:context_items": "archiving old context items",
          "gc:audit_entries": "audit entries", "audit seal": "sealing audit entries",
          "audit verify": "verifying audit chains", "read": "reading files",
          "write": "writing"}


class _RichPhases:
    def __init__(self, bar: Any) -> None:
        self._bar = bar
        self._task: Any = None

    def start(self, phase: str, total: int | None) -> None:
        if self._task is not None:
            self._bar.update(self._task, visible=False)
        self._task = self._bar.add_task(LABELS.get(phase, phase), total=total)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, amount)


@contextmanager
def phase_progress(enabled: bool) -> Iterator[Progress]:
    """Progress of the phases of a long operation, shown when ``enabled`` (not with --json)."""
    from ctxdb.progress import NoProgress

    if not enabled:
        yield NoProgress()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        yield _RichPhases(bar)
