"""How the CLI shows a budgeted pack to people (the text, Markdown and JSON forms are in
``ctxdb.domain.pack_formats``, shared with the MCP server)."""

from __future__ import annotations

from typing import Any

from ctxdb.cli.output import print_table, say
from ctxdb.domain.pack_formats import item_text, usage_line

PACK_FORMATS = ("text", "json", "markdown")


def print_pack_table(payload: dict[str, Any]) -> None:
    """People's view of a pack: what went in, then what was left out and why."""
    rows = [{**item, "content": item_text(item)} for item in payload["items"]]
    print_table(rows, ("item_id", "priority", "sequence_number", "token_count", "content"),
                title="packed", empty="the pack is empty")
    manifest = payload["manifest"]
    if manifest["omitted"]:
        print_table(manifest["omitted"], ("item_id", "priority", "token_count", "reason"),
                    title="omitted")
    say(usage_line(payload))
