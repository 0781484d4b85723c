"""Gemini CLI: hooks and the MCP server in one ``settings.json``.

Gemini's events differ from Claude Code's: BeforeAgent comes where UserPromptSubmit would,
AfterAgent where Stop would, and PreCompress (advisory: it cannot add context) where
PreCompact would. Timeouts are in milliseconds. Gemini does not wait for SessionEnd hooks,
so that one is short too. Each entry also carries ``"name": "ctxdb"`` for Gemini's logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ctxdb.clients.files import FileChange, plan_json_edit
from ctxdb.clients.merge import (
    HookSpec,
    bearer_header,
    install_hooks,
    install_server,
    ours_for,
    uninstall_hooks,
    uninstall_server,
)

CLIENT = "gemini"
TITLE = "Gemini CLI"

# (event, timeout in milliseconds)
EVENTS: tuple[tuple[str, int], ...] = (
    ("SessionStart", 15_000),
    ("BeforeAgent", 10_000),
    ("AfterAgent", 30_000),
    ("PreCompress", 30_000),
    ("SessionEnd", 1_500),
)

# Gemini reads settings.json with comments allowed; Python's json module does not.
COMMENT_HINT = (" (if it holds // or /* */ comments: ctxdb cannot edit it without losing "
                "them, so remove them or add ctxdb's entries by hand, see docs/install.md)")


def hook_specs(hook_command: str) -> list[HookSpec]:
    return [HookSpec(event, {"name": "ctxdb", "type": "command", "command": hook_command,
                             "timeout": timeout})
            for event, timeout in EVENTS]


def settings_path(scope: str, root: Path, home: Path) -> Path:
    return (home if scope == "user" else root) / ".gemini" / "settings.json"


def plan(scope: str, root: Path, home: Path, executable: str, hook_command: str,
         uninstall: bool, mcp_url: str | None = None,
         with_mcp: bool = True) -> list[FileChange]:
    path = settings_path(scope, root, home)
    is_ours = ours_for(CLIENT)
    if uninstall:
        return [plan_json_edit(
            path, lambda data: uninstall_hooks(data, is_ours) + uninstall_server(data),
            COMMENT_HINT)]
    specs = hook_specs(hook_command)
    server: dict[str, object] = {"command": executable, "args": ["mcp"]}
    if mcp_url is not None:  # httpUrl: Gemini's key for streamable HTTP (url is SSE)
        server = {"httpUrl": mcp_url, "headers": bearer_header()}

    def edit(data: dict[str, Any]) -> list[str]:
        notes = install_hooks(data, specs, is_ours, path)
        return notes + install_server(data, server, path) if with_mcp else notes

    return [plan_json_edit(path, edit, COMMENT_HINT)]
