"""What ``git rev-parse --show-toplevel --git-common-dir --abbrev-ref HEAD`` prints, read from
git's own files: the hooks ask it on most agent events, and running git costs a process more
than the rest of a remote hook's work.

Only the layouts this reading fully understands are answered: a working tree whose ``.git``
is a directory (a clone) or a ``gitdir:`` file (a linked worktree, with ``commondir``), found
by walking up from the directory as git does. Anything else gives None and the caller runs
git: git's environment variables that move the repository, a ``.git`` that is a symbolic
link, a directory on the way that is itself a git directory (a bare repository), another
file system on the way up, a repository or working tree of another owner (git's
``safe.directory`` decides those), a configuration that sets ``core.worktree``, ``bare``, an
include or the reftable format, a ``HEAD`` that is neither a branch nor a commit, and a
branch whose short name git would write otherwise (a tag or remote of the same name).

Standard library only (``os``, ``stat``): it is on the hook path, the remote one's short path
too, which cannot afford ``re`` (with ``enum`` behind it) on every prompt; so the files are
read by hand, and ``re`` is imported only for a configuration that is not plain ASCII.
"""

from __future__ import annotations

import os
import stat

# Variables with which git finds or moves the repository, or takes configuration from the
# environment: with any of them set, git decides.
MOVING_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_CEILING_DIRECTORIES",
                    "GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_CONFIG_PARAMETERS",
                    "GIT_CONFIG_COUNT", "GIT_NAMESPACE")
_HEX_DIGITS = frozenset("0123456789abcdef")
# Configuration that moves the working tree or the refs, or pulls in other files: what
# _unusual_config finds by hand in ASCII text, and with this pattern in any other.
UNUSUAL_CONFIG = r"worktree|\bbare\s*=\s*true|refstorage|\[\s*include"

Layout = tuple[str, str, str | None]


def read_layout(directory: str) -> Layout | None:
    """``(toplevel, common git directory, branch or None)`` of the repository holding
    ``directory`` (a real path), as git would say; None when git must be asked."""
    if any(name in os.environ for name in MOVING_VARIABLES):
        return None
    if f"{os.sep}.git{os.sep}" in directory + os.sep:
        return None  # inside a git directory: not a working tree
    try:
        device = os.stat(directory).st_dev
        current = directory
        while True:
            dot_git = os.path.join(current, ".git")
            if os.path.lexists(dot_git):
                return _layout(current, dot_git)
            if os.path.lexists(os.path.join(current, "HEAD")):
                return None  # perhaps a bare repository: git knows
            parent = os.path.dirname(current)
            if parent == current or os.stat(parent).st_dev != device:
                return None  # no repository, or git would stop at the file system's edge
            current = parent
    except (OSError, ValueError):
        return None


def _layout(toplevel: str, dot_git: str) -> Layout | None:
    mode = os.lstat(dot_git).st_mode
    if stat.S_ISDIR(mode):
        git_dir = dot_git
    elif stat.S_ISREG(mode):
        text = _read(dot_git)
        if not text.startswith("gitdir: "):
            return None
        git_dir = os.path.realpath(os.path.join(toplevel, text[len("gitdir: "):].strip()))
    else:
        return None
    common = git_dir
    if os.path.lexists(os.path.join(git_dir, "commondir")):
        relative = _read(os.path.join(git_dir, "commondir")).strip()
        common = os.path.realpath(os.path.join(git_dir, relative))
    if not (os.path.isfile(os.path.join(git_dir, "HEAD"))
            and os.path.isdir(os.path.join(common, "objects"))
            and os.path.isdir(os.path.join(common, "refs"))):
        return None  # not a valid git directory: git would look further up
    owner = os.geteuid()
    if any(os.stat(path).st_uid != owner for path in (toplevel, git_dir, common)):
        return None
    if _unusual_config(_read(os.path.join(common, "config"))):
        return None
    head = _read(os.path.join(git_dir, "HEAD")).strip()
    if _object_name(head):
        return toplevel, common, None  # detached: git names no branch
    if not head.startswith("ref: refs/heads/"):
        return None
    return _with_branch(toplevel, git_dir, common, head[len("ref: refs/heads/"):])


def _with_branch(toplevel: str, git_dir: str, common: str, branch: str) -> Layout | None:
    packed = _packed_refs(common)
    if not (os.path.isfile(os.path.join(common, "refs", "heads", branch))
            or f"refs/heads/{branch}" in packed):
        return toplevel, common, None  # no commit on it yet: git names no branch
    # git --abbrev-ref writes "heads/<branch>" when the short name could mean another ref.
    others = (branch, f"refs/{branch}", f"refs/tags/{branch}", f"refs/remotes/{branch}",
              f"refs/remotes/{branch}/HEAD")
    if any(name in packed or os.path.lexists(os.path.join(folder, name))
           for name in others for folder in (git_dir, common)):
        return None
    return toplevel, common, branch


def _object_name(text: str) -> bool:
    """Whether ``text`` is a full object name (SHA-1 or SHA-256, lower-case hex)."""
    return len(text) in (40, 64) and _HEX_DIGITS.issuperset(text)


def _unusual_config(text: str) -> bool:
    """Whether the configuration matches :data:`UNUSUAL_CONFIG`, ignoring case."""
    if not text.isascii():  # Unicode case folding and spaces: the pattern decides
        import re

        return re.search(UNUSUAL_CONFIG, text, re.IGNORECASE) is not None
    lowered = text.lower()
    return ("worktree" in lowered or "refstorage" in lowered
            or _found(lowered, "[", ("include",)) or _found(lowered, "bare", ("=", "true")))


def _found(text: str, start: str, then: tuple[str, ...]) -> bool:
    """Whether ``start`` occurs in ``text`` (a word start when it is a word), followed by each
    of ``then`` in turn, with any whitespace before each."""
    at = text.find(start)
    while at >= 0:
        before = text[at - 1] if at else " "
        if not start.isalpha() or not (before.isalnum() or before == "_"):
            position = at + len(start)
            for word in then:
                while position < len(text) and text[position].isspace():
                    position += 1
                if not text.startswith(word, position):
                    break
                position += len(word)
            else:
                return True
        at = text.find(start, at + 1)
    return False


def _packed_refs(common: str) -> set[str]:
    try:
        text = _read(os.path.join(common, "packed-refs"))
    except FileNotFoundError:
        return set()
    return {line.split(" ", 1)[1] for line in text.splitlines()
            if " " in line and not line.startswith(("#", "^"))}


def _read(path: str) -> str:
    """The file's text (raises OSError; undecodable bytes make it unusual, not an error)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()
