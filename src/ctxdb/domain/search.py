"""Full-text search queries: what a user types, made safe for each engine; snippets of hits.

Users type free text, so a query is never handed to an engine's own syntax as it is. It is
read in a small syntax of its own (that of web search boxes) into a :class:`SearchQuery`, which
the backend's engine writes out again with every word quoted (``storage/search_engine.py``:
SQLite FTS5 or PostgreSQL ``to_tsquery``), so that no input can be a syntax error or reach an
operator the user did not write:

- words are runs of letters and digits; everything else separates them, as both indexes
  split text (``stripe_id`` is the phrase ``stripe id``);
- all words must occur (AND), in any order; ``"two words"`` must occur together, in order;
- ``-word`` or ``-"a phrase"`` must not occur;
- ``or`` between words or phrases: either side (``stripe or paypal -refund``);
- ``word*`` matches words starting with ``word``.

Case does not matter. How words are matched (their stems, the parts of identifiers) is the
index's business: the engine writes each word the way the index holds words
(``storage/search_text.py``), so this syntax knows nothing of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from ctxdb.domain.validation import MAX_NUMBER_DIGITS
from ctxdb.errors import InvalidSearchQueryError, ValidationError

MAX_QUERY_TERMS = 32
# One token of the syntax: an optional '-', then a quoted phrase (its closing quote optional)
# or a run of anything but blanks and quotes.
_TOKEN = re.compile(r'(-?)(?:"([^"]*)"?|([^\s"]+))')
_WORD = re.compile(r"[^\W_]+")  # letters and digits: what both indexes keep as words


class Term(NamedTuple):
    """A word or a phrase (words that must follow each other), possibly excluded."""

    words: tuple[str, ...]
    excluded: bool = False
    prefix: bool = False


class SearchQuery(NamedTuple):
    """Alternatives (OR) of groups of terms that must all hold (AND)."""

    groups: tuple[tuple[Term, ...], ...]

    @property
    def words(self) -> list[str]:
        """The words to find (not those excluded), for highlighting."""
        return [word for group in self.groups for term in group if not term.excluded
                for word in term.words]

    def wanted(self) -> SearchQuery:
        """The query without its exclusions: what relevance is measured on (PostgreSQL's
        ts_rank gives 0 to a document for a query that excludes words)."""
        return SearchQuery(tuple(tuple(t for t in group if not t.excluded)
                                 for group in self.groups))

    def relaxed(self) -> SearchQuery | None:
        """The records with some of the wanted terms rather than all (each group's
        exclusions still hold), or ``None`` where that is the query itself: what a search
        adds below the records that match the whole query (a question typed as a sentence
        holds words the answer does not)."""
        groups: list[tuple[Term, ...]] = []
        for group in self.groups:
            excluded = tuple(t for t in group if t.excluded)
            groups += [(t, *excluded) for t in group if not t.excluded]
        relaxed = tuple(dict.fromkeys(groups))
        return None if set(relaxed) == set(self.groups) else SearchQuery(relaxed)

    @property
    def prefixes(self) -> list[str]:
        return [term.words[-1] for group in self.groups for term in group
                if term.prefix and not term.excluded]


def parse_query(text: str) -> SearchQuery:
    """Read free text in the syntax above; refuse text that holds nothing to search for."""
    groups: list[tuple[Term, ...]] = []
    current: list[Term] = []
    count = 0
    for match in _TOKEN.finditer(text):
        excluded, phrase, bare = bool(match[1]), match[2], match[3]
        if bare is not None and bare.lower() == "or" and not excluded:
            groups.append(tuple(current))
            current = []
            continue
        term = _term(phrase if phrase is not None else bare, excluded, bare is not None)
        if term is not None:
            current.append(term)
            count += 1
    groups.append(tuple(current))
    kept = tuple(group for group in groups if group)
    if not kept:
        raise InvalidSearchQueryError(
            f"the search query {text!r} has no words to search for (words are letters and "
            "digits)", query=text)
    if count > MAX_QUERY_TERMS:
        raise InvalidSearchQueryError(
            f"the search query has {count} terms; at most {MAX_QUERY_TERMS} are allowed",
            query=text)
    for group in kept:
        if all(term.excluded for term in group):
            raise InvalidSearchQueryError(
                f"the search query {text!r} only excludes words: say what to find besides "
                "what to leave out ('-word' excludes a word)", query=text)
    return SearchQuery(kept)


def _term(text: str, excluded: bool, bare: bool) -> Term | None:
    words = tuple(_WORD.findall(text))
    if not words:
        return None
    # A trailing '*' on a bare word asks for a prefix; within a phrase it is punctuation.
    prefix = bare and text.endswith("*") and _WORD.fullmatch(text[:-1]) is not None
    return Term(words, excluded, prefix)


def raw_words(text: str) -> list[str]:
    """The words of a query in an engine's own syntax, for highlighting (operators left out)."""
    operators = {"and", "or", "not", "near"}
    return [word for word in _WORD.findall(text) if word.lower() not in operators]


# --- time bounds -----------------------------------------------------------------------------

_AGO = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_instant(value: object, what: str, now: datetime | None = None) -> str:
    """A point in time as stored timestamps are written (``YYYY-MM-DDTHH:MM:SS.mmmZ``, UTC).

    Accepts a ``datetime`` (naive means UTC), ISO-8601 text (a date, or a date and time with
    or without an offset) or an age such as ``90s``, ``30m``, ``12h``, ``7d`` or ``2w``
    (before now, by this machine's clock).
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        age = _AGO.fullmatch(text)
        if age is not None:
            if len(age[1]) > MAX_NUMBER_DIGITS:
                raise ValidationError(f"{what} is an age of {len(age[1])} digits, over the "
                                      f"limit of {MAX_NUMBER_DIGITS} digits", value=text[:40])
            seconds = int(age[1]) * _UNIT_SECONDS[age[2]]
            try:
                moment = (now or datetime.now(UTC)) - timedelta(seconds=seconds)
            except OverflowError:
                moment = datetime.min.replace(tzinfo=UTC)
        else:
            try:
                moment = datetime.fromisoformat(text.replace("z", "Z"))
            except ValueError:
                raise ValidationError(
                    f"{what} must be an ISO-8601 date or time (2025-01-31, "
                    f"2025-01-31T12:00:00Z) or an age (30m, 12h, 7d), got {value!r}",
                    value=value) from None
    else:
        raise ValidationError(f"{what} must be a date, a time or an age, got "
                              f"{type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ValidationError(f"{what} is out of range: {value!r}", value=str(value)) from None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- snippets --------------------------------------------------------------------------------

SNIPPET_WORDS = 24
MARK = "**"
_WINDOW_BEFORE, _WINDOW_AFTER = 400, 1_600  # characters read around the first match


def snippet(body: str, words: Sequence[str], prefixes: Sequence[str] = (),
            width: int = SNIPPET_WORDS, matches: Callable[[str], bool] | None = None) -> str:
    """About ``width`` words of ``body`` around its first match, matches between ``**``.

    A word matches if ``matches`` says so (how the index matches words: their stems), else
    if it is one of ``words`` or starts with one of ``prefixes``, ignoring case.

    Computed here rather than by the engines (FTS5's snippet, PostgreSQL's ts_headline) so
    that both backends show the same text for the same hit. The words before the first
    match are only tested (a cached stem each), and only a window around it is cut and
    marked, so a long record costs little more than a short one.
    """
    if matches is None:
        pattern = _highlighter(words, prefixes)
        if pattern is not None:
            matches = lambda word: pattern.fullmatch(word) is not None  # noqa: E731
    found = None
    if matches is not None:
        found = next((token for token in _WORD.finditer(body) if matches(token[0])), None)
    center = found.start() if found is not None else 0
    offset = max(0, center - _WINDOW_BEFORE)
    window = body[offset:center + _WINDOW_AFTER]
    tokens = list(_WORD.finditer(window))
    if offset > 0 and tokens and tokens[0].start() == 0:
        tokens.pop(0)  # the window may have cut this word in two
    if not tokens:
        return ""
    first = next((i for i, token in enumerate(tokens) if token.start() >= center - offset), 0)
    begin = max(0, min(first - width // 3, len(tokens) - width))
    end = min(len(tokens), begin + width)
    parts: list[str] = []
    cursor = 0 if begin == 0 and offset == 0 else tokens[begin].start()
    for token in tokens[begin:end]:
        marked = matches is not None and matches(token[0])
        parts += [window[cursor:token.start()], f"{MARK}{token[0]}{MARK}" if marked else token[0]]
        cursor = token.end()
    parts.append(window[cursor:tokens[end].start()] if end < len(tokens) else window[cursor:])
    text = " ".join("".join(parts).split())  # one line, whatever the record's layout
    more_before = begin > 0 or offset > 0
    more_after = end < len(tokens) or offset + len(window) < len(body)
    return ("… " if more_before else "") + text + (" …" if more_after else "")


def _highlighter(words: Sequence[str], prefixes: Sequence[str]) -> re.Pattern[str] | None:
    """A pattern matching the wanted words and prefixes as whole words, ignoring case."""
    choices = [re.escape(word) for word in sorted(set(words), key=len, reverse=True)]
    choices += [re.escape(prefix) + r"[^\W_]*" for prefix in prefixes]
    if not choices:
        return None
    return re.compile(r"(?<![^\W_])(?:" + "|".join(choices) + r")(?![^\W_])", re.IGNORECASE)
