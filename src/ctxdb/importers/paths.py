"""Reading inside one folder only: nothing outside the import's root is ever opened.

A path is inside the root when its fully resolved form (every symlink followed, every ``..``
collapsed) lies under the root's resolved form. A candidate file or folder that resolves
outside raises :class:`UnsafePathError` before anything is read, so an import that meets one
writes nothing.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ctxdb.errors import ImportSourceError, UnsafePathError

# Folders an import never walks into: version control, dependencies, build output. Hidden
# folders are skipped too, except ``.claude`` (what the import is for).
SKIPPED_DIRS = frozenset({
    "node_modules", "__pycache__", "venv", "dist", "build", "target", "vendor",
    "site-packages",
})
MAX_FILE_BYTES = 1024 * 1024
BINARY_PROBE_BYTES = 8192
SYMLINK_LOOP = "a symlink loop"
_SPECIAL_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                  (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                  (stat.S_ISBLK, "a block device"))


def file_type_problem(path: Path) -> str | None:
    """Why ``path`` (symlinks followed) is not a regular file to read, or None.

    Checked before anything opens it: opening a FIFO named CLAUDE.md blocks until a writer
    comes, that is forever. A path that cannot be looked at for another reason (dangling
    symlink, permissions) is None here; reading it reports why.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return SYMLINK_LOOP if exc.errno == errno.ELOOP else None
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _SPECIAL_KINDS if test(mode)), "special")
    return f"not a regular file ({kind})"


def resolve_root(path: str) -> Path:
    """The import's root, resolved; a missing path is a typed error."""
    root = Path(path).expanduser()
    if not root.exists():
        raise ImportSourceError(f"no such file or folder: {path}", path=path)
    return root.resolve()


def relative(root: Path, path: Path) -> str:
    """``path`` (already checked to be inside) relative to the root, with ``/`` separators."""
    base = root if root.is_dir() else root.parent
    return path.relative_to(base).as_posix()


def check_inside(root: Path, path: Path, shown: str) -> Path:
    """The resolved ``path``, or :class:`UnsafePathError` when it lies outside ``root``."""
    base = root if root.is_dir() else root.parent
    resolved = path.resolve()
    if resolved != base and base not in resolved.parents:
        raise UnsafePathError(
            f"{shown} points outside the import folder (to {resolved}); refusing to import "
            "anything", path=shown, target=str(resolved))
    return resolved


def walk(root: Path) -> Iterator[Path]:
    """Every file under ``root`` an import may look at, in a stable order.

    Symlinks are checked, not trusted: one that resolves outside the root refuses the whole
    import; one that resolves inside is skipped (its target is walked under its own name).
    """
    if root.is_file():
        yield root
        return
    for directory, folders, files in os.walk(root):
        here = Path(directory)
        kept = []
        for name in sorted(folders):
            if name in SKIPPED_DIRS or (name.startswith(".") and name != ".claude"):
                continue
            folder = here / name
            if folder.is_symlink():
                check_inside(root, folder, relative(root, folder))
                continue
            kept.append(name)
        folders[:] = kept
        for name in sorted(files):
            yield here / name


def read_text(root: Path, path: Path) -> tuple[str | None, str | None]:
    """The file's text, or ``(None, reason)`` for a file an import skips (large, binary).

    Raises :class:`UnsafePathError` for a symlink that resolves outside the root.
    """
    shown = relative(root, path)
    resolved = check_inside(root, path, shown)
    problem = file_type_problem(resolved)
    if problem is not None:
        return None, problem
    try:
        size = resolved.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, f"larger than {MAX_FILE_BYTES} bytes ({size})"
        data = resolved.read_bytes()
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}"
    if b"\x00" in data[:BINARY_PROBE_BYTES]:
        return None, "binary file"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return None, "not UTF-8 text (binary?)"
