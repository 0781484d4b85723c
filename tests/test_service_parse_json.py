"""``service.common.parse_json`` gives exactly what ``json.loads`` gives (value or error)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxdb.service.common import decode, parse_json

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8)


def outcome(parse: Any, text: str) -> Any:
    try:
        return ("value", parse(text))
    except json.JSONDecodeError as exc:
        return ("error", str(exc))


@given(JSON_VALUES, st.booleans())
def test_a_value_encoded_either_way_is_read_back_as_json_loads_reads_it(
        value: Any, ensure_ascii: bool) -> None:
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    assert outcome(parse_json, text) == outcome(json.loads, text)


@given(st.text())
def test_any_text_gives_the_same_value_or_the_same_error(text: str) -> None:
    assert outcome(parse_json, text) == outcome(json.loads, text)


@pytest.mark.parametrize("text", ['"a"y', '"\\x"', '"tab\there"', '"', '"open', ' "x" ',
                                  '"\\ud800"', "{}", "[]", '""', '"a" ', "{ }"])
def test_edge_cases_match_json_loads(text: str) -> None:
    assert outcome(parse_json, text) == outcome(json.loads, text)


def test_decode_parses_only_the_json_columns() -> None:
    row = {"content": '"note"', "metadata": "{}", "title": '"kept as text"'}
    assert decode(row) == {"content": "note", "metadata": {}, "title": '"kept as text"'}
    assert decode({"metadata": {"already": "parsed"}}) == {"metadata": {"already": "parsed"}}
