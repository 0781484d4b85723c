"""Prompt-time recall: what to search for in a prompt, which hits are relevant, and the block.

On UserPromptSubmit the hook searches the project for the prompt (``service.usecases.recall``)
and injects the few best records not yet injected in the session's generation. This module
is the pure part (docs/hooks.md, "Recall on every prompt"):

- :func:`recall_terms`: the words of a prompt worth searching for. A slash command, or a
  prompt with fewer than ``MIN_TERMS`` such words ("yes", "go on", "continue") is a reply,
  not a topic: nothing is searched. Common English words and the verbs every coding request
  holds are left out, so are words shorter than ``MIN_WORD_LENGTH`` and longer than
  ``MAX_WORD_LENGTH`` (hashes, base64); at most ``MAX_TERMS`` are kept, the longest (the
  most specific) first. Only letters and digits reach the search, so no prompt can be a
  syntax error;
- :func:`required_terms`: the relevance floor. A hit must hold at least that many of the
  terms (two, or about a third of them for a long prompt), so a prompt about something the
  project never recorded injects nothing, whatever the engine's scores (which differ
  between SQLite and PostgreSQL);
- :func:`render_recall`: one line per hit (kind, id, the start of its text) under a heading,
  within a character budget; :func:`recalled_keys` reads back which records an earlier
  block named, so that none is injected twice in a generation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from ctxdb.domain.render import clip

# The kinds of records a prompt recalls, best first when scores tie: what the project keeps,
# and what earlier sessions did (observations of other sessions: a session's own are in its
# conversation already).
RECALL_KINDS: tuple[str, ...] = ("context", "memory", "observation")
MIN_TERMS = 2
MAX_TERMS = 12
MIN_WORD_LENGTH, MAX_WORD_LENGTH = 3, 40
MAX_PROMPT_CHARS = 20_000  # a pasted log: its start is read, not all of it
MAX_HITS = 5
MAX_LINE_CHARS = 300
MIN_LINE_CHARS = 60  # a line cut shorter than this says nothing: it is left out
SHARE_REQUIRED = 1 / 3
# A line of a block: "- <label> <id> (…": the label names the kind (``_LABELS``).
_LINE = re.compile(r"^- (\w+) (\S+) \(", re.MULTILINE)
_WORD = re.compile(r"[^\W_]+")  # letters and digits, as the search reads words
_LABELS = {"context": "item"}
_KINDS_OF_LABELS = {label: kind for kind, label in _LABELS.items()}

# Words that say nothing of a topic: common English, and the verbs of every request.
_STOP_WORDS_TEXT = """
a about above after again all also am an and any are aren as at be because been before being
below between both but by can cannot could couldn did didn do does doesn doing don done down
during each either else etc ever every few for from further get gets getting go goes going
gone got had hadn has hasn have haven having he her here hers herself him himself his how
however i if in into is isn it its itself just let lets like ll me might mine more most much
must mustn my myself need needs no nor not now of off ok okay on once one only or other our
ours ourselves out over own please re really same shall shan she should shouldn so some
still such sure than thank thanks that the their theirs them themselves then there these
they thing things this those though through thus to too under until up upon us use used
using ve very via want wants was wasn way we well were weren what when where whether which
while who whom whose why will with within without won would wouldn yes yet you your yours
yourself yourselves add added change changes check continue could create do fix go help
implement look make proceed run see show start stop tell try update work write next again
right good great
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


class RenderedRecall(NamedTuple):
    text: str
    keys: list[tuple[str, str]]  # (kind, id) of each line
    item_ids: list[int]  # the context items among them


def recall_terms(prompt: str) -> list[str]:
    """The words of ``prompt`` to search for, in the order they appear (empty: search
    nothing). Case is kept: the search splits ``parseConfig`` as the index does."""
    text = prompt[:MAX_PROMPT_CHARS].strip()
    if text.startswith("/"):
        return []
    seen: dict[str, str] = {}
    for word in _WORD.findall(text):
        lower = word.lower()
        if MIN_WORD_LENGTH <= len(word) <= MAX_WORD_LENGTH and lower not in STOP_WORDS:
            seen.setdefault(lower, word)
    if len(seen) < MIN_TERMS:
        return []
    words = list(seen.values())
    longest = sorted(range(len(words)), key=lambda n: -len(words[n]))[:MAX_TERMS]
    return [words[n] for n in sorted(longest)]


def recall_query(terms: Sequence[str]) -> str:
    """The search's free-text query for ``terms``: any of them (``or``), ranked by the
    search (relevance x priority x recency)."""
    return " or ".join(terms)


def required_terms(count: int) -> int:
    """How many of ``count`` terms a hit must hold to be relevant."""
    return min(count, max(MIN_TERMS, math.ceil(count * SHARE_REQUIRED)))


def hit_key(hit: Mapping[str, Any]) -> tuple[str, str]:
    return str(hit["kind"]), str(hit["id"])


def recalled_keys(texts: Iterable[str]) -> set[tuple[str, str]]:
    """The (kind, id) of each record named by the recall blocks ``texts``."""
    keys = set()
    for text in texts:
        for label, ident in _LINE.findall(text):
            keys.add((_KINDS_OF_LABELS.get(label, label), ident.removeprefix("#")))
    return keys


def _line(hit: Mapping[str, Any]) -> str:
    kind = str(hit["kind"])
    ident = f"#{hit['id']}" if kind == "context" else str(hit["id"])
    details = ", ".join(str(part) for part in (
        hit.get("priority"), hit.get("type"),
        f"{hit['namespace']} {hit['key']}" if hit.get("key") is not None else None)
        if part)
    # The start of the record's text (only what a line can show is read), on one line
    # whatever the record holds (a memory's key may hold a line break).
    title = str(hit.get("body") or "")[:MAX_LINE_CHARS * 2]
    return " ".join(f"- {_LABELS.get(kind, kind)} {ident} ({details}): {title}".split())


def render_recall(hits: Sequence[Mapping[str, Any]], *, title: str,
                  max_chars: int) -> RenderedRecall:
    """A heading and one line per hit, best first, the whole within ``max_chars``: each line
    at most ``MAX_LINE_CHARS``, at most ``MAX_HITS`` lines; a hit whose line no longer fits
    (even cut to ``MIN_LINE_CHARS``) ends the block. No line: no text."""
    header = f"# {title}"
    lines: list[str] = []
    keys: list[tuple[str, str]] = []
    room = max_chars - len(header)
    for hit in hits[:MAX_HITS]:
        line = _line(hit)
        width = min(MAX_LINE_CHARS, room - 1)  # the newline before it
        if width < MIN_LINE_CHARS and len(line) > width:
            break
        line = clip(line, width)
        lines.append(line)
        keys.append(hit_key(hit))
        room -= len(line) + 1
    if not lines:
        return RenderedRecall("", [], [])
    item_ids = [int(ident) for kind, ident in keys if kind == "context"]
    return RenderedRecall("\n".join([header, *lines]), keys, item_ids)


def recall_title(project_id: str) -> str:
    return (f"ctxdb recall for this prompt: project {project_id} "
            "(`ctxdb context get ID` shows an item)")
