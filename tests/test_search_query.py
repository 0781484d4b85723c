"""Search queries as users type them: parsed into terms, written safely for each engine; the
snippets of hits; time bounds. Pure functions (the engines' side is in test_search_service)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ctxdb.domain.search import (
    MAX_QUERY_TERMS,
    SearchQuery,
    Term,
    parse_instant,
    parse_query,
    raw_words,
    snippet,
)
from ctxdb.errors import InvalidSearchQueryError, ValidationError
from ctxdb.storage.search_engine import fts5_query, tsquery


def test_words_phrases_exclusions_alternatives_and_prefixes() -> None:
    parsed = parse_query('Stripe "payment intent" -refund or paypal* stripe_id')
    assert parsed == SearchQuery((
        (Term(("Stripe",)), Term(("payment", "intent")), Term(("refund",), excluded=True)),
        (Term(("paypal",), prefix=True), Term(("stripe", "id"))),
    ))
    assert parsed.words == ["Stripe", "payment", "intent", "paypal", "stripe", "id"]
    assert parsed.prefixes == ["paypal"]
    assert parsed.wanted().groups[0] == (Term(("Stripe",)), Term(("payment", "intent")))


def test_each_engine_gets_every_word_quoted() -> None:
    # Each word as the index holds it: lower-cased, camelCase split, stemmed.
    parsed = parse_query('Stripe "payment intents" -refunds or paypal* stripe_id parseConfig')
    assert fts5_query(parsed) == ('("stripe" AND "payment intent" NOT "refund") OR '
                                  '("paypal" * AND "stripe id" AND "pars config")')
    assert tsquery(parsed) == ("(('stripe') & ('payment' <-> 'intent') & !('refund')) | "
                               "(('paypal':*) & ('stripe' <-> 'id') & ('pars' <-> 'config'))")


@pytest.mark.parametrize(("text", "fts5"), [
    ('"; DROP TABLE context_items; --', '("drop tabl context item")'),
    ("NEAR(a b) AND NOT c", '("near a" AND "b" AND "and" AND "not" AND "c")'),
    ("body:secret {body}: x", '("bodi secret" AND "bodi" AND "x")'),
    ("it's o'clock \\ back\\slash", '("it s" AND "o clock" AND "back slash")'),
    ('"unterminated phrase', '("untermin phrase")'),
    ("^start a* * ** x:*", '("start" AND "a" * AND "x")'),
    ("-", None), ("OR or Or", None), ("a OR OR b", '("a") OR ("b")'),
    ("日本語テキスト Straße ÜBER", '("日本語テキスト" AND "straße" AND "über")'),
])
def test_hostile_input_is_only_ever_words(text: str, fts5: str | None) -> None:
    if fts5 is None:
        with pytest.raises(InvalidSearchQueryError, match="no words to search for"):
            parse_query(text)
        return
    parsed = parse_query(text)
    assert fts5_query(parsed) == fts5
    # Whatever was typed, the engines see quoted runs of letters and digits and operators.
    for term in (t for group in parsed.groups for t in group):
        assert all(word.isalnum() for word in term.words)


@pytest.mark.parametrize(("text", "message"), [
    ("", "has no words to search for"),
    ("   ", "has no words to search for"),
    ("!!! ... ---", "has no words to search for"),
    ("-secret", "only excludes words"),
    ("stripe or -paypal", "only excludes words"),
    (" ".join(f"w{n}" for n in range(MAX_QUERY_TERMS + 1)), "at most 32 are allowed"),
])
def test_queries_with_nothing_to_find_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidSearchQueryError, match=message) as raised:
        parse_query(text)
    assert raised.value.code == "invalid_search_query"
    assert raised.value.details["query"] == text


def test_raw_words_leave_the_operators_out() -> None:
    assert raw_words('stripe AND "pay ment" NOT refund OR near NEAR(x y)') == [
        "stripe", "pay", "ment", "refund", "x", "y"]


def test_snippet_marks_the_words_around_the_first_match() -> None:
    body = "decision\nPayments via STRIPE\nfile\nsrc/stripe_id.py"
    assert snippet(body, ["stripe"]) == ("decision Payments via **STRIPE** file "
                                         "src/**stripe**_id.py")
    assert snippet(body, [], ["pay"]) == "decision **Payments** via STRIPE file src/stripe_id.py"
    assert snippet("nothing matches here", ["absent"]) == "nothing matches here"
    assert snippet("", ["x"]) == ""


def test_snippet_of_a_long_record_is_a_window_with_ellipses() -> None:
    words = [f"w{n}" for n in range(10_000)]
    body = " ".join([*words[:5_000], "needle", *words[5_000:]])
    text = snippet(body, ["needle"], width=9)
    assert text == "… w4997 w4998 w4999 **needle** w5000 w5001 w5002 w5003 w5004 …"
    assert snippet(body, ["w0"], width=3) == "**w0** w1 w2 …"
    assert snippet(body, ["w9999"], width=3) == "… w9997 w9998 **w9999**"


def test_snippet_only_marks_whole_words_ignoring_case() -> None:
    assert snippet("Index indexes reindex INDEX", ["index"]) == (
        "**Index** indexes reindex **INDEX**")


def test_instants_are_stored_timestamps() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_instant("2025-01-31", "since") == "2025-01-31T00:00:00.000Z"
    assert parse_instant("2025-01-31T12:30:00+02:00", "since") == "2025-01-31T10:30:00.000Z"
    assert parse_instant("2025-01-31T12:30:00.123456Z", "since") == "2025-01-31T12:30:00.123Z"
    assert parse_instant(datetime(2025, 1, 31, 8), "until") == "2025-01-31T08:00:00.000Z"
    assert parse_instant("7d", "since", now) == "2025-02-22T12:00:00.000Z"
    assert parse_instant("90 m", "since", now) == "2025-03-01T10:30:00.000Z"
    assert parse_instant("0001-01-01", "since") == "0001-01-01T00:00:00.000Z"


@pytest.mark.parametrize("value", ["yesterday", "7 days", "2025-13-01", 5, None, ""])
def test_bad_instants_are_refused(value: object) -> None:
    with pytest.raises(ValidationError, match="since"):
        parse_instant(value, "since")


def test_an_age_of_too_many_digits_names_the_limit() -> None:
    """Not Python's 4,300-digit ValueError (an internal error): the limit named."""
    with pytest.raises(ValidationError, match="since is an age of 5000 digits, over the "
                                              "limit of 18 digits"):
        parse_instant("9" * 5_000 + "d", "since")
    parse_instant("9" * 18 + "w", "since")  # the largest age: before the first date
