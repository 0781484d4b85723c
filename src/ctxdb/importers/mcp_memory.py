"""The knowledge graph of the reference MCP memory server (``memory.json``).

The server stores one JSON object per line (JSON Lines)::

    {"type": "entity", "name": "Ada", "entityType": "person", "observations": ["…"]}
    {"type": "relation", "from": "Ada", "to": "Shop", "relationType": "works_on"}

Each entity becomes a memory in namespace ``mcp:entity:<entityType>`` under its name, with
the value ``{"name", "entityType", "observations"}``; each relation a memory in namespace
``mcp:relation:<relationType>`` under the key ``<from> -> <to>``, with the value
``{"from", "to", "relationType"}``. Characters a namespace segment cannot hold become
``_`` (the value keeps the original). A file holding one object with ``entities`` and
``relations`` lists is read the same way.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ctxdb.importers.json_items import MalformedItems, load
from ctxdb.importers.records import MemoryRecord, digest

_NOT_NAMESPACE = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_KEY = 200
MEMORY_FILE_NAMES = ("memory.json", "memory.jsonl")


class MalformedGraph(ValueError):
    """The file is not a memory graph; the message says which line and why."""


def namespace_segment(value: str) -> str:
    return _NOT_NAMESPACE.sub("_", value).strip("_") or "_"


def memory_key(value: str) -> str:
    """``value`` as a memory key: long ones are cut and made unique by a digest."""
    if len(value) <= MAX_KEY:
        return value
    return value[: MAX_KEY - 18] + "~" + digest(value)


def looks_like_graph(text: str) -> bool:
    first = text.lstrip()[:200]
    return first.startswith("{") and bool(re.search(r'"type"\s*:\s*"(entity|relation)"', first)
                                          or re.search(r'"entities"\s*:', first))


def _records(text: str) -> list[tuple[int, Any]]:
    stripped = text.strip()
    if stripped.startswith("{") and "\n" in stripped:
        try:  # one object holding the lists (pretty-printed or not)
            whole = load(stripped)
        except json.JSONDecodeError:
            whole = None
        except MalformedItems as exc:
            raise MalformedGraph(str(exc)) from None
        if isinstance(whole, dict) and "type" not in whole:
            return _from_lists(whole)
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append((number, load(line)))
        except json.JSONDecodeError as exc:
            raise MalformedGraph(f"line {number} is not valid JSON: {exc}") from None
        except MalformedItems as exc:
            raise MalformedGraph(f"line {number}: {exc}") from None
    if len(found) == 1 and isinstance(found[0][1], dict) and "type" not in found[0][1]:
        return _from_lists(found[0][1])
    return found


def _from_lists(whole: dict[str, Any]) -> list[tuple[int, Any]]:
    entities, relations = whole.get("entities", []), whole.get("relations", [])
    if not isinstance(entities, list) or not isinstance(relations, list):
        raise MalformedGraph("'entities' and 'relations' must be lists")
    return ([(i, {"type": "entity", **e}) for i, e in enumerate(entities, 1)
             if isinstance(e, dict)]
            + [(i, {"type": "relation", **r}) for i, r in enumerate(relations, 1)
               if isinstance(r, dict)])


def _text(record: dict[str, Any], field: str, number: int) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise MalformedGraph(f"line {number}: {field!r} must be a non-empty string")
    return value


def parse_graph(source: str, text: str) -> tuple[list[MemoryRecord], list[MemoryRecord]]:
    """(entity memories, relation memories); :class:`MalformedGraph` names the bad line."""
    entities: dict[tuple[str, str], MemoryRecord] = {}
    relations: dict[tuple[str, str], MemoryRecord] = {}
    for number, record in _records(text):
        if not isinstance(record, dict):
            raise MalformedGraph(f"line {number} is not a JSON object")
        kind = record.get("type")
        if kind == "entity":
            name, entity_type = _text(record, "name", number), _text(record, "entityType",
                                                                     number)
            observations = record.get("observations", [])
            if not isinstance(observations, list) or not all(
                    isinstance(o, str) for o in observations):
                raise MalformedGraph(f"line {number}: 'observations' must be a list of strings")
            memory = MemoryRecord(
                "mcp_entities", source, f"mcp:entity:{namespace_segment(entity_type)}",
                memory_key(name),
                {"name": name, "entityType": entity_type, "observations": observations})
            entities[(memory.namespace, memory.key)] = memory  # a later line wins
        elif kind == "relation":
            start, end = _text(record, "from", number), _text(record, "to", number)
            relation_type = _text(record, "relationType", number)
            memory = MemoryRecord(
                "mcp_relations", source, f"mcp:relation:{namespace_segment(relation_type)}",
                memory_key(f"{start} -> {end}"),
                {"from": start, "to": end, "relationType": relation_type})
            relations[(memory.namespace, memory.key)] = memory
        else:
            raise MalformedGraph(f"line {number}: 'type' must be 'entity' or 'relation', "
                                 f"got {kind!r}")
    return list(entities.values()), list(relations.values())
