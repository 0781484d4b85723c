"""Whether a client will run the ctxdb hooks it has installed: Codex's trust of each hook and
Gemini CLI's trust of the project folder, read from the files those clients write.

Codex (0.171) runs a hook only once the user has approved it in its ``/hooks`` review, which
writes ``[hooks.state."<key>"] trusted_hash = "sha256:…"`` into the user's
``$CODEX_HOME/config.toml``. The key is ``<hooks.json path>:<event in snake case>:<group
index>:<handler index>``; the hash is SHA-256 over the compact, key-sorted JSON of the hook's
normalized identity (the event, the group's matcher when it has one, and the one handler with
its type, command, timeout and async flag), so a hook whose command or timeout changed after
the review is "modified" and skipped again. ``enabled = false`` there turns a hook off.

Gemini CLI reads a project's ``.gemini/settings.json`` only in a trusted folder: the
environment's ``GEMINI_CLI_TRUST_WORKSPACE`` (``true``/``false``) decides first; then, unless
``security.folderTrust.enabled`` is false in the user's settings, the longest matching rule
of ``~/.gemini/trustedFolders.json`` (``TRUST_FOLDER``, ``TRUST_PARENT`` for the folder's
parent, ``DO_NOT_TRUST``), compared on real paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from ctxdb.clients import codex, gemini
from ctxdb.clients.files import read_text
from ctxdb.clients.merge import ours_for

TRUSTED, UNTRUSTED, MODIFIED, DISABLED = "trusted", "untrusted", "modified", "disabled"
CODEX_DEFAULT_TIMEOUT = 600  # seconds: what Codex runs a hook with when it names none
GEMINI_TRUSTING_RULES = {"TRUST_FOLDER", "TRUST_PARENT"}
_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


@dataclass(frozen=True)
class HookTrust:
    """One ctxdb hook of a Codex ``hooks.json`` and whether Codex will run it."""

    event: str
    key: str  # Codex's key of the hook in [hooks.state]
    status: str  # TRUSTED, UNTRUSTED, MODIFIED or DISABLED


def codex_hook_hash(event: str, group: Mapping[str, Any], handler: Mapping[str, Any]) -> str:
    """The hash Codex compares with a hook's ``trusted_hash``."""
    normalized: dict[str, Any] = {
        "type": "command",
        "command": handler.get("command"),
        "timeout": max(1, int(handler.get("timeout") or CODEX_DEFAULT_TIMEOUT)),
        "async": bool(handler.get("async", False)),
    }
    if handler.get("statusMessage") is not None:
        normalized["statusMessage"] = handler["statusMessage"]
    identity: dict[str, Any] = {"event_name": snake_case(event), "hooks": [normalized]}
    if group.get("matcher") is not None:
        identity["matcher"] = group["matcher"]
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def snake_case(event: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", event).lower()


def codex_hook_states(codex_home: Path) -> dict[str, Any]:
    """``[hooks.state]`` of the user's Codex config: hook key → its state table."""
    try:
        document = tomlkit.parse(read_text(codex_home / "config.toml") or "")
    except TOMLKitError:
        return {}
    hooks = document.get("hooks")
    states = hooks.get("state") if isinstance(hooks, dict) else None
    return {str(key): value for key, value in states.items() if isinstance(value, dict)} \
        if isinstance(states, dict) else {}


def codex_hooks_trust(hooks_path: Path, codex_home: Path) -> list[HookTrust]:
    """ctxdb's hooks in ``hooks_path`` (a Codex ``hooks.json``), each with its trust."""
    states = codex_hook_states(codex_home)
    found = []
    for event, group_index, group, handler_index, handler in _ctxdb_handlers(hooks_path):
        key = f"{hooks_path}:{snake_case(event)}:{group_index}:{handler_index}"
        state = states.get(key, {})
        trusted_hash = state.get("trusted_hash")
        if state.get("enabled") is False:
            status = DISABLED
        elif trusted_hash is None:
            status = UNTRUSTED
        elif trusted_hash == codex_hook_hash(event, group, handler):
            status = TRUSTED
        else:
            status = MODIFIED
        found.append(HookTrust(event, key, status))
    return found


def _ctxdb_handlers(hooks_path: Path) -> Iterator[tuple[str, int, dict[str, Any], int,
                                                         dict[str, Any]]]:
    try:
        data = json.loads(read_text(hooks_path) or "{}")
    except ValueError:
        return
    events = data.get("hooks") if isinstance(data, dict) else None
    if not isinstance(events, dict):
        return
    is_ours = ours_for(codex.CLIENT)
    for event, groups in events.items():
        for group_index, group in enumerate(groups if isinstance(groups, list) else []):
            handlers = group.get("hooks") if isinstance(group, dict) else None
            for handler_index, handler in enumerate(handlers or []):
                if isinstance(handler, dict) and is_ours(handler):
                    yield str(event), group_index, group, handler_index, handler


def gemini_project_hooks(root: Path) -> bool:
    """Whether ctxdb's hooks are in ``root``'s ``.gemini/settings.json``."""
    try:
        data = json.loads(read_text(gemini.settings_path("project", root, root)) or "{}")
    except ValueError:
        return False
    events = data.get("hooks") if isinstance(data, dict) else None
    is_ours = ours_for(gemini.CLIENT)
    return isinstance(events, dict) and any(
        isinstance(handler, dict) and is_ours(handler)
        for groups in events.values() if isinstance(groups, list)
        for group in groups if isinstance(group, dict)
        for handler in group.get("hooks") or [])


def gemini_folder_trusted(root: Path, home: Path, environ: Mapping[str, str]) -> bool:
    """Whether Gemini CLI trusts ``root`` (so reads its ``.gemini/settings.json``)."""
    setting = environ.get("GEMINI_CLI_TRUST_WORKSPACE")
    if setting in ("true", "false"):
        return setting == "true"
    if not _gemini_folder_trust_enabled(home):
        return True
    rules_path = Path(environ.get("GEMINI_CLI_TRUSTED_FOLDERS_PATH")
                      or home / ".gemini" / "trustedFolders.json")
    try:
        rules = json.loads(read_text(rules_path) or "{}")
    except ValueError:
        return False  # Gemini refuses to start on a broken file
    location = os.path.realpath(root)
    best: tuple[int, str] | None = None
    for rule_path, level in (rules.items() if isinstance(rules, dict) else []):
        folder = os.path.dirname(rule_path) if level == "TRUST_PARENT" else rule_path
        folder = os.path.realpath(folder)
        inside = location == folder or location.startswith(folder.rstrip(os.sep) + os.sep)
        if inside and (best is None or len(rule_path) > best[0]):
            best = (len(rule_path), str(level))
    return best is not None and best[1] in GEMINI_TRUSTING_RULES


def _gemini_folder_trust_enabled(home: Path) -> bool:
    try:
        settings = json.loads(read_text(home / ".gemini" / "settings.json") or "{}")
    except ValueError:
        return True
    security = settings.get("security") if isinstance(settings, dict) else None
    folder_trust = security.get("folderTrust") if isinstance(security, dict) else None
    enabled = folder_trust.get("enabled") if isinstance(folder_trust, dict) else None
    return enabled is not False
