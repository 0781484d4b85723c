"""Files an agent client reads by itself, and ctxdb's own part of them: what an import of a
repository leaves out so that nothing reaches the agent twice.

Claude Code loads ``CLAUDE.md`` (and ``.claude/CLAUDE.md``, ``CLAUDE.local.md``,
``.claude/rules/``) into every session, Codex loads ``AGENTS.md``, Gemini CLI ``GEMINI.md``.
ctxdb's session-start hook injects the project's context items too, so importing those files
would show the agent each section twice. ``.claude/settings.json`` is where ``ctxdb install``
writes ctxdb's hooks: those entries are configuration of ctxdb itself, not project knowledge.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from ctxdb.hook_entries import uninstall_hooks

INSTRUCTIONS_FLAG = "--include-instructions"
_LOADED_BY = {"CLAUDE.md": "Claude Code", "CLAUDE.local.md": "Claude Code",
              "AGENTS.md": "Codex", "GEMINI.md": "Gemini CLI"}
# `ctxdb hook …` in a hook command, whatever the path to ctxdb and the quotes around it.
_CTXDB_HOOK = re.compile(r"(?:^|[\s/\\'\"])ctxdb(?:\.exe)?['\"]?\s+hook\b")
ONLY_CTXDB_HOOKS = ("only ctxdb's own hooks (what `ctxdb install` writes; Claude Code reads "
                    "them itself): nothing to import")


def client_loaded_reason(rel: str) -> str:
    """Why the instruction file at ``rel`` is skipped: the client that loads it by itself."""
    parts = rel.split("/")
    client = _LOADED_BY.get(parts[-1], "Claude Code")  # .claude/rules/*.md: Claude Code
    return (f"{client} loads it into every session itself; imported, the agent would read "
            f"it twice ({INSTRUCTIONS_FLAG} imports it anyway)")


def without_ctxdb_hooks(settings: Any) -> tuple[Any, int]:
    """``settings`` (a client's settings.json) without ctxdb's hook entries, and how many
    there were; hook groups and events left empty go too, as ``ctxdb install --uninstall``
    leaves them (the same code removes them)."""
    if not isinstance(settings, dict):
        return settings, 0
    cleaned = copy.deepcopy(settings)
    removed = 0

    def counted(entry: Mapping[str, Any]) -> bool:
        nonlocal removed
        ours = _is_ctxdb_hook(entry)
        removed += ours
        return ours

    uninstall_hooks(cleaned, counted)
    return cleaned, removed


def _is_ctxdb_hook(entry: Mapping[str, Any]) -> bool:
    """Any client's ctxdb hook: an import does not know which client wrote the file."""
    command = entry.get("command")
    return isinstance(command, str) and _CTXDB_HOOK.search(command) is not None
