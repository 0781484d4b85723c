"""The figures bench/peers.py collects for each contender, and its report (Markdown tables)."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sqlite3
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

from peer_base import WARMUP_WRITES, sqlite_default_synchronous
from peer_contenders import CONTENDERS, RAW_OF

PACKAGES = ("ctxdb", "langgraph", "langgraph-checkpoint-sqlite",
            "langgraph-checkpoint-postgres", "openai-agents", "psycopg")


@dataclass
class Figures:
    """One contender's samples: a figure per run (medians are taken over the runs), every
    single write's seconds, and the counts that show whether every write is there."""

    write_rates: list[float] = field(default_factory=list)
    write_latencies: list[float] = field(default_factory=list)
    read_rates: list[float] = field(default_factory=list)
    load_seconds: list[float] = field(default_factory=list)
    writer_rates: list[float] = field(default_factory=list)
    writer_worst: list[float] = field(default_factory=list)
    single_acknowledged: int = 0
    single_found: int = 0
    writer_acknowledged: int = 0
    writer_found: int = 0
    errors: list[str] = field(default_factory=list)  # writes the store refused
    mismatches: list[str] = field(default_factory=list)  # reads unlike what was written

    @property
    def intact(self) -> bool:
        """Every acknowledged write found, every read as written."""
        return (self.single_found == self.single_acknowledged
                and self.writer_found == self.writer_acknowledged and not self.mismatches)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "intact": self.intact}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _number(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ms(seconds: float | None) -> str:
    return _number(None if seconds is None else seconds * 1e3, 2)


def _ratio(value: float | None, raw: float | None) -> str:
    return "n/a" if value is None or not raw else f"{value / raw:.2f}×"


def _counts(acknowledged: int, found: int) -> str:
    verdict = "all found" if found == acknowledged else f"**{acknowledged - found:,} LOST**"
    return f"{acknowledged:,} / {found:,} ({verdict})"


def _quantile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _label(kind: str) -> str:
    name = CONTENDERS[kind].name
    return f"**{name}**" if kind.startswith("ctxdb") else name


def _raw(figures: dict[str, Figures], kind: str) -> Figures | None:
    return figures.get(RAW_OF[CONTENDERS[kind].backend])


def _postgres_settings(url: str) -> str:
    import psycopg

    shown = []
    with psycopg.connect(url, connect_timeout=5) as conn:
        for name in ("server_version", "synchronous_commit", "fsync"):
            row = conn.execute(f"SHOW {name}").fetchone()
            shown.append(f"{name}={row[0] if row else '?'}")
    return "PostgreSQL " + ", ".join(shown)


def header(args: argparse.Namespace, values: list[dict[str, Any]], loads: str,
           seconds: float) -> str:
    import json

    size = statistics.fmean(len(json.dumps(value)) for value in values)
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    lines = [
        f"ctxdb and its peers, same run: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%MZ}"
        f", {args.runs} interleaved runs ({seconds:.0f} s), medians of the runs",
        f"N = {args.items:,} items of {size:.0f} bytes of JSON on average; "
        f"{args.writers} writer processes × {args.writes_per_writer:,} writes; "
        f"{args.reads:,} point reads and {args.loads} loads of all items per run",
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs, load average before / after: {loads}",
        "; ".join(versions),
    ]
    if any(CONTENDERS[kind].backend == "sqlite" for kind in args.kinds):
        lines.append("SQLite's own default synchronous for a WAL connection on this build: "
                     f"{sqlite_default_synchronous()}")
    if any(CONTENDERS[kind].backend == "postgres" for kind in args.kinds):
        lines.append(_postgres_settings(args.pg_url))
    return "\n".join(lines) + "\n"


def report(args: argparse.Namespace, figures: dict[str, Figures]) -> str:
    kinds: list[str] = args.kinds
    writes, writers, reads, durability = [], [], [], []
    for kind in kinds:
        mine, raw = figures[kind], _raw(figures, kind)
        backend = CONTENDERS[kind].backend
        rate = _median(mine.write_rates)
        raw_rate = _median(raw.write_rates) if raw else None
        writes.append((_label(kind), backend, _number(rate), _ratio(rate, raw_rate),
                       _ms(_quantile(mine.write_latencies, 0.5)),
                       _ms(_quantile(mine.write_latencies, 0.99)),
                       _counts(mine.single_acknowledged, mine.single_found)))
        rate = _median(mine.writer_rates)
        raw_rate = _median(raw.writer_rates) if raw else None
        writers.append((_label(kind), backend, _number(rate), _ratio(rate, raw_rate),
                        " / ".join(_number(worst * 1e3) for worst in mine.writer_worst),
                        _counts(mine.writer_acknowledged, mine.writer_found)))
        read_rate = _median(mine.read_rates)
        load = _median(mine.load_seconds)
        raw_load = _median(raw.load_seconds) if raw else None
        reads.append((_label(kind), backend, _number(read_rate),
                      _ratio(read_rate, _median(raw.read_rates) if raw else None),
                      _number(load * 1e3 if load else None, 1),
                      _ratio(1 / load if load else None, 1 / raw_load if raw_load else None)))
        durability.append((CONTENDERS[kind].name, backend, CONTENDERS[kind].durability))
    sections = [
        "vs raw: the contender's speed over the raw driver's on the same backend, same run "
        "(higher is better)",
        f"\n### Single durable write ({args.items:,} writes per run, each committed and "
        "acknowledged)\n",
        _table(("contender", "backend", "writes/s", "vs raw", "p50 ms", "p99 ms",
                "acknowledged / found"), writes),
        f"\n### {args.writers} writer processes × {args.writes_per_writer:,} writes\n",
        _table(("contender", "backend", "writes/s", "vs raw", "slowest write, ms (each run)",
                "acknowledged / found"), writers),
        f"\n### Point read by key ({args.reads:,} per run) and load all "
        f"{args.items + WARMUP_WRITES:,} items of the project\n",
        _table(("contender", "backend", "reads/s", "vs raw", "load all, ms", "vs raw"),
               reads),
        "\n### Durability\n",
        _table(("contender", "backend", "how it was set"), durability),
    ]
    met = goals(args, figures)
    if met:
        sections += ["\n### ctxdb against the goals of issue 14 (ratios of the medians above)\n",
                     *met]
    problems = [f"- {CONTENDERS[kind].name}: {len(figures[kind].errors):,} writes refused, "
                f"first: {figures[kind].errors[0]}" for kind in kinds if figures[kind].errors]
    problems += [f"- {CONTENDERS[kind].name}: {mismatch}" for kind in kinds
                 for mismatch in figures[kind].mismatches]
    if problems:
        sections += ["\n### Problems\n", *problems]
    return "\n".join(sections)


def goals(args: argparse.Namespace, figures: dict[str, Figures]) -> list[str]:
    """One line per goal whose contenders were measured: the ratio and whether it is met."""
    lines: list[str] = []

    def median(kind: str, name: str) -> float | None:
        return _median(getattr(figures[kind], name)) if kind in figures else None

    def ratio(what: str, name: str, ours: str, theirs: str, bound: float) -> None:
        value, other = median(ours, name), median(theirs, name)
        if value and other:
            verdict = "met" if value / other >= bound else "NOT met"
            lines.append(f"- {what}, ctxdb / {CONTENDERS[theirs].name}: {value / other:.2f}× "
                         f"(goal ≥ {bound:.2f}×): {verdict}")

    single, writers = "single durable write", f"{args.writers} writer processes"
    ratio(f"SQLite {single}", "write_rates", "ctxdb-sqlite", "raw-sqlite", 0.85)
    for peer in ("agents-sqlite", "langgraph-sqlite"):
        ratio(f"SQLite {single}", "write_rates", "ctxdb-sqlite", peer, 1.0)
    ratio(f"PostgreSQL {single}", "write_rates", "ctxdb-postgres", "langgraph-postgres", 1.0)
    ratio(f"PostgreSQL {single}", "write_rates", "ctxdb-postgres", "raw-postgres", 0.85)
    ratio(f"SQLite {writers}", "writer_rates", "ctxdb-sqlite", "raw-sqlite", 0.8)
    ratio(f"PostgreSQL {writers}", "writer_rates", "ctxdb-postgres", "raw-postgres", 0.8)
    if "ctxdb-sqlite" in figures and figures["ctxdb-sqlite"].writer_worst:
        worst = max(figures["ctxdb-sqlite"].writer_worst) * 1e3
        lines.append(f"- SQLite {writers}, ctxdb's slowest acknowledged write: {worst:,.0f} ms "
                     f"(goal ≤ 250 ms): {'met' if worst <= 250 else 'NOT met'}")
    return lines
