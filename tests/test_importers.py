"""The pure parts of ``ctxdb import``: markdown sections and their priority, timestamps of
legacy rows, JSON item shapes and the MCP memory graph (no database)."""

from __future__ import annotations

import pytest

from ctxdb.importers.json_items import MalformedItems, parse_items
from ctxdb.importers.legacy import to_timestamp
from ctxdb.importers.markdown import instruction_priority, sections, split_front_matter
from ctxdb.importers.mcp_memory import MalformedGraph, namespace_segment, parse_graph


def test_sections_split_at_headings_outside_code() -> None:
    text = ("Intro line.\n\n# Title #\n\nBody.\n\n## Learn C#\n\n~~~\n# not a heading\n~~~\n\n"
            "## Empty\n### Deep\n\nText.\n#hashtag is text\n\n## Learn C#\n\nAgain.\n")
    found = sections(text)
    assert [(s.headings, s.occurrence) for s in found] == [
        ((), 0), (("Title",), 0), (("Title", "Learn C#"), 0),
        (("Title", "Empty", "Deep"), 0), (("Title", "Learn C#"), 1)]
    assert found[2].body == "~~~\n# not a heading\n~~~"
    assert found[3].body == "Text.\n#hashtag is text"


def test_front_matter_is_kept_apart() -> None:
    fields, body = split_front_matter("---\nname: x\ndescription: 'y z'\n---\nText\n")
    assert fields == {"name": "x", "description": "y z"} and body == "Text\n"
    assert split_front_matter("No front matter\n---\n") == ({}, "No front matter\n---\n")


@pytest.mark.parametrize(("text", "wide", "expected"), [
    ("## Rules\n\nbe nice", True, "CRITICAL"),
    ("## Style\n\nIMPORTANT: tabs", True, "CRITICAL"),
    ("## Style\n\nit is important to use tabs", True, "HIGH"),
    ("## Rules\n\nbe nice", False, "HIGH"),
    ("# Security\n## Tokens\n\nrotate", True, "CRITICAL"),
])
def test_the_critical_rule(text: str, wide: bool, expected: str) -> None:
    section = sections(text)[-1]
    assert instruction_priority(section, wide) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("2025-11-19 12:00:00", "2025-11-19T12:00:00.000Z"),
    ("2025-11-19T12:00:00.123456", "2025-11-19T12:00:00.123Z"),
    ("2025-11-19T14:00:00+02:00", "2025-11-19T12:00:00.000Z"),
    ("2025-11-19T12:00:00Z", "2025-11-19T12:00:00.000Z"),
    (1763553600, "2025-11-19T12:00:00.000Z"),
    (None, None),
])
def test_legacy_timestamps(value: object, expected: str | None) -> None:
    assert to_timestamp(value, ValueError) == expected


def test_an_unreadable_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="not a timestamp"):
        to_timestamp("yesterday", ValueError)


def test_json_items_need_content_and_a_known_priority() -> None:
    items = parse_items("a.json", '{"items": [{"content": 1, "priority": "low", "id": 7}]}')
    assert (items[0].priority, items[0].slot) == ("LOW", "a.json#key:7")
    with pytest.raises(MalformedItems, match="item 0 has no 'content'"):
        parse_items("a.json", '[{"text": 1}]')
    with pytest.raises(MalformedItems, match="priority must be one of"):
        parse_items("a.json", '[{"content": 1, "priority": "URGENT"}]')


def test_the_memory_graph() -> None:
    entities, relations = parse_graph("memory.json", (
        '{"type":"entity","name":"A","entityType":"code file","observations":["x"]}\n\n'
        '{"type":"relation","from":"A","to":"B","relationType":"imports"}\n'))
    assert (entities[0].namespace, entities[0].key) == ("mcp:entity:code_file", "A")
    assert (relations[0].namespace, relations[0].key) == ("mcp:relation:imports", "A -> B")
    legacy = parse_graph("m.json", '{"entities": [{"name": "A", "entityType": "t"}], '
                                   '"relations": []}')
    assert legacy[0][0].value == {"name": "A", "entityType": "t", "observations": []}
    assert namespace_segment("ü/€") == "_"
    with pytest.raises(MalformedGraph, match="line 2"):
        parse_graph("m.json", '{"type":"entity","name":"A","entityType":"t"}\n{oops\n')
