"""CPU seconds used by a process and all its descendants, read from ``/proc`` (Linux).

The fleet benchmark runs its agents on the same cores as the servers, on a machine shared
with other work: the wall-clock figures move with the load, the servers' own CPU time per
event much less. ``ctxdb serve --workers N`` runs its workers as child processes of the one
started, so the whole tree is counted (a worker's time is in its own ``/proc`` entry while it
runs; the parent's ``cutime`` holds it only once it has been waited for, and is not added).
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return text[text.rindex(")") + 2:].split()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry.name))  # fields[1]: ppid
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of ``pid`` and its live descendants."""
    tree = _children()
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        fields = _stat_fields(current)
        if fields is not None:
            total += (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
        pending += tree.get(current, [])
    return total


def available() -> bool:
    return Path("/proc/self/stat").exists()
