"""A best-effort, deterministic "decisions" heuristic for handoffs.

Two sources, in transcript order:

1. the user's answers to AskUserQuestion (``toolUseResult.answers``), rendered
   ``User chose: <answer> (asked: <question>)`` — these are real decisions;
2. sentences of main-chain assistant text that contain a decision marker (``DECISION_MARKERS``:
   "decided", "instead of", "rather than", "I'll use", "going with", "no need to", or a
   reason followed by an intention: "since ... I'll ...").
   Text is split into lines, lines into sentences at ``.``/``!``/``?`` followed by a space;
   questions are left out. Markdown bullets and emphasis are stripped.

Each decision is clipped to ``MAX_DECISION_CHARS``, exact duplicates are dropped, and only the
latest ``MAX_DECISIONS`` are kept: the most recent decisions matter most to whoever resumes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ctxdb.transcripts.models import AssistantText, UserAnswer
from ctxdb.transcripts.text import clip, one_line

MAX_DECISIONS = 20
MAX_DECISION_CHARS = 400

DECISION_MARKERS = re.compile(
    r"\b("
    r"decided|decision|decide to|"
    r"instead of|rather than|"
    r"going with|go with|opted|opt for|chose|choosing|"
    r"switch(?:ed|ing)? to|"
    r"(?:I'll|I will|we'll|we will|let's) use|"
    r"the plan is|the approach is|"
    r"no need (?:to|for)|(?:don't|do not|won't) need|"
    # a stated reason followed by what the assistant will do about it
    r"(?:since|because)\b[^.]*\b(?:I'll|I will|we'll|we will)"
    r")\b",
    re.IGNORECASE,
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MARKUP = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+|\*\*|__|`")


def extract_decisions(
    answers: Iterable[UserAnswer], texts: Iterable[AssistantText]
) -> list[str]:
    found = [(answer.offset, _answer_decision(answer)) for answer in answers]
    for text in texts:
        found.extend((text.offset, sentence) for sentence in decision_sentences(text.text))
    found.sort(key=lambda item: item[0])  # stable: sentence order within a text is kept
    unique: dict[str, None] = {}
    for _, decision in found:
        clipped = clip(decision, MAX_DECISION_CHARS)
        unique.pop(clipped, None)  # a repeated decision counts at its latest position
        unique[clipped] = None
    return list(unique)[-MAX_DECISIONS:]


def _answer_decision(answer: UserAnswer) -> str:
    return f"User chose: {one_line(answer.answer)} (asked: {one_line(answer.question)})"


def decision_sentences(text: str) -> list[str]:
    sentences = []
    for line in text.splitlines():
        for sentence in SENTENCE_END.split(MARKUP.sub("", line)):
            cleaned = one_line(sentence)
            if cleaned and not cleaned.endswith("?") and DECISION_MARKERS.search(cleaned):
                sentences.append(cleaned)
    return sentences
