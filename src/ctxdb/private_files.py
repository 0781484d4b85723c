"""Files and folders only their owner can read: every project's context is in them.

What ctxdb creates is private whatever the umask: folders 0700, files 0600 (the database,
and through it SQLite's -wal and -shm files, which SQLite gives the database's mode; backups;
bundles; the hook log). A folder or file that already exists keeps its mode: a folder the
user chose (``CTXDB_URL=sqlite:///srv/shared/ctxdb.db``) may be shared on purpose, and
ctxdb does not change it silently (docs/configuration.md).

Standard library only: the hook path imports it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def private_directory(path: Path) -> None:
    """Create ``path`` (and its missing parents) if needed; the folders created are 0700."""
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIRECTORY_MODE)
        except FileExistsError:  # created meanwhile by another process: theirs to set
            continue
        os.chmod(folder, DIRECTORY_MODE)  # mkdir's mode is masked by the umask


def private_file(path: Path) -> bool:
    """Create ``path`` empty and 0600 unless it exists; True when this call created it."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(descriptor, FILE_MODE)  # os.open's mode is masked by the umask
    finally:
        os.close(descriptor)
    return True
