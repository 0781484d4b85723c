"""``check_identifier`` answers its common case by a shortcut: the shortcut must accept
exactly what the detailed checks accept, and a refusal must keep its message."""

from __future__ import annotations

import pytest

from ctxdb.domain.models import Priority
from ctxdb.domain.tokens import estimate_tokens
from ctxdb.domain.validation import MAX_IDENTIFIER_LENGTH, check_identifier, encode_json
from ctxdb.errors import ContentTooLargeError, InvalidIdentifierError, InvalidPriorityError


@pytest.mark.parametrize("value", [
    "a", "proj_20261207_153000_abcdef123456", "with space", " lead", "ünïcödé", "日本語",
    "x" * MAX_IDENTIFIER_LENGTH, "tab\tinside", "line\nbreak", "\u00a0x", "emoji 🙂",
])
def test_every_identifier_the_detailed_checks_accept_is_accepted(value: str) -> None:
    assert check_identifier(value, "project_id") is value


@pytest.mark.parametrize(("value", "message"), [
    ("", "project_id must not be empty"),
    ("   ", "project_id must not be empty"),
    ("\u3000\u00a0\u2003", "project_id must not be empty"),  # blanks that are printable or not
    ("\t\n", "project_id must not be empty"),
    ("a\x00b", "project_id contains a NUL byte"),
    ("a\ud800", "project_id contains a lone surrogate character"),
    ("x" * (MAX_IDENTIFIER_LENGTH + 1),
     f"project_id is longer than {MAX_IDENTIFIER_LENGTH} characters"),
    (7, "project_id must be a string, got int"),
])
def test_a_refused_identifier_keeps_its_message(value: object, message: str) -> None:
    with pytest.raises(InvalidIdentifierError) as raised:
        check_identifier(value, "project_id")
    assert str(raised.value).startswith(message)


def test_a_str_subclass_is_checked_in_full() -> None:
    class Name(str):
        pass

    assert check_identifier(Name("ok"), "actor") == "ok"
    with pytest.raises(InvalidIdentifierError):
        check_identifier(Name(" "), "actor")


@pytest.mark.parametrize("text", ["", "a", "abcd", "abcde", "ünï", "日本語 text", "x" * 401])
def test_the_token_estimate_is_the_same_for_ascii_and_other_text(text: str) -> None:
    ascii_chars = sum(1 for char in text if char.isascii())
    expected = 0 if not text else max(1, -(-ascii_chars // 4) + len(text) - ascii_chars)
    assert estimate_tokens(text) == expected


def test_json_size_counts_utf8_bytes() -> None:
    encode_json("ü" * 4, "content", 10)  # "\"üüüü\"": 10 bytes
    with pytest.raises(ContentTooLargeError, match="11 bytes of JSON"):
        encode_json("ü" * 4 + "a", "content", 10)
    with pytest.raises(ContentTooLargeError, match="8 bytes of JSON"):
        encode_json("abcdef", "content", 7)


@pytest.mark.parametrize("value", ["high", "HIGH", "Critical", Priority.LOW])
def test_priority_parses_any_case(value: object) -> None:
    assert Priority.parse(value).value == str(value).upper()


@pytest.mark.parametrize("value", ["", "urgent", None, 3])
def test_a_bad_priority_is_refused(value: object) -> None:
    with pytest.raises(InvalidPriorityError, match="invalid priority"):
        Priority.parse(value)
