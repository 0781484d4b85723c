"""Settings files as text: planned changes, unified diffs, atomic writes, JSON in and out.

An installer first computes every :class:`FileChange` (the text before and after) without
touching the disk, so that ``--dry-run`` and a malformed file both leave everything as it was;
only then are the changes written, each one atomically.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctxdb.errors import ClientSettingsError

DEFAULT_JSON_INDENT = "  "
# The clients' own folders: one that a removal leaves empty goes too (ctxdb had created it).
CLIENT_FOLDERS = (".claude", ".codex", ".gemini")


@dataclass
class FileChange:
    """One settings file: its text before (None: absent) and after (None: to be removed)."""

    path: Path
    before: str | None
    after: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def action(self) -> str:
        if not self.changed:
            return "unchanged"
        if self.before is None:
            return "create"
        return "remove" if self.after is None else "update"

    def diff(self) -> str:
        """A unified diff of the change ('' when unchanged); /dev/null stands for no file."""
        old_name = str(self.path) if self.before is not None else "/dev/null"
        new_name = str(self.path) if self.after is not None else "/dev/null"
        lines = difflib.unified_diff(
            (self.before or "").splitlines(keepends=True),
            (self.after or "").splitlines(keepends=True),
            fromfile=old_name, tofile=new_name,
        )
        # A last line without its newline would run into the next header.
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                       for line in lines)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "action": self.action, "changes": self.notes}


def read_text(path: Path) -> str | None:
    """The file's text, or None when it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise ClientSettingsError(f"{path} is not UTF-8 text ({exc.reason}); nothing was "
                                  "written", path=str(path)) from None
    except IsADirectoryError:
        raise ClientSettingsError(f"{path} is a directory, not a settings file; nothing was "
                                  "written", path=str(path)) from None


def apply(change: FileChange) -> None:
    """Carry out one planned change on disk (nothing when it changes nothing)."""
    if not change.changed:
        return
    if change.path.is_symlink():
        # A settings file linked from a dotfiles repository: edit the file it points to and
        # keep the link (renaming over the link, or deleting it, would break the setup).
        empty = "{}\n" if change.path.suffix == ".json" else ""
        write_atomically(change.path.resolve(), empty if change.after is None else change.after)
        return
    if change.after is None:
        change.path.unlink(missing_ok=True)
        folder = change.path.parent
        if folder.name in CLIENT_FOLDERS and not any(folder.iterdir()):
            folder.rmdir()
    else:
        write_atomically(change.path, change.after)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old file or the new one whole.

    The temporary file lives in the same directory (``os.replace`` is atomic only within one
    file system) and is flushed to disk before it takes the file's place; an existing file's
    permission bits are kept, since ``~/.claude.json`` and friends may be private.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- JSON --------------------------------------------------------------------------------------


def load_json_object(path: Path, text: str | None, hint: str = "") -> dict[str, Any]:
    """The JSON object in ``text`` ({} for a missing or blank file), else a typed error."""
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClientSettingsError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            f"{hint}; fix it and rerun: nothing was written", path=str(path)) from None
    if not isinstance(data, dict):
        raise ClientSettingsError(f"{path} must hold a JSON object, not a "
                                  f"{type(data).__name__}; nothing was written", path=str(path))
    return data


def dump_json(data: dict[str, Any], original: str | None) -> str:
    """``data`` as JSON text, indented like the original file (two spaces by default).

    The original's final newline is kept as it was; a new file ends with one.
    """
    text = json.dumps(data, indent=_json_indent(original), ensure_ascii=False)
    ends_with_newline = original is None or not original.strip() or original.endswith("\n")
    return text + "\n" if ends_with_newline else text


def _json_indent(original: str | None) -> str:
    match = re.search(r"^([ \t]+)\S", original or "", re.MULTILINE)
    return match.group(1) if match else DEFAULT_JSON_INDENT


def trailing_newlines_like(text: str, original: str) -> str:
    """``text`` ending in as many newlines as ``original`` did (edits can leave blank lines)."""
    wanted = len(original) - len(original.rstrip("\n"))
    return text.rstrip("\n") + "\n" * wanted


def plan_json_edit(path: Path, edit: Callable[[dict[str, Any]], list[str]],
                   hint: str = "") -> FileChange:
    """Plan ``edit`` of the JSON object in ``path``: nothing is written here.

    The file keeps its exact text when the edit changes nothing (so a second install touches
    nothing), and a file that the edit empties (an uninstall of what an install created) is
    removed rather than left as ``{}``.
    """
    before = read_text(path)
    data = load_json_object(path, before, hint)
    original = copy.deepcopy(data)
    notes = edit(data)
    if data == original:
        return FileChange(path, before, before)
    after = dump_json(data, before) if data else None
    return FileChange(path, before, after, notes)
