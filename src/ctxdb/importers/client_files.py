"""Files an agent client reads by itself, and ctxdb's own part of them: what an import of a
repository leaves out so that nothing reaches the agent twice.

Claude Code loads ``CLAUDE.md`` (and ``.claude/CLAUDE.md``, ``CLAUDE.local.md``,
``.claude/rules/``) into every session, Codex loads ``AGENTS.md``, Gemini CLI ``GEMINI.md``.
ctxdb's session-start hook injects the project's context items too, so importing those files
would show the agent each section twice. ``.claude/settings.json`` is where ``ctxdb install``
writes ctxdb's hooks: those entries are configuration of ctxdb itself, not project knowledge.
"""

from __future__ import annotations

import re
from typing import Any

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
    there were; hook groups and events left empty go too."""
    if not isinstance(settings, dict) or not isinstance(settings.get("hooks"), dict):
        return settings, 0
    removed = 0
    hooks: dict[str, Any] = {}
    for event, groups in settings["hooks"].items():
        if not isinstance(groups, list):
            hooks[event] = groups
            continue
        kept_groups = []
        for group in groups:
            entries = group.get("hooks") if isinstance(group, dict) else None
            if not isinstance(entries, list):
                kept_groups.append(group)
                continue
            kept = [e for e in entries if not _is_ctxdb_hook(e)]
            removed += len(entries) - len(kept)
            if kept:
                kept_groups.append({**group, "hooks": kept})
        if kept_groups:
            hooks[event] = kept_groups
    cleaned = {key: value for key, value in settings.items() if key != "hooks"}
    if hooks:
        cleaned["hooks"] = hooks
    return cleaned, removed


def _is_ctxdb_hook(entry: Any) -> bool:
    command = entry.get("command") if isinstance(entry, dict) else None
    return isinstance(command, str) and _CTXDB_HOOK.search(command) is not None
