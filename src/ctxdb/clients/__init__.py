"""What ctxdb knows about each agent client: where its settings live and what to put there.

``plan_install`` computes every file change of an install (or uninstall) without writing
anything, so that a malformed settings file stops it before any file is touched; the
command line then prints the diffs (``--dry-run``) or :func:`apply_changes` writes them.
The modules here only manipulate files: they need no database.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ctxdb.clients import claude_code, codex, gemini
from ctxdb.clients.files import FileChange, apply

SCOPES = ("project", "user")
EXECUTABLE_NAMES = ("ctxdb", "ctxdb.exe")


PlanFunction = Callable[[str, Path, Path, str, str, bool, str | None, bool],
                        list[FileChange]]


@dataclass(frozen=True)
class Client:
    name: str
    title: str
    plan: PlanFunction


CLIENTS: dict[str, Client] = {
    module.CLIENT: Client(module.CLIENT, module.TITLE, module.plan)
    for module in (claude_code, codex, gemini)
}


def plan_install(client: str, scope: str, root: Path, home: Path, executable: str,
                 uninstall: bool = False, mcp_url: str | None = None,
                 with_mcp: bool = True) -> list[FileChange]:
    """Every settings file of ``client`` in ``scope`` with its planned text; writes nothing.

    ``root`` is the project (repository) folder of the project scope, ``home`` the user's
    home folder of the user scope, ``executable`` how the client should start ctxdb;
    ``mcp_url``: the client reaches ctxdb's MCP server at that URL (``ctxdb serve``'s
    ``/mcp``) with the token of ``$CTXDB_TOKEN``, instead of starting ``ctxdb mcp``;
    ``with_mcp`` False: the hooks only, an MCP server entry already there left as it is.
    """
    hook_command = f"{shlex.quote(executable)} hook --client {client}"
    return CLIENTS[client].plan(scope, root, home, executable, hook_command, uninstall,
                                mcp_url, with_mcp)


def apply_changes(changes: Sequence[FileChange]) -> None:
    for change in changes:
        apply(change)


def project_root(start: Path) -> Path:
    """The repository holding ``start`` (the nearest folder with a ``.git`` entry), else itself.

    ``.git`` may be a folder (a clone) or a file (a worktree or submodule): either way that
    folder is where the client looks for its project settings.
    """
    start = start.absolute()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


@dataclass(frozen=True)
class CtxdbCommand:
    """How a client should start ctxdb, and whether that holds on another machine."""

    command: str
    portable: bool  # the bare name, found through the client's PATH wherever it runs


def ctxdb_command() -> CtxdbCommand:
    """The bare ``ctxdb`` when the ``ctxdb`` on PATH is this very program, else its path.

    Settings files of a project are usually committed: the bare name works in every clone
    and on every machine with ctxdb on its PATH, where an absolute path names a virtualenv
    of this machine. Both programs are compared through their symlinks, so a launcher such
    as ``~/.local/bin/ctxdb`` (pipx, uv tool) counts as this program. Otherwise the absolute
    path keeps the hooks working when the client runs outside the virtualenv; it is not
    resolved, so a launcher stays the one named.
    """
    running = running_program()
    found = shutil.which("ctxdb")
    if running is not None and found is not None and _same_file(running, found):
        return CtxdbCommand("ctxdb", portable=True)
    if running is not None:
        return CtxdbCommand(os.path.abspath(running), portable=False)
    return CtxdbCommand(os.path.abspath(found) if found else "ctxdb", portable=False)


def running_program() -> Path | None:
    """This ctxdb's program: the one that was run, else the one installed beside this Python
    (``python -m ctxdb``); None when there is neither."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if program is not None and program.name in EXECUTABLE_NAMES and program.is_file():
        return program
    scripts = Path(sysconfig.get_path("scripts"))
    for name in EXECUTABLE_NAMES:
        if (scripts / name).is_file():
            return scripts / name
    return None


def _same_file(first: Path, second: str) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False
