"""Backup and restore of a whole database (``ctxdb backup`` / ``ctxdb restore``).

Formats (see docs/backup.md):

- ``sqlite``: a SQLite file made with the online backup API from one consistent snapshot,
  while other processes go on writing; restorable into a SQLite database;
- ``pg_dump``: a ``pg_dump --format=custom`` archive of a PostgreSQL database; restorable
  into a PostgreSQL database with pg_restore and psql, in one transaction;
- ``bundle``: an export bundle (verified JSON Lines, docs/bundles.md) read from one snapshot;
  the PostgreSQL fallback when pg_dump is not on PATH, and restorable into either backend
  (the database's rows are replaced by the bundle's in one transaction).

Every backup is checked after it is written (integrity, schema version, rows per table),
fsynced with its directory, and accompanied by ``FILE.sha256``. A restore checks the backup
(checksum file when present, integrity, schema version) BEFORE it changes anything, refuses
to overwrite a database that holds data unless forced, and records an audit row.

Like :mod:`ctxdb.service.operations.schema`, these functions take the settings and connect
themselves: a backup or a restore must work on a database whose schema is behind (or absent), which
:meth:`ctxdb.service.Ctxdb.open` would refuse or upgrade. How each backend writes, reads and
restores its native format is ``storage.backups.Backups`` (one implementation per backend);
this module holds the rules: which format, what is checked and when, what may be replaced.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ctxdb.errors import (
    BackupInvalidError,
    BackupTargetExistsError,
    DatabaseNotEmptyError,
    OutputWriteError,
    StorageError,
    ValidationError,
)
from ctxdb.private_files import private_directory, private_file
from ctxdb.progress import NoProgress, Progress
from ctxdb.service.common import audit
from ctxdb.service.operations.schema import location
from ctxdb.settings import Settings
from ctxdb.storage import Tx, connect_storage
from ctxdb.storage.backups import (
    BackupContents,
    Backups,
    backups,
    fsync_directory,
    fsync_file,
    native_format_of,
)
from ctxdb.storage.tables import BOOKKEEPING_TABLES

__all__ = ["FORMATS", "Progress", "backup", "checksum_file", "restore", "sha256_of"]
FORMATS = ("auto", "sqlite", "pg_dump", "bundle")
CHECKSUM_SUFFIX = ".sha256"
_CHUNK = 1 << 20


# --- files -----------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_file(path: Path) -> Path:
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def _write_durably(path: Path, text: str) -> None:
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    scratch.write_text(text, "utf-8")
    fsync_file(scratch)
    os.replace(scratch, path)


@contextmanager
def _scratch_beside(target: Path) -> Iterator[Path]:
    """A temporary path in the target's directory (so that the final rename is atomic)."""
    # Ending in the target's name keeps its suffix (a bundle named *.gz is compressed).
    scratch = target.with_name(f".partial-{os.getpid()}-{secrets.token_hex(4)}.{target.name}")
    private_file(scratch)  # a backup holds every project: 0600 before anything is written
    try:
        yield scratch
    finally:
        for leftover in (scratch, Path(f"{scratch}-journal")):
            with suppress(FileNotFoundError):
                leftover.unlink()


def _publish(scratch: Path, target: Path) -> str:
    """fsync the finished backup, rename it into place, write its checksum, fsync the dir."""
    fsync_file(scratch)
    digest = sha256_of(scratch)
    os.replace(scratch, target)
    _write_durably(checksum_file(target), f"{digest}  {target.name}\n")
    fsync_directory(target.parent)
    return digest


def _backup_target(tools: Backups, file: str | Path, force: bool) -> Path:
    target = Path(file).expanduser().resolve()
    if target.is_dir():
        raise ValidationError(f"{target} is a directory; give the backup a file name",
                              file=str(target))
    if target in tools.protected_files():
        raise ValidationError(f"{target} is the live database (or one of its files); "
                              "back up to another file", file=str(target))
    if target.exists() and not force:
        raise BackupTargetExistsError(f"{target} already exists; pass --force to replace it",
                                      file=str(target))
    private_directory(target.parent)
    return target


# --- backup ----------------------------------------------------------------------------------


def backup(settings: Settings, file: str | Path, *, force: bool = False, fmt: str = "auto",
           progress: Progress | None = None) -> dict[str, Any]:
    """Write a checked, durable backup of the whole database to ``file``; returns a summary."""
    progress = progress or NoProgress()
    tools = backups(settings)
    fmt = _backup_format(tools, fmt)
    target = _backup_target(tools, file, force)
    started = time.monotonic()
    try:
        with _scratch_beside(target) as scratch:
            if fmt == tools.format:
                contents = tools.back_up(scratch, progress)
            else:
                contents = _bundle_backup(settings, scratch, progress)
            progress.start("writing to disk", None)
            digest = _publish(scratch, target)
    except OSError as exc:  # a full disk, a folder not writable: typed, not a bug
        raise OutputWriteError(f"cannot write the backup {target}: {exc.strerror or exc}",
                               path=str(target), reason=exc.strerror or str(exc)) from None
    tables = contents.tables
    return {
        "backend": tools.dialect.name,
        "location": location(settings),
        "file": str(target),
        "checksum_file": str(checksum_file(target)),
        "format": fmt,
        "bytes": target.stat().st_size,
        "sha256": digest,
        "schema_version": contents.schema_version,
        "integrity": contents.integrity,
        "rows": sum(n for name, n in tables.items() if name not in BOOKKEEPING_TABLES),
        "tables": tables,
        "elapsed_seconds": round(time.monotonic() - started, 3),
    }


def _backup_format(tools: Backups, fmt: str) -> str:
    """The format to write: the backend's native one, or the export bundle (asked for, or
    the fallback where the native tools are missing)."""
    if fmt not in FORMATS:
        raise ValidationError(f"backup format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "bundle":
        return fmt
    if fmt not in ("auto", tools.format):
        raise ValidationError(f"a {tools.title} database is backed up as '{tools.format}' or "
                              "'bundle'")
    if fmt == "auto" and not tools.available():
        return "bundle"  # a logical dump through the export bundle
    return tools.format


def _bundle_backup(settings: Settings, scratch: Path, progress: Progress) -> BackupContents:
    from ctxdb.service import Ctxdb

    with Ctxdb.open(settings) as db:
        exported = db.bundles.export(scratch, overwrite=True, progress=progress)
        manifest = db.bundles.verify(scratch, progress)
    return BackupContents(int(exported["schema_version"]), manifest.counts,
                          "ok" if manifest.sha256 == exported["sha256"] else "differs")


# --- restore ---------------------------------------------------------------------------------


def restore(settings: Settings, file: str | Path, *, force: bool = False,
            dry_run: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """Replace the database's content with the backup in ``file``, once the backup checks out.

    Refuses (``DatabaseNotEmptyError``) a database that holds data unless ``force``; with
    ``dry_run`` only checks and reports (``needs_force``: the restore would be refused).
    The live SQLite file is written through SQLite (the backup API), never replaced or
    deleted.
    """
    progress = progress or NoProgress()
    tools = backups(settings)
    source = Path(file).expanduser().resolve()
    started = time.monotonic()
    progress.start("checking the backup", None)
    checksum = _verify_checksum(source)
    fmt, contents = _inspect(tools, source)
    occupied = {t: n for t, n in tools.live_row_counts().items()
                if n and t not in BOOKKEEPING_TABLES}
    # A dry run reports what would be replaced instead of refusing: that is what it is for.
    if occupied and not force and not dry_run:
        raise DatabaseNotEmptyError(
            f"{location(settings)} holds data ({sum(occupied.values())} rows in "
            f"{len(occupied)} tables); pass --force to replace it with the backup",
            tables=occupied)
    result = {
        "backend": tools.dialect.name,
        "location": location(settings),
        "file": str(source),
        "format": fmt,
        "checksum": checksum,
        "schema_version": contents.schema_version,
        "tables": contents.tables,
        "replaced_rows": occupied,
        "needs_force": bool(occupied) and not force,
        "dry_run": dry_run,
    }
    if dry_run:
        return result
    if fmt == tools.format:
        tools.restore(source, progress)
    else:
        _restore_bundle(settings, source, progress)
    _check_restored_rows(tools, contents.tables)
    _record_restore(settings, result)
    result["elapsed_seconds"] = round(time.monotonic() - started, 3)
    return result


def _verify_checksum(source: Path) -> str:
    if not source.is_file():
        raise BackupInvalidError(f"there is no backup file at {source}", file=str(source))
    sidecar = checksum_file(source)
    if not sidecar.exists():
        return "absent"
    expected = sidecar.read_text("utf-8").split()[:1]
    actual = sha256_of(source)
    if expected != [actual]:
        raise BackupInvalidError(
            f"{source} does not match its checksum file {sidecar.name}: the backup is damaged "
            "or was changed", file=str(source), expected=(expected or [""])[0], actual=actual)
    return "verified"


def _inspect(tools: Backups, source: Path) -> tuple[str, BackupContents]:
    native = native_format_of(source)
    if native is not None:
        if native is not type(tools):
            raise BackupInvalidError(_cross_backend(native.described, tools.title),
                                     file=str(source))
        return tools.format, tools.inspect(source)
    if _looks_like_bundle(source):
        return "bundle", _inspect_bundle(tools, source)
    raise BackupInvalidError(f"{source} is neither a SQLite backup, a pg_dump archive nor an "
                             "export bundle", file=str(source))


def _looks_like_bundle(path: Path) -> bool:
    """JSON Lines (the header object first), or gzip; the full check is verify_bundle's."""
    with path.open("rb") as handle:
        start = handle.read(64)
    return start.startswith(b"\x1f\x8b") or start.lstrip().startswith(b"{")


def _inspect_bundle(tools: Backups, source: Path) -> BackupContents:
    from ctxdb.errors import BundleError
    from ctxdb.service.operations.bundle_format import verify_bundle

    try:
        manifest = verify_bundle(source, tools.latest_version)
    except BundleError as exc:
        raise BackupInvalidError(f"{source}: {exc.message}", file=str(source)) from exc
    if manifest.header.get("project_id"):
        raise BackupInvalidError(f"{source} is an export of one project, not of a database; "
                                 "import it with `ctxdb import bundle`", file=str(source))
    return BackupContents(int(manifest.header["schema_version"]), manifest.counts)


def _cross_backend(kind: str, backend: str) -> str:
    return (f"{kind} backup cannot be restored into a {backend} database; move data between "
            "backends with an export bundle or `ctxdb db copy`")


def _restore_bundle(settings: Settings, source: Path, progress: Progress) -> None:
    """Every data table emptied and the bundle's rows written, in one transaction."""
    from ctxdb.service import Ctxdb
    from ctxdb.service.operations.bundle_format import verify_bundle
    from ctxdb.service.operations.bundle_import import ImportOptions, import_records
    from ctxdb.storage.bulk import TableSql, delete_all
    from ctxdb.storage.tables import TABLES

    with Ctxdb.open(settings) as db:
        dialect = db.storage.dialect
        manifest = verify_bundle(source, db.migrator().latest_version)
        options = ImportOptions(write=True, replace=False, progress=progress)

        def unit(tx: Tx) -> None:
            for table in reversed(TABLES):  # children first
                delete_all(tx, TableSql(table, table.column_names, dialect))
            options.progress.start("import", manifest.records)
            import_records(tx, dialect, source, manifest, options)

        db.storage.write(unit)


def _check_restored_rows(tools: Backups, expected: dict[str, int]) -> None:
    """A last defence: the database now holds exactly the backup's rows per table."""
    found = {t: n for t, n in tools.live_row_counts().items() if t in expected}
    if found != expected:
        differ = sorted(t for t in set(found) | set(expected) if found.get(t) != expected.get(t))
        raise StorageError(f"the restored database differs from the backup in {differ}",
                           expected=expected, found=found)


def _record_restore(settings: Settings, result: dict[str, Any]) -> None:
    """The audit row of the restore, in the restored database, and the statistics of the
    rows that arrived (a restore brings none of its own)."""
    storage = connect_storage(settings)
    try:
        def unit(tx: Tx) -> None:
            audit(tx, settings.actor, "database.restore", "database", result["location"], None,
                  file=result["file"], format=result["format"],
                  schema_version=result["schema_version"], replaced_rows=result["replaced_rows"],
                  checksum=result["checksum"])

        storage.write(unit)
        storage.health().analyze_after_load()
    finally:
        storage.close()
