"""Codex CLI: Claude-style hooks in ``hooks.json``; the feature switch and MCP in ``config.toml``.

Codex runs hooks from ``hooks.json`` once ``[features] codex_hooks = true`` is set (newer
versions call the switch ``hooks`` and keep ``codex_hooks`` as an alias). Events: SessionStart,
UserPromptSubmit, PreCompact, PostCompact and Stop; Codex versions that do not know an event
name ignore it, so PreCompact (the save before compaction) is installed for those that do.
Codex has no background hooks, so Stop gets a moderate timeout instead of ``async``.

``config.toml`` is edited with tomlkit, which keeps the user's comments and layout. The
``codex_hooks`` line (and a ``[features]`` table) that ctxdb adds carries a marker comment,
so that ``--uninstall`` removes that switch only when ctxdb turned it on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import Item, Table

from ctxdb.clients.files import FileChange, plan_json_edit, read_text, trailing_newlines_like
from ctxdb.clients.merge import SERVER_NAME, HookSpec, install_hooks, ours_for, uninstall_hooks
from ctxdb.errors import ClientSettingsError

CLIENT = "codex"
TITLE = "Codex CLI"
FEATURE = "codex_hooks"
MARKER = "added by ctxdb install"

# (event, timeout in seconds)
EVENTS: tuple[tuple[str, int], ...] = (
    ("SessionStart", 15),
    ("UserPromptSubmit", 10),
    ("PreCompact", 30),
    ("PostCompact", 10),
    ("Stop", 30),
)


def hook_specs(hook_command: str) -> list[HookSpec]:
    return [HookSpec(event, {"type": "command", "command": hook_command, "timeout": timeout})
            for event, timeout in EVENTS]


def settings_paths(scope: str, root: Path, home: Path) -> tuple[Path, Path]:
    """(hooks.json, config.toml) of ``scope``."""
    folder = (home if scope == "user" else root) / ".codex"
    return folder / "hooks.json", folder / "config.toml"


def plan(scope: str, root: Path, home: Path, executable: str, hook_command: str,
         uninstall: bool) -> list[FileChange]:
    hooks_path, config_path = settings_paths(scope, root, home)
    is_ours = ours_for(CLIENT)
    if uninstall:
        hooks_change = plan_json_edit(hooks_path, lambda data: uninstall_hooks(data, is_ours))
        return [hooks_change, plan_config(config_path, None)]
    specs = hook_specs(hook_command)
    hooks_change = plan_json_edit(
        hooks_path, lambda data: install_hooks(data, specs, is_ours, hooks_path))
    return [hooks_change, plan_config(config_path, executable)]


def plan_config(path: Path, executable: str | None) -> FileChange:
    """Install (``executable`` given) or uninstall (None) ctxdb's part of ``config.toml``."""
    before = read_text(path) or ""
    try:
        document = tomlkit.parse(before)
    except TOMLKitError as exc:
        raise ClientSettingsError(f"{path} is not valid TOML ({exc}); fix it and rerun: "
                                  "nothing was written", path=str(path)) from None
    if executable is None:
        notes = _disable_feature(document, path) + _remove_server(document, path)
    else:
        notes = _enable_feature(document, path) + _add_server(document, executable, path)
    existed = path.exists()
    if not notes:
        text = before if existed else None
        return FileChange(path, text, text)
    text = document.as_string()
    after: str | None = text
    if executable is None:
        # Removing a table leaves the blank line that separated it; an emptied file goes.
        after = trailing_newlines_like(text, before) if text.strip() else None
    return FileChange(path, before if existed else None, after, notes)


def _table(document: Any, key: str, path: Path, create: bool) -> Any:
    table = document.get(key)
    if table is None and create:
        table = tomlkit.table(is_super_table=key == "mcp_servers")
        if key != "mcp_servers":
            table.comment(MARKER)
        document.add(key, table)
    if table is not None and not isinstance(table, dict):
        raise ClientSettingsError(f"{path}: \"{key}\" must be a table, not "
                                  f"{type(table).__name__}; nothing was written", path=str(path))
    return table


def _enable_feature(document: Any, path: Path) -> list[str]:
    features = _table(document, "features", path, create=True)
    if features.get(FEATURE) is True:
        return []
    if not isinstance(features, Table):  # an inline table has no room for a comment
        features[FEATURE] = True
        return [f"set [features] {FEATURE} = true"]
    flag = tomlkit.item(True)
    flag.comment(MARKER)
    _put_after_last_setting(features, flag)
    return [f"set [features] {FEATURE} = true"]


def _put_after_last_setting(features: Table, flag: Item) -> None:
    """Sets the flag right after the table's last setting.

    Appending would put it below the comments that introduce the next table, which the
    parser files under this one. tomlkit has no public insert, so its long-standing
    `_insert_at` is used when present; without it (a future tomlkit) the flag is
    appended, which is the same TOML, only placed lower.
    """
    body = features.value.body
    settings = [index for index, (key, _) in enumerate(body) if key is not None]
    insert_at = getattr(features.value, "_insert_at", None)
    after_last = settings[-1] + 1 if settings else len(body)
    if FEATURE in features or insert_at is None or after_last >= len(body):
        features[FEATURE] = flag
    else:
        insert_at(after_last, FEATURE, flag)


def _disable_feature(document: Any, path: Path) -> list[str]:
    features = _table(document, "features", path, create=False)
    if not isinstance(features, Table) or FEATURE not in features:
        return []
    flag = features.item(FEATURE)
    if not isinstance(flag, Item) or not _marked(flag):
        return []
    del features[FEATURE]
    if not features and _marked(features):
        del document["features"]
    return [f"removed [features] {FEATURE} (ctxdb had set it)"]


def _add_server(document: Any, executable: str, path: Path) -> list[str]:
    servers = _table(document, "mcp_servers", path, create=True)
    current = servers.get(SERVER_NAME)
    if current is None:
        server = tomlkit.table()
        server["command"] = executable
        server["args"] = ["mcp"]
        servers[SERVER_NAME] = server
        return [f"added MCP server {SERVER_NAME}"]
    if not isinstance(current, dict):
        raise ClientSettingsError(f"{path}: \"mcp_servers.{SERVER_NAME}\" must be a table; "
                                  "nothing was written", path=str(path))
    changed = False
    for key, value in (("command", executable), ("args", ["mcp"])):
        if current.get(key) != value:
            current[key] = value
            changed = True
    return [f"updated MCP server {SERVER_NAME}"] if changed else []


def _remove_server(document: Any, path: Path) -> list[str]:
    servers = _table(document, "mcp_servers", path, create=False)
    if servers is None or SERVER_NAME not in servers:
        return []
    del servers[SERVER_NAME]
    if not servers and isinstance(servers, Table) and servers.is_super_table():
        del document["mcp_servers"]
    return [f"removed MCP server {SERVER_NAME}"]


def _marked(item: Item) -> bool:
    return MARKER in item.trivia.comment
