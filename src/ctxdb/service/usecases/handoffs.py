"""Handoffs built from a transcript: what a session was doing, saved before its context goes.

The transcript is parsed (``ctxdb.transcripts``) before any transaction starts; the draft is
then stored inside the caller's transaction. The stored ``summary`` is the rendered Markdown
an agent is given back, bounded so that it fits a hook's injection with room for the pack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ctxdb.domain.validation import encode_json
from ctxdb.errors import CtxdbError
from ctxdb.service.common import decode
from ctxdb.storage import Tx
from ctxdb.transcripts import handoff_since_last_compaction, render_handoff_text
from ctxdb.transcripts.reader import Source
from ctxdb.transcripts.text import clip

HANDOFF_TEXT_CHARS = 4_000


@dataclass(frozen=True)
class HandoffDraft:
    kind: str
    summary: str
    next_steps: list[str] = field(default_factory=list)
    working_set: dict[str, Any] = field(default_factory=dict)
    context_tokens: int | None = None

    def insert(self, tx: Tx, instance: dict[str, Any], key: str) -> dict[str, Any]:
        """Store the draft as a handoff of ``instance`` in its current generation."""
        tokens = self.context_tokens
        if tokens is None:
            tokens = instance["current_token_usage"]
        handoff_id = tx.value(
            "insert_handoff", project_id=instance["project_id"],
            instance_id=instance["instance_id"], generation=instance["generation"],
            kind=self.kind, summary=self.summary,
            next_steps=encode_json(self.next_steps, "next_steps"),
            working_set=encode_json(self.working_set, "working_set"),
            tokens_before=min(int(tokens), int(instance["context_window"])),
            idempotency_key=key)
        if handoff_id is None:  # the key was taken: this unit's first attempt committed
            handoff_id = tx.value("handoff_by_key", idempotency_key=key)
        else:  # on its session's timeline (docs/timeline.md)
            tx.execute("observe_handoff", handoff_id=handoff_id)
        return decode(tx.one("get_handoff", handoff_id=handoff_id) or {})


def draft_from_transcript(
    path: Source | None, kind: str, *, trigger: str | None = None,
    instructions: str | None = None, client: str | None = None,
    before_latest_compaction: bool = False,
) -> HandoffDraft:
    """The handoff of ``path`` (a transcript of ``client``) since its last compaction (the one
    before it, with ``before_latest_compaction``); a bare one if it cannot be read."""
    notes = []
    if instructions:
        notes.append("## Compaction instructions\n" + clip(instructions.strip(), 1_000))
    if not path:
        return HandoffDraft(kind, _bare(kind, "no transcript was given", notes),
                            working_set={"trigger": trigger})
    try:
        handoff = handoff_since_last_compaction(
            path, client=client, before_latest_compaction=before_latest_compaction)
    except CtxdbError as exc:  # missing or unreadable transcript: save what is known
        return HandoffDraft(kind, _bare(kind, exc.message, notes),
                            working_set={"trigger": trigger, "transcript_path": str(path)})
    budget = HANDOFF_TEXT_CHARS - sum(len(note) + 2 for note in notes)
    text = "\n\n".join([render_handoff_text(handoff, budget), *notes])
    return HandoffDraft(
        kind=kind,
        summary=text,
        next_steps=[todo.content for todo in handoff.open_todos],
        working_set={
            "latest_request": handoff.latest_request,
            "files_edited": handoff.files_edited,
            "decisions": handoff.decisions,
            "trigger": trigger,
            "custom_instructions": instructions,
            "transcript_path": str(path),
        },
        context_tokens=handoff.context_tokens,
    )


def _bare(kind: str, why: str, notes: list[str]) -> str:
    return "\n\n".join([f"# Handoff\n({kind}: the transcript could not be read: {why})",
                        *notes])
