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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ctxdb.clients import claude_code, codex, gemini
from ctxdb.clients.files import FileChange, apply

SCOPES = ("project", "user")
EXECUTABLE_NAMES = ("ctxdb", "ctxdb.exe")


PlanFunction = Callable[[str, Path, Path, str, str, bool, str | None], list[FileChange]]


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
                 uninstall: bool = False, mcp_url: str | None = None) -> list[FileChange]:
    """Every settings file of ``client`` in ``scope`` with its planned text; writes nothing.

    ``root`` is the project (repository) folder of the project scope, ``home`` the user's
    home folder of the user scope, ``executable`` how the client should start ctxdb;
    ``mcp_url``: the client reaches ctxdb's MCP server at that URL (``ctxdb serve``'s
    ``/mcp``) with the token of ``$CTXDB_TOKEN``, instead of starting ``ctxdb mcp``.
    """
    hook_command = f"{shlex.quote(executable)} hook --client {client}"
    return CLIENTS[client].plan(scope, root, home, executable, hook_command, uninstall,
                                mcp_url)


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


def ctxdb_executable() -> str:
    """How a client should start ctxdb: this ``ctxdb`` program's absolute path when known.

    An absolute path keeps hooks working when the client runs outside the virtualenv (or
    without its ``bin`` on PATH) that ctxdb was installed into. The path is not resolved
    through symlinks, so a launcher such as ``~/.local/bin/ctxdb`` stays the one named.
    Failing both this program and PATH, the bare name ``ctxdb`` is used.
    """
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if program is not None and program.name in EXECUTABLE_NAMES and program.is_file():
        return os.path.abspath(program)
    found = shutil.which("ctxdb")
    return os.path.abspath(found) if found else "ctxdb"
