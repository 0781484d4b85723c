"""Merging ctxdb's hooks and MCP server into a client's settings, and taking them out again.

All three clients nest hooks the same way::

    {"hooks": {"<Event>": [{"matcher"?: "…", "hooks": [{"type": "command", "command": "…"}]}]}}

ctxdb's own hook entries are recognized by their command, ``… ctxdb hook --client <client>``
(whatever the path to ``ctxdb`` or its quoting), so nothing needs to be stored beside them and
every other entry is the user's. Installing updates ctxdb's entry where it already is (a new
path or timeout), removes duplicates of it, and appends a group of its own only when there
is none; uninstalling removes ctxdb's entries, the groups they leave empty, and the event
lists or objects that become empty by that removal (never one that was empty already).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctxdb.errors import ClientSettingsError
from ctxdb.hook_entries import IsOurs, remove_entries
from ctxdb.hook_entries import uninstall_hooks as uninstall_hooks  # the clients' own word

HOOK_KEYS_MANAGED = ("type", "command", "timeout", "async")
SERVER_NAME = "ctxdb"
# How a client reaches an MCP server (a process, or a URL): what changes when ctxdb's server
# entry moves from one transport to the other, while any other key the user added stays.
TRANSPORT_KEYS = ("type", "command", "args", "url", "httpUrl", "headers")
# The environment variable a client reads ctxdb's token from (never written in clear).
TOKEN_ENV_VAR = "CTXDB_TOKEN"



@dataclass(frozen=True)
class HookSpec:
    """The entry ctxdb wants under one event."""

    event: str
    entry: Mapping[str, Any]


def hook_command_pattern(client: str) -> re.Pattern[str]:
    """Matches ``ctxdb hook --client <client>`` in a command, whatever the path and quotes."""
    return re.compile(
        r"(?:^|[\s/\\'\"])ctxdb(?:\.exe)?['\"]?\s+hook\s+--client(?:\s+|=)['\"]?"
        + re.escape(client) + r"(?=['\"\s]|$)")


def ours_for(client: str) -> IsOurs:
    pattern = hook_command_pattern(client)

    def is_ours(entry: Mapping[str, Any]) -> bool:
        command = entry.get("command")
        return isinstance(command, str) and pattern.search(command) is not None

    return is_ours


# --- hooks -------------------------------------------------------------------------------------


def install_hooks(settings: dict[str, Any], specs: Sequence[HookSpec], is_ours: IsOurs,
                  path: Path) -> list[str]:
    """Merge ``specs`` into ``settings["hooks"]``; return what changed, for people."""
    hooks = _child_object(settings, "hooks", path, create=True)
    notes: list[str] = []
    for spec in specs:
        groups = _event_groups(hooks, spec.event, path, create=True)
        found = [(group, entry) for group in groups
                 for entry in _group_hooks(group, spec.event, path) if is_ours(entry)]
        if not found:
            groups.append({"hooks": [dict(spec.entry)]})
            notes.append(f"added hook {spec.event}")
            continue
        first = found[0][1]
        if _update_entry(first, spec.entry):
            notes.append(f"updated hook {spec.event}")
        if len(found) > 1:
            remove_entries(hooks, spec.event, _duplicate_of(first, is_ours))
            notes.append(f"removed {len(found) - 1} duplicate hook(s) {spec.event}")
    # An event that an earlier ctxdb installed but this one does not (renamed or dropped).
    wanted = {spec.event for spec in specs}
    for event in [name for name in hooks if name not in wanted]:
        if remove_entries(hooks, event, is_ours):
            notes.append(f"removed outdated hook {event}")
    return notes


def _duplicate_of(kept: Mapping[str, Any], is_ours: IsOurs) -> IsOurs:
    return lambda entry: is_ours(entry) and entry is not kept


def _update_entry(entry: dict[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Make ctxdb's existing entry what ``wanted`` says, keeping keys ctxdb does not manage."""
    before = dict(entry)
    for key in HOOK_KEYS_MANAGED:
        if key not in wanted:
            entry.pop(key, None)
    entry.update(wanted)
    return entry != before


def _child_object(parent: dict[str, Any], key: str, path: Path, create: bool) -> dict[str, Any]:
    value = parent.get(key)
    if value is None and create:
        value = parent[key] = {}
    if not isinstance(value, dict):
        raise ClientSettingsError(f"{path}: \"{key}\" must be a JSON object, not "
                                  f"{_kind(value)}; nothing was written", path=str(path))
    return value


def _event_groups(hooks: dict[str, Any], event: str, path: Path,
                  create: bool) -> list[Any]:
    groups = hooks.get(event)
    if groups is None and create:
        groups = hooks[event] = []
    if not isinstance(groups, list):
        raise ClientSettingsError(f"{path}: \"hooks.{event}\" must be a JSON array of hook "
                                  f"groups, not {_kind(groups)}; nothing was written",
                                  path=str(path))
    return groups


def _group_hooks(group: Any, event: str, path: Path) -> list[dict[str, Any]]:
    entries = group.get("hooks") if isinstance(group, dict) else None
    if not isinstance(entries, list):
        raise ClientSettingsError(f"{path}: every group in \"hooks.{event}\" must be an object "
                                  "with a \"hooks\" array; nothing was written", path=str(path))
    return [entry for entry in entries if isinstance(entry, dict)]


def _kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), "an object")


# --- MCP servers -------------------------------------------------------------------------------


def install_server(settings: dict[str, Any], spec: Mapping[str, Any], path: Path) -> list[str]:
    """Add or update ``mcpServers.ctxdb``, keeping keys the user added to it (e.g. ``env``)."""
    servers = _child_object(settings, "mcpServers", path, create=True)
    current = servers.get(SERVER_NAME)
    if not isinstance(current, dict):
        servers[SERVER_NAME] = dict(spec)
        return [f"added MCP server {SERVER_NAME}"]
    before = dict(current)
    for key in TRANSPORT_KEYS:
        if key not in spec:
            current.pop(key, None)
    current.update(spec)
    return [f"updated MCP server {SERVER_NAME}"] if current != before else []


def bearer_header() -> dict[str, str]:
    """The Authorization header of a URL-based server, naming the token's variable: the
    client expands ``${CTXDB_TOKEN}`` from its environment when it connects."""
    return {"Authorization": f"Bearer ${{{TOKEN_ENV_VAR}}}"}


def uninstall_server(settings: dict[str, Any]) -> list[str]:
    servers = settings.get("mcpServers")
    if not isinstance(servers, dict) or SERVER_NAME not in servers:
        return []
    del servers[SERVER_NAME]
    if not servers:
        del settings["mcpServers"]
    return [f"removed MCP server {SERVER_NAME}"]
