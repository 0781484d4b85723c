"""Which repository a working directory belongs to, as one key for all its clones and
worktrees.

The key, in order of preference:

1. a committed marker file ``.ctxdb-project`` at the repository root: its first line that is
   not blank or a ``#`` comment (``marker:<that line>``) — the way to pin a project by hand;
2. ``git:<origin>@<root commit>``: the normalized ``origin`` remote (``host/owner/name``)
   and the first 12 digits of the repository's root commit; ``git:<root commit>`` when
   there is no origin. Worktrees share the repository, clones share the history and the
   remote, so all of them get the same key;
3. ``dir:<absolute path>`` outside git (or in a repository without commits).

Computing the root commit walks the history, so the key is cached in the repository's
common git directory (``ctxdb-repo-key``), which every worktree shares. Once it is (or with a
marker), the working tree, the common directory and the branch are read from git's files
(``.git``, ``gitdir:`` files of worktrees and submodules, ``commondir``, ``HEAD``, loose and
packed refs) rather than by running git on every event; any layout that reading does not
fully understand (git's environment variables, ``core.worktree`` or other settings that move
things, another owner, another file system on the way up, a branch name that git would
abbreviate otherwise, the reftable format) runs git as before.

The hooks (on every agent event) and the CLI (``ctxdb context``, ``ctxdb import``) both ask
it, so it sits beside the layers rather than in either front end; it imports only the
standard library (``re`` and ``domain.agents`` where they are needed, not on import), to keep
the hook path's start-up small: the remote hook's short path asks :func:`known_identity`.
"""

from __future__ import annotations

import os

from ctxdb.git_files import read_layout as _read_layout

TYPE_CHECKING = False  # typing's own import costs the remote hook's short path too much
if TYPE_CHECKING:
    from ctxdb.domain.agents import RepoIdentity

# (repo_key, name, worktree, branch): a RepoIdentity's fields
Fields = tuple[str, str, str, str | None]

MARKER_FILE = ".ctxdb-project"
CACHE_FILE = "ctxdb-repo-key"
GIT_TIMEOUT = 5.0
MAX_KEY_CHARS = 200
_SCP_LIKE = r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$"


def repo_identity(cwd: str) -> RepoIdentity:
    """The identity of the repository containing ``cwd`` (see the module docstring)."""
    from ctxdb.domain.agents import RepoIdentity

    directory = os.path.realpath(cwd)
    return repository_identity(directory) or RepoIdentity(
        _bounded("dir:" + directory), os.path.basename(directory) or "root", directory, None)


def repository_identity(cwd: str) -> RepoIdentity | None:
    """The identity of the git repository containing ``cwd``; None outside any."""
    from ctxdb.domain.agents import RepoIdentity

    directory = os.path.realpath(cwd)
    known = known_identity(directory)
    if known is not None:
        return RepoIdentity(*known)
    layout = git_layout(directory)
    if layout is None:
        return None
    toplevel, common, branch = layout
    key = _marker_key(toplevel) or _cached_key(common) or _computed_key(toplevel, common)
    return RepoIdentity(key, _name(common, toplevel), toplevel, branch)


def known_identity(cwd: str) -> Fields | None:
    """The fields of the identity of the git repository containing ``cwd``, when git's and
    ctxdb's files say it all (the key pinned or cached, a layout ``ctxdb.git_files`` reads);
    None when git must be run (:func:`repository_identity` runs it)."""
    directory = os.path.realpath(cwd)
    read = _read_layout(directory)
    if read is None:
        return None
    toplevel, common, branch = read
    key = _marker_key(toplevel) or _cached_key(common)
    # else git computes it (and caches it for the next event)
    return (key, _name(common, toplevel), toplevel, branch) if key else None


def git_layout(directory: str) -> tuple[str, str, str | None] | None:
    """``(toplevel, common git directory, branch or None)`` as git says (None: no
    repository); ``ctxdb.git_files`` reads the same from the files when it can."""
    lines = _git(directory, "rev-parse", "--show-toplevel", "--git-common-dir",
                 "--abbrev-ref", "HEAD")
    if lines is None or len(lines) < 2:
        lines = _git(directory, "rev-parse", "--show-toplevel", "--git-common-dir")
        if lines is None or len(lines) < 2:
            return None
        lines.append("")  # a repository without commits has no HEAD to name
    branch = lines[2] if len(lines) > 2 and lines[2] not in ("", "HEAD") else None
    return lines[0], os.path.realpath(os.path.join(directory, lines[1])), branch


def _name(common: str, toplevel: str) -> str:
    """The common git directory's folder for a ``.git`` (a clone and its worktrees share
    it), else the working tree's; paths as made by realpath (no trailing separator)."""
    name = os.path.basename(os.path.dirname(common)) if os.path.basename(common) == ".git" \
        else os.path.basename(toplevel)
    return name or "repository"


def normalize_remote(url: str) -> str:
    """``git@github.com:Acme/Shop.git`` and ``https://u@github.com/Acme/Shop`` both give
    ``github.com/acme/shop``."""
    import re  # here: only computing a key (once per repository) reads a remote

    url = url.strip()
    match = re.match(_SCP_LIKE, url)
    if match and "://" not in url:
        host, path = match.group(1), match.group(2)
    else:
        rest = url.split("://", 1)[-1]
        host, _, path = rest.partition("/")
        host = host.rsplit("@", 1)[-1].split(":", 1)[0]
    path = path.strip("/").removesuffix(".git").strip("/")
    return f"{host}/{path}".lower() if host else path.lower()


def _marker_key(toplevel: str) -> str | None:
    try:
        text = _read_text(os.path.join(toplevel, MARKER_FILE))
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return _bounded("marker:" + line)
    return None


def _cached_key(common: str) -> str | None:
    try:
        key = _read_text(os.path.join(common, CACHE_FILE)).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return key or None


def _computed_key(toplevel: str, common: str) -> str:
    roots = _git(toplevel, "rev-list", "--max-parents=0", "HEAD")
    if not roots:
        return _bounded("dir:" + toplevel)  # no commits yet: nothing stable to name
    root = sorted(roots)[0]
    origin = _git(toplevel, "config", "--get", "remote.origin.url")
    key = _bounded(f"git:{normalize_remote(origin[0])}@{root[:12]}" if origin
                   else f"git:{root}")
    try:
        with open(os.path.join(common, CACHE_FILE), "w", encoding="utf-8") as cache:
            cache.write(key + "\n")
    except OSError:  # a read-only repository: computed again next time
        pass
    return key


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _bounded(key: str) -> str:
    if len(key) <= MAX_KEY_CHARS:
        return key
    import hashlib  # rarely needed: only for very long keys

    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return key[: MAX_KEY_CHARS - 18] + "~" + digest


def _git(cwd: str, *args: str) -> list[str] | None:
    """The output lines of a git command, or None if git is missing or the command fails."""
    import subprocess  # here: reading git's files (git_files) usually spares the call

    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return [line for line in done.stdout.splitlines() if line.strip()]
