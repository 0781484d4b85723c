"""Codex CLI: Claude-style hooks in ``hooks.json``; MCP (and a feature switch) in ``config.toml``.

Codex runs hooks from ``hooks.json``. They are on by default from Codex 0.171 (``codex features
list``: ``hooks stable true``), where the old ``[features] codex_hooks`` switch only prints a
deprecation warning; so ctxdb reads ``codex --version`` and sets ``[features] hooks = true``
only for an older Codex, and takes out a ``codex_hooks`` line an earlier ctxdb had added.
Events: SessionStart, UserPromptSubmit, PreCompact, PostCompact and Stop; Codex versions that
do not know an event name ignore it. Codex has no background hooks, so Stop gets a moderate
timeout instead of ``async``.

Codex starts MCP servers with a reduced environment (HOME, PATH, LANG, ...): the server entry
lists ``CTXDB_URL`` and ``CTXDB_CONFIG`` in ``env_vars`` so that ``ctxdb mcp`` opens the
database the hooks use.

Codex ignores a repository's ``.codex/`` folder until the project is trusted, and skips each
hook silently until that hook is trusted (its ``/hooks`` review, tied to a hash of the hook's
command). ``trust_plan`` writes the project's trust into the user's Codex config when asked
(``ctxdb install codex --trust``); the hooks' own trust is Codex's review to give.

``config.toml`` is edited with tomlkit, which keeps the user's comments and layout. A switch
(and a ``[features]`` table) that ctxdb adds carries a marker comment, so that ``--uninstall``
removes it only when ctxdb set it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import Item, Table

from ctxdb.clients.files import FileChange, plan_json_edit, read_text, trailing_newlines_like
from ctxdb.clients.merge import (
    SERVER_NAME,
    TOKEN_ENV_VAR,
    HookSpec,
    install_hooks,
    ours_for,
    uninstall_hooks,
)
from ctxdb.errors import ClientSettingsError

CLIENT = "codex"
TITLE = "Codex CLI"
FEATURE = "hooks"
OLD_FEATURE = "codex_hooks"  # deprecated in Codex 0.171 in favour of FEATURE
MARKER = "added by ctxdb install"
# The first Codex version known to run hooks without a switch.
HOOKS_ON_BY_DEFAULT = (0, 171, 0)
# Variables Codex must pass to ``ctxdb mcp`` so that it opens the hooks' database.
MCP_ENV_VARS = ["CTXDB_URL", "CTXDB_CONFIG"]
CODEX_TRANSPORT_KEYS = ("command", "args", "env_vars", "url", "bearer_token_env_var")
VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")

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
    """(hooks.json, config.toml) of ``scope``: the user's are where Codex reads them,
    ``$CODEX_HOME`` (default ``~/.codex``)."""
    folder = codex_home(home) if scope == "user" else root / ".codex"
    return folder / "hooks.json", folder / "config.toml"


def installed_version() -> tuple[int, int, int] | None:
    """The version of the ``codex`` on PATH (``codex --version``), or None if none answers."""
    program = shutil.which("codex")
    if program is None:
        return None
    try:
        done = subprocess.run([program, "--version"], capture_output=True, text=True,
                              timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    found = VERSION.search(done.stdout)
    return None if found is None else (int(found[1]), int(found[2]), int(found[3]))


def needs_feature_switch(version: tuple[int, int, int] | None) -> bool:
    """Whether hooks must be switched on: only for a Codex known to be older than 0.171."""
    return version is not None and version < HOOKS_ON_BY_DEFAULT


def plan(scope: str, root: Path, home: Path, executable: str, hook_command: str,
         uninstall: bool, mcp_url: str | None = None,
         with_mcp: bool = True) -> list[FileChange]:
    hooks_path, config_path = settings_paths(scope, root, home)
    is_ours = ours_for(CLIENT)
    if uninstall:
        hooks_change = plan_json_edit(hooks_path, lambda data: uninstall_hooks(data, is_ours))
        return [hooks_change, plan_config(config_path, install=False)]
    specs = hook_specs(hook_command)
    hooks_change = plan_json_edit(
        hooks_path, lambda data: install_hooks(data, specs, is_ours, hooks_path))
    switch = needs_feature_switch(installed_version())
    entry = server_entry(executable, mcp_url) if with_mcp else None
    return [hooks_change, plan_config(config_path, install=True, entry=entry, switch=switch)]


def server_entry(executable: str, mcp_url: str | None) -> dict[str, Any]:
    """``[mcp_servers.ctxdb]``: ``ctxdb mcp`` as a process, or the server's ``/mcp`` with the
    token read from ``CTXDB_TOKEN`` (Codex refuses a token written in the file)."""
    if mcp_url is not None:
        return {"url": mcp_url, "bearer_token_env_var": TOKEN_ENV_VAR}
    return {"command": executable, "args": ["mcp"], "env_vars": MCP_ENV_VARS}


def codex_home(home: Path) -> Path:
    """Where Codex keeps the user's configuration: ``$CODEX_HOME``, else ``~/.codex``."""
    configured = os.environ.get("CODEX_HOME")
    return Path(configured) if configured else home / ".codex"


def trust_plan(root: Path, home: Path) -> FileChange:
    """``[projects."<root>"] trust_level = "trusted"`` in the user's Codex config, so that
    Codex reads the repository's ``.codex/`` folder (what its own trust prompt writes)."""
    path = codex_home(home) / "config.toml"
    before = read_text(path) or ""
    document = _parse(before, path)
    projects = _table(document, "projects", path, create=True)
    key = str(root)
    current = projects.get(key)
    if current is not None and not isinstance(current, dict):
        raise ClientSettingsError(f'{path}: "projects.{key}" must be a table; nothing was '
                                  "written", path=str(path))
    if current is not None and current.get("trust_level") == "trusted":
        return FileChange(path, before if path.exists() else None,
                          before if path.exists() else None)
    if current is None:
        current = tomlkit.table()
        projects[key] = current
    current["trust_level"] = "trusted"
    return FileChange(path, before if path.exists() else None, document.as_string(),
                      [f"trusted project {key} (trust_level = \"trusted\")"])


def is_project_trusted(root: Path, home: Path) -> bool:
    """Whether the user's Codex config trusts ``root`` (or a folder holding it)."""
    path = codex_home(home) / "config.toml"
    try:
        document = tomlkit.parse(read_text(path) or "")
    except TOMLKitError:
        return False
    projects = document.get("projects")
    if not isinstance(projects, dict):
        return False
    trusted = {Path(key) for key, value in projects.items()
               if isinstance(value, dict) and value.get("trust_level") == "trusted"}
    return any(folder in trusted for folder in (root, *root.parents))


def untrusted_project_hooks(root: Path, home: Path) -> bool:
    """Whether ctxdb's hooks are in ``root``'s ``.codex/hooks.json`` while the user's Codex
    config does not trust the project (so Codex ignores them)."""
    hooks_path, _ = settings_paths("project", root, home)
    try:
        data = json.loads(read_text(hooks_path) or "{}")
    except ValueError:
        return False
    groups = data.get("hooks") if isinstance(data, dict) else None
    is_ours = ours_for(CLIENT)
    installed = isinstance(groups, dict) and any(
        isinstance(entry, dict) and is_ours(entry)
        for event in groups.values() if isinstance(event, list)
        for group in event if isinstance(group, dict)
        for entry in group.get("hooks") or [])
    return installed and not is_project_trusted(root, home)


def trust_steps(scope: str, root: Path, home: Path, trusted_now: bool) -> list[str]:
    """What the user must still do before Codex runs ctxdb's hooks."""
    steps = []
    if scope == "project" and not (trusted_now or is_project_trusted(root, home)):
        steps.append(f"Codex ignores {root / '.codex'} until you trust the project: answer "
                     "yes when Codex asks, or run 'ctxdb install codex --trust'.")
    steps.append("Codex skips each new or changed hook silently until you trust it: start "
                 "'codex' here and approve ctxdb's hooks in its /hooks review (needed again "
                 "after an install that changes the hook command).")
    return steps


def _parse(text: str, path: Path) -> Any:
    try:
        return tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ClientSettingsError(f"{path} is not valid TOML ({exc}); fix it and rerun: "
                                  "nothing was written", path=str(path)) from None


def plan_config(path: Path, install: bool, entry: dict[str, Any] | None = None,
                switch: bool = False) -> FileChange:
    """Install or uninstall ctxdb's part of ``config.toml``: the server ``entry`` (None: the
    server is left as it is, ``--no-mcp``); ``switch``: set ``[features] hooks = true`` (a
    Codex older than 0.171)."""
    before = read_text(path) or ""
    document = _parse(before, path)
    if not install:
        notes = (_disable_feature(document, path, FEATURE)
                 + _disable_feature(document, path, OLD_FEATURE)
                 + _remove_server(document, path))
    else:
        notes = _disable_feature(document, path, OLD_FEATURE)
        notes += (_enable_feature(document, path) if switch
                  else _disable_feature(document, path, FEATURE))
        notes += _add_server(document, entry, path) if entry is not None else []
    existed = path.exists()
    if not notes:
        text = before if existed else None
        return FileChange(path, text, text)
    text = document.as_string()
    after: str | None = text
    if not install:
        # Removing a table leaves the blank line that separated it; an emptied file goes.
        after = trailing_newlines_like(text, before) if text.strip() else None
    return FileChange(path, before if existed else None, after, notes)


def _table(document: Any, key: str, path: Path, create: bool) -> Any:
    table = document.get(key)
    if table is None and create:
        table = tomlkit.table(is_super_table=key in ("mcp_servers", "projects"))
        if key == "features":
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


def _disable_feature(document: Any, path: Path, name: str) -> list[str]:
    features = _table(document, "features", path, create=False)
    if not isinstance(features, Table) or name not in features:
        return []
    flag = features.item(name)
    if not isinstance(flag, Item) or not _marked(flag):
        return []
    del features[name]
    if not features and _marked(features):
        del document["features"]
    return [f"removed [features] {name} (ctxdb had set it)"]


def _add_server(document: Any, entry: dict[str, Any], path: Path) -> list[str]:
    servers = _table(document, "mcp_servers", path, create=True)
    current = servers.get(SERVER_NAME)
    if current is None:
        server = tomlkit.table()
        for key, value in entry.items():
            server[key] = value
        servers[SERVER_NAME] = server
        return [f"added MCP server {SERVER_NAME}"]
    if not isinstance(current, dict):
        raise ClientSettingsError(f"{path}: \"mcp_servers.{SERVER_NAME}\" must be a table; "
                                  "nothing was written", path=str(path))
    # The keys of the other transport go (a process's or a URL's); the user's others stay.
    stale = [key for key in CODEX_TRANSPORT_KEYS if key in current and key not in entry]
    for key in stale:
        del current[key]
    changed = bool(stale)
    for key, value in entry.items():
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
