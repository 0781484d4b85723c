"""What ctxdb creates is private whatever the umask: folders 0700, files 0600 (issue 15).

Every project's context is in the database, its -wal and -shm files, backups, bundles and
the hook log; on a shared machine a 0755/0644 default would expose them all.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctxdb.hooks.logfile import log_failure
from ctxdb.service import Ctxdb
from ctxdb.service.operations import backup
from ctxdb.settings import Settings, load_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The usual 022 umask, which alone would make everything world-readable."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def sqlite_settings(path: Path) -> Settings:
    return load_settings(env={"HOME": str(path.parent)}, url=str(path), actor="user:test")


def test_a_new_sqlite_database_and_its_folder_are_private(tmp_path: Path) -> None:
    database = tmp_path / "data" / "ctxdb" / "ctxdb.db"
    with Ctxdb.open(sqlite_settings(database)) as db:
        db.projects.create("Shop")
        wal, shm = Path(f"{database}-wal"), Path(f"{database}-shm")
        assert wal.exists() and shm.exists()
        assert {mode(path) for path in (database, wal, shm)} == {0o600}
    assert mode(database.parent) == mode(database.parent.parent) == 0o700


def test_an_existing_folder_and_database_keep_their_modes(tmp_path: Path) -> None:
    """A folder the user chose (perhaps shared on purpose) is not changed silently."""
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    database = folder / "ctxdb.db"
    with Ctxdb.open(sqlite_settings(database)):
        pass
    assert mode(folder) == 0o755 and mode(database) == 0o600
    database.chmod(0o640)
    with Ctxdb.open(sqlite_settings(database)) as db:
        db.projects.create("Shop")
    assert mode(database) == 0o640


def test_a_backup_and_its_new_folder_are_private(db: Ctxdb, settings: Settings,
                                                  tmp_path: Path) -> None:
    db.projects.create("Shop")
    made = backup.backup(settings, tmp_path / "backups" / "ctxdb.backup")
    assert mode(Path(made["file"])) == 0o600
    assert mode(tmp_path / "backups") == 0o700


def test_a_bundle_is_private(db: Ctxdb, tmp_path: Path) -> None:
    db.projects.create("Shop")
    db.bundles.export(tmp_path / "all.ctxdb.jsonl")
    assert mode(tmp_path / "all.ctxdb.jsonl") == 0o600


def test_the_hook_log_and_its_state_folder_are_private(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTXDB_HOOK_LOG", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    log_failure("SessionStart", message="could not reach the database")
    log = tmp_path / "state" / "ctxdb" / "hook.log"
    assert "could not reach the database" in log.read_text(encoding="utf-8")
    assert mode(log) == 0o600
    assert mode(log.parent) == mode(log.parent.parent) == 0o700

