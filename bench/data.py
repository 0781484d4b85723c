"""The benchmark's data: settings, generated context items, fast seeding of large projects.

Large read fixtures (5,000 and 100,000 items) are written with one bulk statement per
database rather than one ctxdb transaction per item, which would take minutes of fsyncs. The
rows are exactly what ``ctxdb.context.store`` writes (same columns, token counts from ctxdb's
own estimator, a per-project sequence and an idempotency key per item), so both sides of
every read measurement then read the same table in the same state.
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctxdb.domain.tokens import estimate_tokens
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings

WORDS = ("cache", "schema", "retry", "token", "budget", "phase", "handoff", "index", "commit",
         "writer", "reader", "audit", "priority", "sequence", "pack", "agent", "context")
ITEM_COLUMNS = ("project_id", "phase_id", "sequence_number", "content_type", "priority",
                "token_count", "content", "metadata", "created_by", "idempotency_key",
                "created_at")
CREATED_AT = "2025-01-01T00:00:00.000Z"


def bench_settings(url: str, config_dir: Path) -> Settings:
    """ctxdb's defaults (WAL, synchronous=FULL, 30 s busy timeout), no user config file."""
    env = {"XDG_CONFIG_HOME": str(config_dir), "HOME": str(config_dir)}
    return load_settings(env=env, url=url, actor="user:bench", max_projects=10_000,
                         auto_migrate=True)


def vocabulary(size: int, seed: int = 5) -> list[str]:
    """``size`` distinct made-up words of two to four syllables, in a fixed order (rank)."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))] = None
    return list(words)


class Prose:
    """Notes in a made-up language whose word frequencies follow Zipf's law (the word of
    rank r is used in proportion to 1/r), as words in real text do: a few are in most
    items, most are in few. Searching for a word of a chosen rank therefore has a
    predictable number of matches (``document_share``)."""

    def __init__(self, size: int = 30_000, seed: int = 5) -> None:
        self.words = vocabulary(size, seed)
        self.harmonic = sum(1 / rank for rank in range(1, size + 1))
        self._cumulative = list(itertools.accumulate(1 / rank for rank in range(1, size + 1)))

    def note(self, rng: random.Random, length: int) -> str:
        return " ".join(rng.choices(self.words, cum_weights=self._cumulative, k=length))

    def word(self, rank: int) -> str:
        return self.words[rank - 1]

    def document_share(self, rank: int, words_per_item: int) -> float:
        """About which share of the items holds the word of this rank."""
        per_word = 1 / (rank * self.harmonic)
        return float(1 - (1 - per_word) ** words_per_item)


def search_content(prose: Prose, rng: random.Random, number: int) -> dict[str, Any]:
    """A context item of about 60 tokens: a file name and a note of 30 to 50 words."""
    return {"file": f"src/module_{number % 97}.py", "note": prose.note(rng, rng.randint(30, 50))}


def content(rng: random.Random, number: int) -> dict[str, Any]:
    """A context item of about 50 tokens (40 to 60 by ctxdb's estimate)."""
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(19, 33)))
    return {"file": f"src/module_{number % 97}.py", "note": words}


@dataclass(frozen=True)
class Mix:
    """How many items of each priority a generated project holds."""

    critical: int
    high: int
    medium: int
    low: int

    @property
    def total(self) -> int:
        return self.critical + self.high + self.medium + self.low

    def priorities(self, rng: random.Random) -> list[str]:
        labels = (["CRITICAL"] * self.critical + ["HIGH"] * self.high
                  + ["MEDIUM"] * self.medium + ["LOW"] * self.low)
        rng.shuffle(labels)  # priorities interleave in sequence order, as in real use
        return labels


def generated_rows(project_id: str, mix: Mix, seed: int) -> Iterator[tuple[Any, ...]]:
    """Rows in ``ITEM_COLUMNS`` order, as ``ctxdb.context.store`` would have written them."""
    rng = random.Random(seed)
    for number, priority in enumerate(mix.priorities(rng), start=1):
        text = json.dumps(content(rng, number), ensure_ascii=False, separators=(",", ":"))
        yield (project_id, None, number, "code", priority, estimate_tokens(text), text, "{}",
               None, secrets.token_hex(16), CREATED_AT)


def search_rows(project_id: str, prose: Prose, count: int,
                seed: int) -> Iterator[tuple[Any, ...]]:
    """``count`` items of made-up prose (all HIGH), as ``ctxdb.context.store`` writes them."""
    rng = random.Random(seed)
    for number in range(1, count + 1):
        text = json.dumps(search_content(prose, rng, number), ensure_ascii=False,
                          separators=(",", ":"))
        yield (project_id, None, number, "note", "HIGH", estimate_tokens(text), text, "{}",
               None, secrets.token_hex(16), CREATED_AT)


def seeded_project(
    db: Ctxdb, name: str, mix: Mix, seed: int = 7,
    rows_of: Callable[[str], Iterator[tuple[Any, ...]]] | None = None, count: int = 0,
) -> str:
    """Create a project through ctxdb, then bulk-load its items; returns the project id.

    The items are ``mix`` generated with ``seed``, or the ``count`` rows ``rows_of`` makes
    for the project's id (see :func:`bulk_load_items`).
    """
    project_id: str = db.projects.create(name)["project_id"]
    rows = generated_rows(project_id, mix, seed) if rows_of is None else rows_of(project_id)
    bulk_load_items(db, rows, {project_id: count or mix.total})
    return project_id


def bulk_load_items(db: Ctxdb, rows: Iterable[tuple[Any, ...]],
                    last_sequences: dict[str, int]) -> None:
    """Insert context items (rows in ``ITEM_COLUMNS`` order) in one transaction, as
    ``ctxdb db copy`` fills a database: the search index's triggers switched off, the rows
    inserted with one statement (SQLite ``executemany``, PostgreSQL ``COPY``), then the
    search documents written with one ``INSERT … SELECT`` per kind, given their index terms
    and (SQLite) the FTS5 index rebuilt once, and the triggers switched on again; each
    project's counter set to ``last_sequences[project]`` so that ctxdb's next store numbers
    after the loaded items. The result is what ``ctxdb.context.store`` would have written,
    item by item, without a fsync per item. Then the planner statistics are refreshed as
    ctxdb does after its own bulk loads (PostgreSQL: ``ANALYZE``; SQLite plans without).
    """
    from ctxdb.storage import bulk
    from ctxdb.storage.base import RawTx, Tx, raw
    from ctxdb.storage.bulk import bulk_page_cache, rebuild_derived, suspend_derived_triggers

    dialect = db.storage.dialect
    columns = ", ".join(ITEM_COLUMNS)

    def insert(tx: RawTx) -> None:
        if db.settings.is_postgres:
            tx.copy_raw(f"COPY context_items ({columns}) FROM STDIN", rows)
        else:
            marks = ", ".join("?" for _ in ITEM_COLUMNS)
            tx.execute_many_raw(f"INSERT INTO context_items ({columns}) VALUES ({marks})", rows)

    def unit(tx: Tx) -> None:
        suspended = suspend_derived_triggers(tx, dialect)
        with bulk_page_cache(tx, dialect):
            insert(raw(tx))
            if suspended is not None:
                rebuild_derived(tx, dialect, suspended)
        for project_id, last in last_sequences.items():
            # The project's counter continues after the loaded items, as if ctxdb had
            # written them; literal SQL because there is (rightly) no API to set it.
            raw(tx).execute_raw(_SET_SEQUENCE[db.settings.is_postgres],
                                {"last": last, "project_id": project_id})
        # And where stores draw from a sequence (PostgreSQL from schema 29), the sequence
        # above the loaded numbers; absent from a base that predates it (A/B runs).
        raise_numbers = getattr(bulk, "raise_item_counters", None)
        if raise_numbers is not None:
            raise_numbers(tx, dialect)

    db.storage.write(unit)
    db.storage.health().analyze_after_load()


_SET_SEQUENCE = {
    False: "UPDATE projects SET next_sequence = :last WHERE project_id = :project_id",
    True: "UPDATE projects SET next_sequence = %(last)s WHERE project_id = %(project_id)s",
}
