"""What a SessionStart injects for a realistic project, fixed byte for byte.

The project: CRITICAL rules (text and JSON, with runs of whitespace to collapse), a current
phase, 420 items of the other priorities (text and nested JSON, a few over the whole budget,
together well over the 50,000-token reload budget), an ended session with a handoff, live
siblings (one with a handoff, one that holds a task). Each source of SessionStart (startup,
resume after new items, compact, clear) and ``ctxdb context --as-new-session``
(``continuity.new_session``) must inject exactly the text in
``tests/fixtures/startup_injection/`` (the project's id written PROJECT), on both backends:
how the pack and the siblings are read may change for speed, never what the agent is given.
The fixtures were written by the code before the pack stopped reading the content of items
no injection shows.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from ctxdb.domain.hook_events import parse_event
from ctxdb.errors import ConflictError
from ctxdb.repo_identity import repo_identity
from ctxdb.service import Ctxdb
from ctxdb.service.usecases import packs
from ctxdb.storage import Tx
from test_hooks import FIXTURES, shop_repository

EXPECTED = Path(__file__).parent / "fixtures" / "startup_injection"
WORDS = ("cache", "lease", "schema", "token", "renders", "the", "migration", "replica",
         "agent", "budget", "élan", "naïve", "hook", "queue", "index", "pack")


def _note(rng: random.Random, words: int) -> str:
    # Runs of spaces, tabs and newlines: the injection collapses them to one space.
    return "".join(rng.choice(WORDS) + rng.choice((" ", " ", "  ", "\n", "\t"))
                   for _ in range(words))


def _content(rng: random.Random, number: int) -> Any:
    if number % 3 == 0:
        return f"note {number}: {_note(rng, rng.randint(5, 60))}"
    return {"note": _note(rng, rng.randint(5, 40)), "n": number,
            "refs": [rng.randint(1, 999) for _ in range(rng.randint(0, 3))],
            "meta": {"by": rng.choice(WORDS), "ok": number % 2 == 0}}


def _fill(db: Ctxdb, project_id: str, phase_id: int, rng: random.Random, count: int,
          first: int = 0) -> None:
    for number in range(first, first + count):
        priority = ("HIGH", "MEDIUM", "LOW")[number % 3]
        # Mostly 60 to 250 tokens; one in 50 larger than the whole reload budget (skipped).
        tokens = 60_000 if number % 50 == 7 else rng.randint(60, 250)
        db.context.store(project_id, _content(rng, number), priority,
                         rng.choice(("note", "decision", "code")),
                         phase_id if number % 4 == 0 else None, token_count=tokens)


def _event(repo: Path, name: str, session_id: str, transcript: Path | None = None,
           **fields: Any) -> Any:
    return parse_event("claude-code", json.dumps({
        "session_id": session_id, "cwd": str(repo), "hook_event_name": name,
        "transcript_path": str(transcript) if transcript else None, **fields}), 1)


def _injections(db: Ctxdb, tmp_path: Path) -> dict[str, str]:
    repo = shop_repository(tmp_path / "shop")
    identity = repo_identity(str(repo))
    transcript = tmp_path / "session.jsonl"
    shutil.copy(FIXTURES / "spotter" / "tool_heavy.jsonl", transcript)

    def handle(name: str, session_id: str, with_transcript: bool = False,
               **fields: Any) -> str | None:
        return db.hook_events.handle(
            _event(repo, name, session_id, transcript if with_transcript else None, **fields),
            lambda: identity)

    project_id = str(db.sessions.resolve_project(identity)["project_id"])
    rng = random.Random(12)
    for number in range(4):
        db.context.store(project_id, f"Rule {number}:  {_note(rng, 12)}" if number % 2
                         else {"rule": number, "text": _note(rng, 10)}, "CRITICAL", "rule")
    phase = db.phases.create(project_id, 1, "build")
    db.phases.start(phase["phase_id"])
    _fill(db, project_id, phase["phase_id"], rng, 420)
    # A live sibling with a handoff; a later session that saved one and ended; a live
    # sibling holding a task.
    handle("SessionStart", "sibling-with-handoff", True, source="startup")
    handle("PreCompact", "sibling-with-handoff", True, trigger="manual",
           custom_instructions=None)
    handle("SessionStart", "earlier", True, source="startup")
    handle("PreCompact", "earlier", True, trigger="manual", custom_instructions=None)
    handle("SessionEnd", "earlier", reason="other")
    handle("SessionStart", "sibling", source="startup")
    sibling = db.sessions.instance_of(_event(repo, "SessionEnd", "sibling").session)
    db.tasks.create(project_id, "Port the cache to the replica")
    db.tasks.claim(project_id, sibling["instance_id"], 3600)
    texts = {"startup": handle("SessionStart", "main", source="startup")}
    _fill(db, project_id, phase["phase_id"], rng, 5, first=1000)
    texts["resume"] = handle("SessionStart", "main", source="resume")
    texts["compact"] = handle("SessionStart", "main", True, source="compact")
    handle("SessionEnd", "main", reason="clear")
    texts["clear"] = handle("SessionStart", "after-clear", source="clear")
    texts["new_session"] = db.continuity.new_session(project_id, "codex", identity)["text"]
    # The project's id is made of the time it was created: the one part written as a name.
    return {name: str(text).replace(project_id, "PROJECT") for name, text in texts.items()}


def test_each_session_start_injects_exactly_the_fixed_text(db: Ctxdb, tmp_path: Path) -> None:
    texts = _injections(db, tmp_path)
    for name, text in texts.items():
        expected = (EXPECTED / f"{name}.txt").read_text(encoding="utf-8")
        assert text == expected, name
    # What the fixtures show: a cut pack with its count, the resume and sibling blocks.
    assert "more item(s) not shown" in texts["startup"]
    assert "# Where we left off" in texts["startup"]
    assert "holds task #1 'Port the cache to the replica'" in texts["startup"]
    assert "note 1002:" in texts["resume"] and "#413 " not in texts["resume"]  # shown before


def test_the_same_text_when_tiers_are_read_in_many_pages(
    db: Ctxdb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 7 rows: a tier is read in many, each after the last one's sequence number;
    the first 3 rows come with their content, the others read it when shown."""
    monkeypatch.setattr(packs, "SIZES_PAGE", 7)
    monkeypatch.setattr(packs, "CONTENT_WITH_PAGES", 3)
    texts = _injections(db, tmp_path)
    for name, text in texts.items():
        assert text == (EXPECTED / f"{name}.txt").read_text(encoding="utf-8"), name


def _archive(tx: Tx, item_id: int) -> None:
    tx.execute("copy_item_to_archive", item_id=item_id, actor="user:test")
    tx.execute("delete_archived_item", item_id=item_id)


def test_an_item_archived_after_the_pack_read_it_is_shown_as_it_was(
    db: Ctxdb, pid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL each statement sees the latest commits: gc may archive an item between
    the read of the pack and that of the item's content (one the first pages did not bring).
    The content is then the archived one; an item also forgotten in between is a conflict,
    never a wrong text."""
    monkeypatch.setattr(packs, "CONTENT_WITH_PAGES", 0)
    ids = [db.context.store(pid, {"n": n, "text": f"item {n}"}, "HIGH")["item_id"]
           for n in range(3)]

    def unit(tx: Tx) -> list[Any]:
        pack = packs.startup_pack(tx, pid, 10_000, None)
        _archive(tx, ids[2])  # the newest: the first of the pack
        return [item["content"] for item in pack.items]

    assert db.storage.write(unit) == [{"n": n, "text": f"item {n}"} for n in (2, 1, 0)]

    def forgotten(tx: Tx) -> Any:
        pack = packs.startup_pack(tx, pid, 10_000, None)
        _archive(tx, ids[1])
        tx.execute("forget_archived_item", item_id=ids[1])
        return pack.items[0]["content"]

    with pytest.raises(ConflictError, match=f"context item {ids[1]} was removed"):
        db.storage.write(forgotten)


def test_the_first_items_come_with_the_pack_read(db: Ctxdb, pid: str) -> None:
    """The first items of the tiers come with the pages the pack reads (one statement): what
    gc does afterwards does not change what they show, nor makes a conflict of it."""
    ids = [db.context.store(pid, {"n": n}, "HIGH")["item_id"] for n in range(3)]

    def unit(tx: Tx) -> list[Any]:
        pack = packs.startup_pack(tx, pid, 10_000, None)
        for item_id in ids:
            _archive(tx, item_id)
            tx.execute("forget_archived_item", item_id=item_id)
        return [item["content"] for item in pack.items]

    assert db.storage.write(unit) == [{"n": n} for n in (2, 1, 0)]
