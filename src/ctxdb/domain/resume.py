"""What a new session is told besides the pack: where the project's work left off, and who
else is working on it now.

Pure: the service reads the rows, this module writes the text. A startup injection is the
pack (``domain.render``), then a "where we left off" block (the latest handoff of another
session), then a block naming the live sibling sessions. The two blocks share at most
``share`` of the client's injection limit and only the room the CRITICAL items leave: they
never shorten or push out a CRITICAL item. HIGH, MEDIUM and LOW items give way to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ctxdb.domain.render import RenderedContext, clip, render_context

RESUME_TITLE = "# Where we left off"
SIBLINGS_TITLE = "# Live sessions of this project"
# Room kept free for the pack's own "… more item(s) not shown" line and the separators.
PACK_RESERVE = 100
MIN_BLOCK_CHARS = 200
SUMMARY_LINE_CHARS = 120
MIN_LINE_CHARS = 40

# How each kind of handoff came to be, for the block's first line.
_ORIGINS = {
    "compact": "saved before a compaction",
    "clear": "saved at a /clear",
    "manual": "recorded by the agent",
    "end": "saved when the session ended",
}
_MADE_AFTER = {
    "end": "made from its transcript after the session ended without one",
    "crash": "made from its transcript after the session crashed",
}
_STATUS = {"completed": "ended", "crashed": "crashed"}


@dataclass(frozen=True)
class StartupContext:
    text: str
    item_ids: list[int] = field(default_factory=list)
    omitted: int = 0
    resume_shown: bool = False
    siblings_shown: int = 0


def moment(value: Any) -> datetime:
    """A stored timestamp (PostgreSQL: a datetime; SQLite: ISO-8601 text) as a datetime."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace(" ", "T", 1))


def age(then: Any, now: Any) -> str:
    """How long ago, coarsely (minutes), so that the text changes seldom."""
    seconds = max(0.0, (moment(now) - moment(then)).total_seconds())
    if seconds < 60:
        return "less than a minute ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def one_line(handoff: Mapping[str, Any], max_chars: int = SUMMARY_LINE_CHARS) -> str:
    """A handoff in one line: its request when it names one, else its first line of text."""
    working = handoff.get("working_set") or {}
    request = working.get("latest_request") if isinstance(working, Mapping) else None
    text = request if isinstance(request, str) and request.strip() else None
    if text is None:
        lines = [line.strip() for line in str(handoff.get("summary") or "").splitlines()]
        text = next((line for line in lines if line and not line.startswith("#")), "")
    return clip(" ".join(text.split()), max_chars)


def has_substance(handoff: Mapping[str, Any]) -> bool:
    """Whether a handoff says anything to resume from. One made from a transcript (its
    working set names the trigger) needs a request, todos, files or decisions: made from an
    unreadable or foreign transcript, it may have none. Any other needs a summary or steps."""
    working = handoff.get("working_set")
    working = working if isinstance(working, Mapping) else {}
    if handoff.get("next_steps"):
        return True
    if "trigger" in working:
        return bool(working.get("latest_request") or working.get("files_edited")
                    or working.get("decisions"))
    return bool(str(handoff.get("summary") or "").strip())


def resume_text(handoff: Mapping[str, Any], max_chars: int) -> str:
    """The "where we left off" block of ``handoff`` (a row of ``resume_candidates``)."""
    working = handoff.get("working_set") or {}
    made_after = working.get("made_after") if isinstance(working, Mapping) else None
    how = _MADE_AFTER.get(str(made_after)) or _ORIGINS.get(str(handoff["kind"]), "saved")
    where = f" on branch {handoff['branch']}" if handoff.get("branch") else ""
    status = str(handoff.get("status"))
    state = "is still live" if status in ("active", "idle") else \
        f"has {_STATUS.get(status, status)}"
    head = (f"The latest handoff of this project: {handoff['client']} session "
            f"{handoff['session_id']}{where}, {how}, {age(handoff['created_at'], handoff['now'])}"
            f" (handoff {handoff['handoff_id']}); that session {state}.")
    body = str(handoff.get("summary") or "").strip().removeprefix("# Handoff").strip()
    parts = [RESUME_TITLE, head]
    if body:
        parts.append(body)
    steps = handoff.get("next_steps") or []
    if steps and "## Open todos" not in body:
        parts.append("## Next steps\n" + "\n".join(f"- {step}" for step in steps))
    return clip("\n\n".join(parts), max_chars)


def sibling_line(sibling: Mapping[str, Any]) -> str:
    where = f" on branch {sibling['branch']}" if sibling.get("branch") else ""
    line = (f"- {sibling['client']} session {sibling['session_id'] or sibling['instance_id']}"
            f"{where}, heard from {age(sibling['last_heartbeat'], sibling['now'])}")
    tasks = sibling.get("tasks") or []
    if tasks:
        held = ", ".join(f"#{task['task_id']} {clip(str(task['title']), 80)!r}"
                         for task in tasks)
        line += f"; holds task {held}"
    else:
        line += "; holds no task"
    if sibling.get("handoff"):
        line += f"; latest handoff: {one_line(sibling['handoff'])}"
    return line


def siblings_text(siblings: Sequence[Mapping[str, Any]], max_chars: int) -> tuple[str, int]:
    """The block naming the live siblings, within ``max_chars``; and how many it names.

    Lines that do not fit are shortened (to no less than ``MIN_LINE_CHARS``); past that, the
    rest are counted in a last line. Empty when not even the heading and one line fit.
    """
    head = [SIBLINGS_TITLE,
            "Other agents are working on this project now; leave their tasks to them."]
    room = max_chars - sum(len(line) + 1 for line in head)
    lines: list[str] = []
    for number, sibling in enumerate(siblings):
        more = _more_line(len(siblings) - number - 1)
        line = sibling_line(sibling)
        fits = room - (len(more) + 1 if more else 0) - 1
        if len(line) > fits:
            line = clip(line, fits)
        if len(line) < MIN_LINE_CHARS:
            rest = _more_line(len(siblings) - number)
            if lines and len(rest) + 1 <= room:
                lines.append(rest)
            break
        lines.append(line)
        room -= len(line) + 1
    named = sum(1 for line in lines if not line.startswith("- … "))
    return ("\n".join(head + lines), named) if named else ("", 0)


def _more_line(count: int) -> str:
    return f"- … {count} more: run `ctxdb instance list --status active`" if count else ""


def render_startup(
    items: Sequence[Mapping[str, Any]], *, title: str, resume: Mapping[str, Any] | None,
    siblings: Sequence[Mapping[str, Any]], max_chars: int, share: float,
    critical_omitted: Sequence[Mapping[str, Any]] = (),
) -> StartupContext:
    """The pack (with the CRITICAL items it left out named), then the resume and siblings
    blocks, within ``max_chars`` in all."""
    critical = [item for item in items if item["priority"] == "CRITICAL"]
    alone = render_context(critical, title=title, max_chars=max_chars,
                           critical_omitted=critical_omitted) \
        if critical or critical_omitted else RenderedContext("", [])
    budget = min(int(max_chars * share), max_chars - len(alone.text) - PACK_RESERVE)
    blocks, named = _blocks(resume, siblings, budget)
    if blocks:
        pack = render_context(items, title=title, max_chars=max_chars - len(blocks) - 2,
                              critical_omitted=critical_omitted)
        # Checked, not assumed: every CRITICAL line exactly as the pack alone writes it.
        if pack.text.startswith(alone.text):
            text = f"{pack.text}\n\n{blocks}" if pack.text else blocks
            return StartupContext(text, pack.item_ids, pack.omitted,
                                  resume_shown=RESUME_TITLE in blocks, siblings_shown=named)
    pack = render_context(items, title=title, max_chars=max_chars,
                          critical_omitted=critical_omitted)
    return StartupContext(pack.text, pack.item_ids, pack.omitted)


def _blocks(resume: Mapping[str, Any] | None, siblings: Sequence[Mapping[str, Any]],
            budget: int) -> tuple[str, int]:
    if budget < MIN_BLOCK_CHARS:
        return "", 0
    # The siblings are short lines: they may take a third of the room when a handoff needs
    # the rest, all of it otherwise.
    sibling_room = budget // 3 if resume is not None else budget
    listed, named = siblings_text(siblings, sibling_room)
    parts = []
    room = budget - (len(listed) + 2 if listed else 0)
    if resume is not None and room >= MIN_BLOCK_CHARS:
        parts.append(resume_text(resume, room))
    if listed:
        parts.append(listed)
    return "\n\n".join(parts), named
