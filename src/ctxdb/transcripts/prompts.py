"""Which ``user`` records are text the user actually typed.

Claude Code writes many things as ``user`` records that the user never typed. Rules (checked
against Claude Code 1.0.98, 1.0.108, 2.1.38 and 2.1.39 transcripts):

- sidechain records are prompts written by the main agent for a subagent, not by the user;
- ``isMeta`` records are expansions of slash commands, caveats and hook reminders;
- ``isCompactSummary`` / ``isVisibleInTranscriptOnly`` records are the summary written after a
  compaction;
- content with a ``tool_result`` block is a tool result;
- text starting with a wrapper tag is generated: ``<local-command-stdout>`` (output of a local
  slash command), ``<local-command-caveat>``, ``<task-notification>`` (a background task
  finished), ``<system-reminder>``, ``<bash-input>``/``<bash-stdout>`` (``!`` shell mode) ...;
- ``[Request interrupted by user...]`` is written when the user presses Esc;
- a slash command (``<command-name>/x</command-name>`` with ``<command-args>``) counts as a
  request only when it has arguments, rendered ``/x args``: ``/orchestrator create TODO app``
  is a request, ``/mcp`` or ``/clear`` is not.
"""

from __future__ import annotations

import re
from typing import Any

GENERATED_PREFIXES = (
    "<local-command-stdout>",
    "<local-command-stderr>",
    "<local-command-caveat>",
    "<task-notification>",
    "<system-reminder>",
    "<bash-input>",
    "<bash-stdout>",
    "<bash-stderr>",
    "<user-prompt-submit-hook>",
    "[Request interrupted by user",
)
COMMAND_NAME = re.compile(r"<command-name>\s*(.*?)\s*</command-name>", re.DOTALL)
COMMAND_ARGS = re.compile(r"<command-args>\s*(.*?)\s*</command-args>", re.DOTALL)
NOT_TYPED_FLAGS = ("isSidechain", "isMeta", "isCompactSummary", "isVisibleInTranscriptOnly")


def typed_user_text(record: dict[str, Any], content: object) -> str | None:
    """The text the user typed in this ``user`` record, or None if it is not a typed prompt."""
    if any(record.get(flag) is True for flag in NOT_TYPED_FLAGS):
        return None
    pieces = [_typed_piece(text) for text in _text_pieces(content)]
    typed = "\n\n".join(piece for piece in pieces if piece)
    return typed or None


def _text_pieces(content: object) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    blocks = [block for block in content if isinstance(block, dict)]
    if any(block.get("type") == "tool_result" for block in blocks):
        return []
    return [
        block["text"]
        for block in blocks
        if block.get("type") == "text" and isinstance(block.get("text"), str)
    ]


def _typed_piece(text: str) -> str | None:
    stripped = text.strip()
    if not stripped or stripped.startswith(GENERATED_PREFIXES):
        return None
    if "<command-name>" in stripped:
        return _slash_command_request(stripped)
    return stripped


def _slash_command_request(text: str) -> str | None:
    name = COMMAND_NAME.search(text)
    args = COMMAND_ARGS.search(text)
    if name is None or args is None or not args.group(1):
        return None
    command = name.group(1)
    if not command.startswith("/"):
        command = "/" + command
    return f"{command} {args.group(1)}"
