"""Reading one JSONL record of a transcript: the rules the parser and the tail share.

The parser (``parser.py``) reads every record of a chunk into a ``TranscriptChunk``; the hook
on every prompt only needs the context in use, from the latest API response, and reads it
with :func:`latest_usage` (``tail.py``) without building the chunk or importing its models.
Both read a line with :func:`record_of` and an assistant record's usage with
:func:`usage_key`, so they cannot disagree on which response counts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ctxdb.domain.validation import is_identifier, sanitize_text

# Claude Code writes placeholder assistant messages (errors, "No response requested.") with
# this model and all-zero usage; they are not API responses and would zero the context size.
SYNTHETIC_MODEL = "<synthetic>"
# The only ways a parsed line can hold a NUL or a lone surrogate: the JSON escapes \u0000 and
# \uD800-\uDFFF, or the UTF-8 bytes of a surrogate (json decodes bytes with surrogatepass).
# Valid escaped pairs match too; sanitizing them changes nothing.
_UNSTORABLE_IN_LINE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]")


class MalformedLine(ValueError):
    """A line that is not a JSON object (or is nested too deep to read)."""


def record_of(line: bytes) -> dict[str, Any]:
    """The JSON object on ``line``, its unstorable characters replaced by U+FFFD; a
    :class:`MalformedLine` if it holds none."""
    try:
        record = json.loads(line)
        if _UNSTORABLE_IN_LINE.search(line):
            record = sanitized(record)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
        raise MalformedLine() from None
    if not isinstance(record, dict):
        raise MalformedLine()
    return record


def usage_key(record: dict[str, Any], message: dict[str, Any]) -> str | None:
    """The key under which an assistant record's token usage counts (its message id, else its
    uuid), or None when the record carries no usage of an API response. One API response is
    written as one record per content block, each with the usage known so far: the latest
    record of a key carries the final numbers. The key may be no storable identifier (such a
    record is rejected: check it with ``is_identifier``)."""
    if not isinstance(message.get("usage"), dict) or str_or_none(message.get("model")) \
            == SYNTHETIC_MODEL:
        return None
    return str_or_none(message.get("id")) or str_or_none(record.get("uuid"))


def context_tokens_of(usage: dict[str, Any]) -> int:
    """Tokens the model had in its context window for a response with this usage."""
    return (count(usage.get("input_tokens")) + count(usage.get("cache_creation_input_tokens"))
            + count(usage.get("cache_read_input_tokens")))


def latest_usage(lines: list[bytes]) -> int | None:
    """Context tokens of the latest main-chain API response among Claude Code transcript
    ``lines`` (in file order), or None if none has one: what ``parse_transcript`` gives as
    ``context_tokens`` for the same lines, read from the end and only as far as needed.

    A response's usage is its latest record's; a response whose latest record is a
    subagent's (sidechain) is no main-chain response, even if an earlier record of it was.
    """
    passed: set[str] = set()  # keys whose latest record is a sidechain one
    for line in reversed(lines):
        if not line.strip():
            continue
        try:
            record = record_of(line)
        except MalformedLine:
            continue
        if str_or_none(record.get("type")) != "assistant":
            continue
        message = dict_or_empty(record.get("message"))
        key = usage_key(record, message)
        if key is None or key in passed or not is_identifier(key):
            continue
        if record.get("isSidechain") is not True:
            return context_tokens_of(message["usage"])
        passed.add(key)
    return None


def sanitized(value: Any) -> Any:
    """``value`` (parsed JSON) with :func:`sanitize_text` applied to every string in it."""
    if isinstance(value, str):
        return sanitize_text(value)
    if isinstance(value, list):
        return [sanitized(item) for item in value]
    if isinstance(value, dict):
        return {sanitize_text(key): sanitized(item) for key, item in value.items()}
    return value


def str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def dict_or_empty(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def count(value: object) -> int:
    """A token count from the transcript; anything but a non-negative int counts as 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value
