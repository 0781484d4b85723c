"""Timing and reporting: paired repetitions, medians, the ratio table.

Every measurement runs the ctxdb side and the raw-driver side back to back, alternating which
goes first, so that a burst of load from another process on the (shared, 2-core) machine hits
both sides alike. The figure reported for each side is the median over the repetitions.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

# One repetition: does the work and returns (seconds spent, operations done).
Repetition = Callable[[], tuple[float, int]]


@dataclass
class Result:
    """One row of the table: a ctxdb figure, the raw figure and whether the target is met."""

    operation: str
    backend: str
    unit: str  # "ops/s" (higher is better) or "ms" (lower is better)
    ctxdb: float
    raw: float
    target: float  # a bound on ctxdb / raw, or with ``absolute`` on ctxdb's own figure
    repetitions: int
    note: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)
    absolute: bool = False

    @property
    def higher_is_better(self) -> bool:
        return self.unit == "ops/s"

    @property
    def ratio(self) -> float:
        return self.ctxdb / self.raw if self.raw else float("inf")

    @property
    def passed(self) -> bool:
        value = self.ctxdb if self.absolute else self.ratio
        return value >= self.target if self.higher_is_better else value <= self.target

    @property
    def target_text(self) -> str:
        bound = f"{self.target:.2f} {self.unit}" if self.absolute else f"{self.target:.2f}x"
        return f"{'>=' if self.higher_is_better else '<='} {bound}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(ratio=self.ratio, passed=self.passed, target_text=self.target_text)
        return data


def timed(work: Callable[[], int]) -> tuple[float, int]:
    """Run ``work`` (which returns how many operations it did) and time it."""
    started = time.perf_counter()
    operations = work()
    return time.perf_counter() - started, operations


def measure_pair(
    ctxdb_rep: Repetition, raw_rep: Repetition, repetitions: int, warmups: int = 1
) -> tuple[list[float], list[float]]:
    """Seconds per operation of each side, one sample per repetition (after the warm-ups)."""
    ctxdb_samples, raw_samples = measure_sides([ctxdb_rep, raw_rep], repetitions, warmups)
    return ctxdb_samples, raw_samples


def measure_sides(
    reps: list[Repetition], repetitions: int, warmups: int = 1
) -> list[list[float]]:
    """Like :func:`measure_pair` for any number of sides; the order rotates every repetition."""
    samples: list[list[float]] = [[] for _ in reps]
    for number in range(warmups + repetitions):
        shift = number % len(reps)
        for index in [*range(shift, len(reps)), *range(shift)]:
            gc.collect()  # garbage of the previous side is not charged to this one
            seconds, operations = reps[index]()
            if number >= warmups:
                samples[index].append(seconds / operations)
    return samples


def throughput_result(
    operation: str, backend: str, target: float, samples: tuple[list[float], list[float]],
    note: str = "",
) -> Result:
    ctxdb_s, raw_s = samples
    return Result(operation, backend, "ops/s", 1 / statistics.median(ctxdb_s),
                  1 / statistics.median(raw_s), target, len(ctxdb_s), note,
                  {"ctxdb_seconds_per_op": ctxdb_s, "raw_seconds_per_op": raw_s})


def latency_result(
    operation: str, backend: str, target: float, samples: tuple[list[float], list[float]],
    note: str = "",
) -> Result:
    ctxdb_s, raw_s = samples
    return Result(operation, backend, "ms", statistics.median(ctxdb_s) * 1000,
                  statistics.median(raw_s) * 1000, target, len(ctxdb_s), note,
                  {"ctxdb_seconds_per_op": ctxdb_s, "raw_seconds_per_op": raw_s})


def percentile_result(
    operation: str, backend: str, target: float, samples: tuple[list[float], list[float]],
    note: str = "", absolute: bool = False,
) -> Result:
    """Per-call latencies: the median (p50) of every single call of each side, in ms."""
    ctxdb_s, raw_s = samples
    return Result(operation, backend, "ms", statistics.median(ctxdb_s) * 1000,
                  statistics.median(raw_s) * 1000, target, len(ctxdb_s), note,
                  {"ctxdb_seconds_per_op": ctxdb_s, "raw_seconds_per_op": raw_s}, absolute)


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) > 1 else samples[0]


HEADER = ("operation", "backend", "ctxdb", "raw", "ratio", "target", "reps", "result")


def format_table(results: list[Result]) -> str:
    rows = [HEADER]
    for r in results:
        rows.append((
            r.operation, r.backend, f"{r.ctxdb:,.2f} {r.unit}", f"{r.raw:,.2f} {r.unit}",
            f"{r.ratio:.2f}x", r.target_text, str(r.repetitions),
            "PASS" if r.passed else "FAIL",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    notes = [f"  * {r.operation} ({r.backend}): {r.note}" for r in results if r.note]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))
