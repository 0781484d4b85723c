"""Claude Code: hooks in ``settings.json``, the MCP server in ``.mcp.json`` or ``~/.claude.json``.

Timeouts are in seconds. They stay well inside Claude Code's own limits: UserPromptSubmit
blocks the prompt (its default limit is 30 s), and every SessionEnd hook shares 1.5 s, so
ctxdb's SessionEnd hook (one cheap write) gets 1 s. Stop and SubagentStop ingest the
transcript and run with ``"async": true`` so that the agent never waits for them.
"""

from __future__ import annotations

from pathlib import Path

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

CLIENT = "claude-code"
TITLE = "Claude Code"

# (event, timeout in seconds, runs in the background)
EVENTS: tuple[tuple[str, int, bool], ...] = (
    ("SessionStart", 15, False),
    ("UserPromptSubmit", 10, False),
    ("PreCompact", 30, False),
    ("PostCompact", 10, False),
    ("Stop", 60, True),
    ("SubagentStop", 60, True),
    ("SessionEnd", 1, False),
)


def hook_specs(hook_command: str) -> list[HookSpec]:
    specs = []
    for event, timeout, background in EVENTS:
        entry: dict[str, object] = {"type": "command", "command": hook_command,
                                    "timeout": timeout}
        if background:
            entry["async"] = True
        specs.append(HookSpec(event, entry))
    return specs


def settings_paths(scope: str, root: Path, home: Path) -> tuple[Path, Path]:
    """(the hooks file, the MCP file) of ``scope``."""
    if scope == "user":
        return home / ".claude" / "settings.json", home / ".claude.json"
    return root / ".claude" / "settings.json", root / ".mcp.json"


def plan(scope: str, root: Path, home: Path, executable: str, hook_command: str,
         uninstall: bool, mcp_url: str | None = None,
         with_mcp: bool = True) -> list[FileChange]:
    hooks_path, mcp_path = settings_paths(scope, root, home)
    is_ours = ours_for(CLIENT)
    server: dict[str, object] = {"type": "stdio", "command": executable, "args": ["mcp"]}
    if mcp_url is not None:
        server = {"type": "http", "url": mcp_url, "headers": bearer_header()}
    if uninstall:
        return [plan_json_edit(hooks_path, lambda data: uninstall_hooks(data, is_ours)),
                plan_json_edit(mcp_path, uninstall_server)]
    specs = hook_specs(hook_command)
    changes = [plan_json_edit(hooks_path,
                              lambda data: install_hooks(data, specs, is_ours, hooks_path))]
    if with_mcp:
        changes.append(plan_json_edit(mcp_path,
                                      lambda data: install_server(data, server, mcp_path)))
    return changes
