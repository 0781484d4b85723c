"""The scale benchmark's database: 100 projects, their items as each growth step adds them,
and the search queries (see scale.py)."""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ctxdb.domain.tokens import estimate_tokens
from ctxdb.service import Ctxdb
from data import CREATED_AT, Mix, Prose

PROJECTS = 100
PRIORITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
OTHER_WEIGHTS = (1, 20, 40, 39)  # the other projects' items: percent of each priority


@dataclass
class Layout:
    """The projects and how many items each holds; the measured project is loaded whole at
    the first step, the others grow at every step."""

    measured_id: str
    others: list[str]
    mix: Mix
    sequences: dict[str, int] = field(default_factory=dict)  # last number used, per project
    total: int = 0  # bulk-loaded items
    stored: int = 0  # items stored through ctxdb while measuring (all in store_target_id)
    last_notes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, db: Ctxdb, project_items: int) -> Layout:
        critical, high = project_items // 100, project_items // 5
        medium = project_items * 2 // 5
        mix = Mix(critical, high, medium, project_items - critical - high - medium)
        measured = db.projects.create("measured project")["project_id"]
        others = [db.projects.create(f"project {n}")["project_id"] for n in range(1, PROJECTS)]
        layout = cls(measured, others, mix)
        layout.sequences = {pid: 0 for pid in [measured, *others]}
        return layout

    @property
    def project_items(self) -> int:
        return self.mix.total

    @property
    def store_target_id(self) -> str:
        return self.others[0]

    @property
    def loaded(self) -> dict[str, int]:
        return self.sequences

    def count_store(self) -> int:
        """Count an item stored through ctxdb (into ``store_target_id``); returns the
        sequence number it must have got."""
        self.stored += 1
        self.sequences[self.store_target_id] += 1
        return self.sequences[self.store_target_id]

    def newest_note(self, project_id: str, prose: Prose) -> str:
        """The first words of the last bulk-loaded item of a project (a phrase to find it)."""
        return " ".join(self.last_notes[project_id].split()[:6])


def _row(project_id: str, number: int, priority: str, note: str) -> tuple[Any, ...]:
    text = json.dumps({"file": f"src/module_{number % 97}.py", "note": note},
                      ensure_ascii=False, separators=(",", ":"))
    return (project_id, None, number, "note", priority, estimate_tokens(text), text, "{}",
            None, secrets.token_hex(16), CREATED_AT)


def growth_rows(layout: Layout, size: int,
                prose: Prose) -> tuple[Iterator[tuple[Any, ...]], dict[str, int]]:
    """The rows that make the database ``size`` bulk-loaded items, round-robin over the
    projects (as items of many projects interleave in a real database), and each project's
    last sequence number after them."""
    first = layout.total == 0
    for_others = size - layout.total - (layout.project_items if first else 0)
    counts = {pid: for_others // len(layout.others) for pid in layout.others}
    for pid in layout.others[:for_others % len(layout.others)]:
        counts[pid] += 1
    if first:
        counts[layout.measured_id] = layout.project_items
    starts = {pid: layout.sequences[pid] for pid in counts}
    for pid, count in counts.items():
        layout.sequences[pid] += count
    layout.total = size
    rng = random.Random(size)
    measured_priorities = iter(layout.mix.priorities(rng)) if first else iter(())

    def rows() -> Iterator[tuple[Any, ...]]:
        for offset in range(max(counts.values())):
            for pid, count in counts.items():
                if offset >= count:
                    continue
                priority = (next(measured_priorities) if pid == layout.measured_id
                            else rng.choices(PRIORITIES, OTHER_WEIGHTS)[0])
                note = prose.note(rng, rng.randint(30, 50))
                layout.last_notes[pid] = note
                yield _row(pid, starts[pid] + offset + 1, priority, note)

    return rows(), {pid: layout.sequences[pid] for pid in counts}


def search_mix(prose: Prose, count: int, seed: int = 29) -> list[tuple[str, str]]:
    """``count`` queries as (class, query): most words people search for are not the most
    common ones, and some are; ranks are drawn log-uniformly within each class's band."""
    rng = random.Random(seed)

    def word(low: int, high: int) -> str:
        return prose.word(round(low * (high / low) ** rng.random()))

    classes = [
        ("rare word", 8, lambda: word(2_000, 20_000)),
        ("uncommon word", 4, lambda: word(100, 2_000)),
        ("common word", 2, lambda: word(1, 100)),
        ("two words", 2, lambda: f"{word(20, 500)} {word(20, 500)}"),
        ("phrase", 2, lambda: f'"{word(1, 30)} {word(1, 30)}"'),
        ("prefix", 1, lambda: word(100, 2_000)[:4] + "*"),
        ("word or word", 1, lambda: f"{word(500, 5_000)} or {word(500, 5_000)}"),
    ]
    weighted = [(name, make) for name, weight, make in classes for _ in range(weight)]
    queries = []
    for number in range(count):
        name, make = weighted[number % len(weighted)]
        queries.append((name, make()))
    return queries
