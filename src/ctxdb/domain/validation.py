"""Checks on caller input, run before any transaction starts so bad input changes nothing."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any, TypeVar

from ctxdb.domain.json_limits import (
    MAX_JSON_DEPTH as MAX_JSON_DEPTH,
)
from ctxdb.domain.json_limits import (
    MAX_JSON_INTEGER_DIGITS as MAX_JSON_INTEGER_DIGITS,
)
from ctxdb.domain.json_limits import (
    IntegerTooLong,
    bounded_int,
)
from ctxdb.domain.json_limits import json_depth_over as json_depth_over
from ctxdb.errors import (
    ContentTooLargeError,
    InvalidContentError,
    InvalidIdentifierError,
    ValidationError,
)

E = TypeVar("E", bound=StrEnum)

# A NUL character as json.dumps writes it: ``\u0000`` preceded by an even number of
# backslashes. Text that merely contains a backslash followed by "u0000" (source code often
# does) is written as ``\\u0000`` and is fine for both databases.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# The one encoder of encode_json: json.dumps with any argument but the defaults builds a new
# JSONEncoder on every call, which cost a write more than encoding a small value does.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _kept_encoder() -> Callable[[Any], str]:
    """``_ENCODER.encode``, or the C encoder it would make, made once: ``encode`` makes a new
    one per call (about 0.7 µs, half the encoding of a small value). Without the circular
    check's dict, which a kept encoder would share between threads: a value that contains
    itself recurses to Python's limit instead, and is refused as too deep (encode_json)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the pure-Python encoder, one per call as before
        return _ENCODER.encode
    chunks = make(None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",",
                  False, False, False)
    return lambda value: "".join(chunks(value, 0))


_ENCODE = _kept_encoder()

# The largest values the databases store: PostgreSQL's INTEGER and BIGINT (SQLite's INTEGER
# holds 64 bits). Checking here keeps the backends in agreement and the error typed.
MAX_INTEGER = 2**31 - 1
MAX_BIGINT = 2**63 - 1

MAX_IDENTIFIER_LENGTH = 200
MAX_NAME_LENGTH = 500

# PostgreSQL refuses a btree index entry over 2,704 bytes (a third of a page); text that is
# part of an index key (ids, keys, paths) stays below this, leaving room for the other columns.
MAX_INDEXED_BYTES = 2_000

# JSON limits, the same at every entry point (CLI, library, MCP, HTTP, imports, bundles).
# Depth: Python's parser and serializer recurse (about 1,000 levels end in RecursionError)
# and PostgreSQL's jsonb parser is bounded by its stack; 100 levels is far more than any real
# document and leaves room for the envelopes ctxdb wraps around a value.
# (MAX_JSON_DEPTH and MAX_JSON_INTEGER_DIGITS, in domain.json_limits: the remote hook's
# short path reads its event within them without importing this module.)

# A number given as text outside JSON (an age such as 7d): at most this many digits, so that
# it fits a BIGINT and Python's int() never meets its 4,300-digit limit.
MAX_NUMBER_DIGITS = 18

# What neither database can store in text: NUL (PostgreSQL refuses it) and lone surrogates
# (no driver can encode them; a Python string holds a surrogate only when it is lone).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT_CHARACTER = "\ufffd"


def _encodable(text: str) -> bool:
    """False for text with lone surrogates, which neither database driver can send."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def sanitize_text(text: str) -> str:
    """``text`` with every NUL and lone surrogate replaced by U+FFFD.

    For third-party text that is kept rather than refused (transcripts): both backends then
    store the same value, where caller input is refused by the checks below instead.
    """
    return _UNSTORABLE.sub(REPLACEMENT_CHARACTER, text)


def unstorable(value: object) -> str | None:
    """What in ``value`` (text, or a JSON value: its strings and keys) no database can store:
    ``"a NUL character"`` or ``"a lone surrogate character"``; None when there is nothing."""
    if isinstance(value, str):
        found = _UNSTORABLE.search(value)
        if found is None:
            return None
        return "a NUL character" if found.group() == "\x00" else "a lone surrogate character"
    if isinstance(value, list):
        return next((why for item in value if (why := unstorable(item))), None)
    if isinstance(value, dict):
        return next((why for key, item in value.items()
                     if (why := unstorable(key) or unstorable(item))), None)
    return None


def is_identifier(value: object) -> bool:
    """True for a value :func:`check_identifier` accepts."""
    try:
        check_identifier(value, "value")
    except InvalidIdentifierError:
        return False
    return True


def is_real_timestamp(value: str) -> bool:
    """True for an ISO 8601 date and time that exists (not 2025-13-45T99:99:99Z), within the
    years both backends and Python read back (1 to 9999)."""
    from datetime import datetime

    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def check_identifier(value: object, what: str) -> str:
    """An id or short name: a string that is not blank and holds no NUL byte."""
    # Every write checks several: the common case in three C-level tests. A printable string
    # holds no NUL and no lone surrogate, and one that is not all blanks strips to text.
    if (type(value) is str and 0 < len(value) <= MAX_IDENTIFIER_LENGTH
            and value.isprintable() and not value.isspace()):
        return value
    if not isinstance(value, str):
        raise InvalidIdentifierError(f"{what} must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise InvalidIdentifierError(f"{what} contains a NUL byte", value=repr(value))
    if not _encodable(value):
        raise InvalidIdentifierError(f"{what} contains a lone surrogate character")
    if not value.strip():
        raise InvalidIdentifierError(f"{what} must not be empty")
    if len(value) > MAX_IDENTIFIER_LENGTH:
        raise InvalidIdentifierError(
            f"{what} is longer than {MAX_IDENTIFIER_LENGTH} characters"
        )
    return value


def check_text(value: object, what: str, max_length: int = MAX_NAME_LENGTH,
               max_bytes: int | None = None) -> str:
    """Free text such as a name or description: no NUL bytes, bounded length (and, for text
    that is indexed, bounded bytes in UTF-8: ``MAX_INDEXED_BYTES``)."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise ValidationError(f"{what} contains a NUL byte")
    if not _encodable(value):
        raise ValidationError(f"{what} contains a lone surrogate character")
    if len(value) > max_length:
        raise ValidationError(f"{what} is longer than {max_length} characters")
    if max_bytes is not None and len(value.encode("utf-8")) > max_bytes:
        raise ValidationError(
            f"{what} is {len(value.encode('utf-8'))} bytes in UTF-8, over the limit of "
            f"{max_bytes} bytes (the most PostgreSQL indexes)")
    return value


def check_non_negative_int(value: object, what: str, maximum: int = MAX_BIGINT) -> int:
    """An integer in 0..maximum; pass MAX_INTEGER for values stored in an INTEGER column."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be an integer, got {value!r}")
    if value < 0:
        raise ValidationError(f"{what} must not be negative, got {value}")
    if value > maximum:
        raise ValidationError(f"{what} must be at most {maximum}, got {value}")
    return value


def check_optional_int(value: object, what: str, maximum: int = MAX_BIGINT) -> int | None:
    return None if value is None else check_non_negative_int(value, what, maximum)


def check_positive_id(value: object, what: str) -> int:
    """A record id: an integer from 1 (ids are identity columns, which start at 1)."""
    number = check_non_negative_int(value, what)
    if number < 1:
        raise ValidationError(f"{what} must be at least 1, got {value!r}")
    return number


def check_limit(value: object, maximum: int) -> int:
    """The size of a page of results: 1 to ``maximum``."""
    limit = check_non_negative_int(value, "limit")
    if not 1 <= limit <= maximum:
        raise ValidationError(f"limit must be between 1 and {maximum}, got {value}")
    return limit


def check_seconds(value: object, what: str, high: float, low: float | None = None) -> float:
    """A duration in seconds up to ``high``: more than 0, or at least ``low`` when given."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{what} must be a number, got {value!r}")
    seconds = float(value)
    if low is None:
        if not (math.isfinite(seconds) and 0 < seconds <= high):
            raise ValidationError(
                f"{what} must be more than 0 and at most {high:g}, got {value!r}")
    elif not (math.isfinite(seconds) and low <= seconds <= high):
        raise ValidationError(f"{what} must be between {low:g} and {high:g}, got {value!r}")
    return seconds


def check_choice(value: object, enum: type[E], what: str, /, *,
                 allowed: Iterable[E] | None = None,
                 error: type[ValidationError] = ValidationError, **details: Any) -> E:
    """``value`` as a member of ``enum`` (or of its members ``allowed``), matched exactly;
    anything else is ``error`` naming ``what`` and the accepted values."""
    members = tuple(enum) if allowed is None else tuple(allowed)
    if isinstance(value, str):
        for member in members:
            if member.value == value:
                return member
    accepted = ", ".join(member.value for member in members)
    raise error(f"{what} must be one of {accepted}, got {value!r}", **details)


def check_json_depth(value: Any, what: str,
                     error: type[ValidationError] = InvalidContentError) -> Any:
    if json_depth_over(value):
        raise error(f"{what} is nested deeper than the limit of {MAX_JSON_DEPTH} levels",
                    limit=MAX_JSON_DEPTH)
    return value


def load_json(text: str | bytes, what: str,
              error: type[ValidationError] = InvalidContentError) -> Any:
    """``json.loads`` within the limits (``MAX_JSON_DEPTH`` levels, integers of at most
    ``MAX_JSON_INTEGER_DIGITS`` digits): over a limit is ``error`` naming it; text that is not
    JSON still raises ``json.JSONDecodeError`` (a ``ValueError``), for callers that word it."""
    try:
        value = json.loads(text, parse_int=bounded_int)
    except IntegerTooLong as exc:
        raise error(f"{what} has an integer of {exc.digits} digits, over the limit of "
                    f"{MAX_JSON_INTEGER_DIGITS} digits", limit=MAX_JSON_INTEGER_DIGITS) from None
    except RecursionError:
        raise error(f"{what} is nested deeper than the limit of {MAX_JSON_DEPTH} levels",
                    limit=MAX_JSON_DEPTH) from None
    return check_json_depth(value, what, error)


def parse_json(text: str | bytes, what: str,
               error: type[ValidationError] = InvalidContentError) -> Any:
    """``text`` parsed as JSON within the limits, or ``error`` naming what is wrong: the
    parser of JSON a caller hands in, so that no input ends in RecursionError."""
    try:
        return load_json(text, what, error)
    except ValueError as exc:  # not JSON; bytes that are not UTF-8
        raise error(f"{what} is not valid JSON ({exc})") from None


def encode_json(value: Any, what: str, max_bytes: int | None = None) -> str:
    """Serialize ``value`` to compact JSON text both databases accept, or raise a typed error.

    NUL characters are refused because PostgreSQL's jsonb cannot hold them, and SQLite must
    accept exactly what PostgreSQL accepts so that data moves between them losslessly.
    """
    try:
        text = _ENCODE(value)
    except RecursionError:
        check_json_depth(value, what)  # deeper than any serializer goes: over the limit
        raise
    except (TypeError, ValueError) as exc:
        check_json_depth(value, what)  # a value both too deep and not JSON: the depth first
        raise InvalidContentError(f"{what} is not JSON-serializable: {exc}") from None
    # Every level of nesting opens a bracket, so text with few brackets (in strings too, which
    # only over-counts) nests within the limit: the walk over the value is then spared, on
    # every write.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        check_json_depth(value, what)
    # The pattern (a look-behind tried at every character) costs more than the rest of the
    # check; a plain substring test first spares it for the text that has no such escape.
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        raise InvalidContentError(f"{what} contains a NUL character (\\u0000)")
    try:  # ASCII text is its own size in UTF-8, without the copy
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidContentError(f"{what} contains a lone surrogate character") from None
    if max_bytes is not None and size > max_bytes:
        raise ContentTooLargeError(
            f"{what} is {size} bytes of JSON, over the limit of {max_bytes} bytes",
            size=size,
            limit=max_bytes,
        )
    return text


def check_metadata(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"metadata must be a JSON object, got {type(value).__name__}")
    return value


EMPTY_OBJECT = "{}"  # the JSON of no metadata


def metadata_json(metadata: object, max_bytes: int) -> str:
    """The JSON text of an item's metadata, checked; most stores give none, whose text is
    known without running the encoder (which builds a new C encoder on every call)."""
    if (metadata is None or (type(metadata) is dict and not metadata)) \
            and max_bytes >= len(EMPTY_OBJECT):
        return EMPTY_OBJECT
    return encode_json(check_metadata(metadata), "metadata", max_bytes)
