"""Bundles: a whole database (or one project) exported to a verified JSON Lines file, and
imported back into any database, SQLite or PostgreSQL (see docs/bundles.md).

Export reads one consistent snapshot (a long export of a database in use sees every table as
of one moment) and writes to a temporary file renamed into place at the end, so a failed
export leaves no partial bundle. Import verifies the whole file first (``bundle_format``),
then writes every record in one transaction: a bundle is imported completely or not at all.

Neither writes an audit row of its own: an import reproduces the source's rows, its audit log
included, and a row about the import itself would make the copy differ from its source (a
round trip would no longer give back the same records).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ctxdb import __version__
from ctxdb.domain.validation import check_identifier
from ctxdb.errors import (
    ConflictError,
    ImportConflictError,
    OutputWriteError,
    ValidationError,
)
from ctxdb.progress import NoProgress, Progress
from ctxdb.service.common import Service
from ctxdb.service.operations.bundle_format import (
    FORMAT,
    FORMAT_VERSION,
    Manifest,
    is_gzip_name,
    verify_bundle,
)
from ctxdb.service.operations.bundle_import import ImportOptions, TableCounts, import_records
from ctxdb.service.operations.bundle_writer import BundleWriter
from ctxdb.service.operations.records import RowCodec, TableDigest
from ctxdb.service.usecases.projects import require_project
from ctxdb.storage import Migrator, Tx
from ctxdb.storage.bulk import TableSql, count_rows, stream_rows
from ctxdb.storage.tables import TABLES

READ_BATCH = 2_000


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class BundleService(Service):
    # --- export ------------------------------------------------------------------------------

    def export(
        self, destination: str | os.PathLike[str] | IO[bytes], project_id: str | None = None,
        *, overwrite: bool = False, progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Write a bundle of every table (or of one project's rows) to a file path, gzipped
        when it ends in ``.gz``, or to a binary stream; returns its manifest and counts."""
        if project_id is not None:
            check_identifier(project_id, "project_id")
        progress = progress or NoProgress()
        started = time.perf_counter()
        if isinstance(destination, str | os.PathLike):
            path = Path(destination)
            _check_destination(path, overwrite)
            try:
                with _replacing(path) as spool:
                    result = self._export_into(spool, is_gzip_name(path), project_id,
                                               progress)
            except OSError as exc:  # a full disk, a folder not writable: typed, not a bug
                raise OutputWriteError(
                    f"cannot write the bundle {path}: {exc.strerror or exc}; nothing was "
                    "written there", path=str(path), reason=exc.strerror or str(exc)) from None
            result["path"] = str(path)
        else:
            with tempfile.TemporaryFile() as spool:
                result = self._export_into(spool, False, project_id, progress)
                spool.seek(0)
                shutil.copyfileobj(spool, destination)
            result["path"] = "-"
        result["seconds"] = round(time.perf_counter() - started, 3)
        return result

    def _export_into(self, spool: IO[bytes], compress: bool, project_id: str | None,
                     progress: Progress) -> dict[str, Any]:
        def unit(tx: Tx) -> dict[str, Any]:
            spool.seek(0)  # a retried snapshot starts the file again
            spool.truncate()
            if not compress:
                return self._write_bundle(tx, spool, project_id, progress)
            with gzip.GzipFile(fileobj=spool, mode="wb", compresslevel=6) as zipped:
                return self._write_bundle(tx, zipped, project_id, progress)  # type: ignore[arg-type]

        return self.storage.snapshot(unit)

    def _write_bundle(self, tx: Tx, stream: IO[bytes], project_id: str | None,
                      progress: Progress) -> dict[str, Any]:
        if project_id is not None:
            require_project(tx, project_id)
        dialect = self.storage.dialect
        statements = [TableSql(table, table.column_names, dialect) for table in TABLES]
        progress.start("export", sum(count_rows(tx, s, project_id) for s in statements))
        header = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "ctxdb_version": __version__,
            "schema_version": int(tx.value("latest_applied_version")),
            "created_at": _now(), "source_backend": dialect.name, "project_id": project_id,
            "tables": {s.table.name: list(s.columns) for s in statements},
        }
        writer = BundleWriter(stream)
        writer.header(header)
        digests = {s.table.name: self._write_table(tx, writer, s, project_id, progress)
                   for s in statements}
        trailer = writer.trailer(digests)
        return {**{k: v for k, v in header.items() if k != "tables"},
                "records": trailer["records"], "sha256": trailer["sha256"],
                "bytes": writer.bytes, "tables": trailer["tables"]}

    @staticmethod
    def _write_table(tx: Tx, writer: BundleWriter, sql: TableSql, project_id: str | None,
                     progress: Progress) -> TableDigest:
        codec, digest = RowCodec(sql.table, sql.columns), TableDigest()
        for values in stream_rows(tx, sql, project_id, READ_BATCH):
            line, checksum = codec.record(codec.canonical(values))
            writer.record(line)
            digest.add(checksum)
            if digest.rows % READ_BATCH == 0:
                progress.advance(READ_BATCH)
        progress.advance(digest.rows % READ_BATCH)
        return digest

    # --- import ------------------------------------------------------------------------------

    def verify(self, path: str | os.PathLike[str],
               progress: Progress | None = None) -> Manifest:
        """Check a bundle completely without importing it; its manifest or ``BundleError``."""
        return verify_bundle(Path(path), Migrator(self.storage).latest_version, progress)

    def import_bundle(
        self, path: str | os.PathLike[str], *, dry_run: bool = False, replace: bool = False,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Verify the bundle at ``path``, then import it in one transaction.

        Into an empty database every record keeps its ids. Into one that holds rows, records
        already present (the same content) are skipped, so importing twice changes nothing;
        a record whose number another row holds gets a new one, and every reference to it
        follows (``renumbered`` counts them; audit chains whose entries changed are sealed
        again, ``resealed`` gives their heads). A record that is a changed version of a row of
        the bundle's own project fails the import with ``ImportConflictError`` unless
        ``replace``, which overwrites that row; rows of other projects are never written.
        ``dry_run`` verifies and counts what would be inserted, skipped and replaced, and
        writes nothing.
        """
        progress = progress or NoProgress()
        started = time.perf_counter()
        # Every record's checksum before anything is written; each row's values as it is
        # imported (a wrong one rolls the whole import back).
        manifest = verify_bundle(Path(path), Migrator(self.storage).latest_version, progress,
                                 values=False)
        options = ImportOptions(write=not dry_run, replace=replace, progress=progress)
        progress.start("check" if dry_run else "import", manifest.records)
        dialect = self.storage.dialect

        def unit(tx: Tx) -> dict[str, TableCounts]:
            options.clear()
            return import_records(tx, dialect, Path(path), manifest, options)

        try:
            counts = self.storage.read(unit) if dry_run else self.storage.write(unit)
        except ConflictError as exc:
            if isinstance(exc, ImportConflictError):
                raise
            raise ImportConflictError(
                f"the bundle's records clash with rows of this database ({exc.message}); "
                "nothing was imported") from exc
        result = _import_summary(Path(path), manifest, counts, dry_run, replace)
        result["resealed"] = dict(options.resealed)
        if dry_run and options.foreign:
            raise ImportConflictError(
                f"{options.foreign} bundle records have a key that another project's row holds "
                "in this database; the import would be refused, with or without --replace "
                "(which never writes rows of other projects)",
                conflicts=result["conflicts"], examples=options.conflicts)
        if dry_run and result["conflicts"] and not replace:
            raise ImportConflictError(
                f"{result['conflicts']} bundle records are changed versions of rows of the "
                "bundle's own projects here; the import would be refused. --replace would "
                "overwrite those rows with the bundle's version and lose their changes made "
                "here", conflicts=result["conflicts"], examples=options.conflicts)
        if not dry_run:
            self.storage.health().analyze_after_load()
        result["seconds"] = round(time.perf_counter() - started, 3)
        return result


def _import_summary(path: Path, manifest: Manifest, counts: dict[str, TableCounts],
                    dry_run: bool, replace: bool) -> dict[str, Any]:
    header = manifest.header
    totals = {name: sum(getattr(c, name) for c in counts.values())
              for name in ("inserted", "skipped", "replaced", "conflicts", "renumbered")}
    return {
        "path": str(path), "dry_run": dry_run, "replace": replace,
        "format_version": header["format_version"], "schema_version": header["schema_version"],
        "source_backend": header.get("source_backend"), "created_at": header.get("created_at"),
        "project_id": header.get("project_id"), "sha256": manifest.sha256,
        "records": manifest.records, **totals,
        "tables": {name: c.to_dict() for name, c in counts.items()},
    }


def _check_destination(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise ValidationError(f"{path} is a directory; give a file name for the bundle",
                              path=str(path))
    if path.exists() and not overwrite:
        raise ValidationError(f"{path} already exists; choose another name or overwrite it "
                              "on purpose (--force)", path=str(path))
    if not path.parent.is_dir():
        raise ValidationError(f"the folder {path.parent} does not exist", path=str(path))


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[IO[bytes]]:
    """A temporary file next to ``path`` that replaces it once complete and on disk."""
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                        suffix=".partial")
    try:
        with os.fdopen(descriptor, "w+b") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
