"""PostgreSQL backup and restore with the server's own tools: pg_dump, pg_restore and psql.

A backup is a ``pg_dump --format=custom`` archive: pg_dump reads one consistent snapshot
(REPEATABLE READ) and blocks no writer. It is checked by reading it back whole with
``pg_restore`` (every compressed data block must decode), which also yields the schema version
(the rows of ``schema_migrations``) and the rows per table.

A restore runs in ONE transaction (``psql --single-transaction``): the ``down`` sections of
the migrations applied to the live database remove ctxdb's tables, then the archive's SQL
recreates them with their rows. Any failure rolls the whole restore back.

The password of the URL is handed to the tools in ``PGPASSWORD``, never on a command line
that other users could read in the process list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ctxdb.errors import (
    BackupInvalidError,
    DatabaseUnavailableError,
    ExternalToolError,
    ValidationError,
)
from ctxdb.progress import Progress
from ctxdb.settings import Settings
from ctxdb.storage import backups
from ctxdb.storage.dialect import POSTGRES

PGDUMP_MAGIC = b"PGDMP"


def is_pg_dump_archive(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(PGDUMP_MAGIC)) == PGDUMP_MAGIC


def tool(name: str) -> str | None:
    """The path of ``name`` on PATH, or ``None``."""
    return shutil.which(name)


def _require(name: str) -> str:
    found = tool(name)
    if found is None:
        raise ExternalToolError(f"{name} is not on PATH: install the PostgreSQL client tools "
                                "(for example the postgresql-client package)", tool=name)
    return found


@dataclass(frozen=True)
class Connection:
    """How the tools reach the database: a conninfo string without password, and the env."""

    conninfo: str
    env: dict[str, str]

    @classmethod
    def from_url(cls, url: str) -> Connection:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(url)
        password = params.pop("password", None)
        env = dict(os.environ)
        if password is not None:
            env["PGPASSWORD"] = str(password)
        return cls(make_conninfo(**{k: str(v) for k, v in params.items()}), env)


def _run(args: list[str], env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ExternalToolError(f"could not run {args[0]}: {exc}", tool=args[0]) from exc
    if done.returncode != 0:
        raise ExternalToolError(f"{Path(args[0]).name} failed: {done.stderr.strip()[-2000:]}",
                                tool=Path(args[0]).name, exit_code=done.returncode)
    return done.stdout


def dump(url: str, target: Path) -> None:
    """Write a custom-format archive of the whole database to ``target``."""
    conn = Connection.from_url(url)
    # --enable-row-security: an owner subject to FORCEd row-level security (ctxdb db secure)
    # reads every row through its policy; without it pg_dump refuses such tables.
    _run([_require("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
          "--enable-row-security",
          f"--file={target}", f"--dbname={conn.conninfo}"], conn.env)


@dataclass
class ArchiveContents:
    schema_version: int = 0
    tables: dict[str, int] = field(default_factory=dict)


def _copy_blocks(lines: Iterator[str]) -> Iterator[tuple[str, list[str]]]:
    """(table, rows) of each ``COPY … FROM stdin`` block of a plain SQL script."""
    for line in lines:
        if line.startswith("COPY ") and line.rstrip().endswith("FROM stdin;"):
            table = line.split()[1].rsplit(".", 1)[-1].strip('"')
            rows = []
            for row in lines:
                if row.rstrip("\n") == "\\.":
                    break
                rows.append(row.rstrip("\n"))
            yield table, rows


def read_archive(path: Path) -> ArchiveContents:
    """Read a pg_dump archive back whole; refuses a damaged or foreign one."""
    restore = _require("pg_restore")
    try:
        process = subprocess.Popen([restore, "--file=-", str(path)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        raise ExternalToolError(f"could not run pg_restore: {exc}", tool="pg_restore") from exc
    contents = ArchiveContents()
    assert process.stdout is not None and process.stderr is not None
    with process:
        for table, rows in _copy_blocks(iter(process.stdout)):
            contents.tables[table] = len(rows)
            if table == "schema_migrations":
                contents.schema_version = max((int(r.split("\t", 1)[0]) for r in rows),
                                              default=0)
        errors = process.stderr.read()
    if process.returncode != 0:
        raise BackupInvalidError(f"{path} is not a readable pg_dump archive: "
                                 f"{errors.strip()[-2000:]}", file=str(path))
    return contents


def live_row_counts(url: str) -> dict[str, int]:
    """Rows per table of the database's current schema (for the emptiness check)."""
    import psycopg

    query = ("SELECT table_name FROM information_schema.tables "
             "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
             "ORDER BY table_name")
    counts = {}
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for (table,) in conn.execute(query).fetchall():
                row = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
                counts[str(table)] = int(row[0]) if row else 0
    except psycopg.Error as exc:
        raise DatabaseUnavailableError(f"cannot read the PostgreSQL database: {exc}") from exc
    return counts


# The audit rows' transaction numbers (the change feed's order, migration 0016) are those of
# the database the archive was made from: in another server they could lie ahead of every
# transaction to come, and the feed would read no new row until its numbers caught up. Those
# rows are the past: number 0, ordered by their ids, before anything written next. (Restored
# into the server it came from, an archive keeps its numbers, all behind the server's.)
# (The archive's SQL empties the search path, and turns row security off, which makes any
# statement a policy applies to fail: both are reset, so that the owner's policy lets the
# owner's update through on a database secured with `ctxdb db secure`.)
_FORGET_TRANSACTION_NUMBERS = (
    "RESET search_path; RESET row_security; "
    "DO $$ BEGIN IF EXISTS (SELECT 1 FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = 'audit_log' "
    "AND column_name = 'xact_id') THEN "
    "UPDATE audit_log SET xact_id = 0 WHERE xact_id >= pg_current_xact_id()::text::bigint; "
    "END IF; END $$")


def restore(url: str, archive: Path, drop_sql: str, script: Path) -> None:
    """Replace ctxdb's tables with the archive's, in one transaction.

    ``drop_sql`` removes what the live database holds (run first); ``script`` is a scratch
    file for the archive's SQL.
    """
    _run([_require("pg_restore"), "--no-owner", "--no-privileges", f"--file={script}",
          str(archive)])
    conn = Connection.from_url(url)
    args = [_require("psql"), "--no-psqlrc", "--quiet", "--single-transaction",
            "--set=ON_ERROR_STOP=1", f"--dbname={conn.conninfo}"]
    if drop_sql.strip():
        args.append(f"--command={drop_sql}")
    _run([*args, f"--file={script}", f"--command={_FORGET_TRANSACTION_NUMBERS}"], conn.env)


def drop_sql(settings: Settings) -> str:
    """The ``down`` SQL of every migration applied to the live database, newest first."""
    from ctxdb.storage import Migrator, connect_storage

    storage = connect_storage(settings)
    try:
        migrator = Migrator(storage)
        current = migrator.current_version()
        if current > migrator.latest_version:
            raise ValidationError(f"the live database has schema version {current}, newer "
                                  "than this ctxdb; restore it with a newer ctxdb")
        downs = [m.down for m in reversed(migrator.migrations) if m.version <= current]
    finally:
        storage.close()
    if current:
        downs.append("DROP TABLE schema_migrations;")
    return "\n".join(downs)


class PostgresBackups(backups.Backups):
    """A ``pg_dump --format=custom`` archive; restored with pg_restore and psql in one
    transaction."""

    format = "pg_dump"
    dialect = POSTGRES
    title = "PostgreSQL"
    described = "a pg_dump"

    @staticmethod
    def recognizes(path: Path) -> bool:
        return is_pg_dump_archive(path)

    def available(self) -> bool:
        return bool(tool("pg_dump") and tool("pg_restore"))

    def back_up(self, target: Path, progress: Progress) -> backups.BackupContents:
        progress.start("running pg_dump", None)
        dump(self.settings.url, target)
        progress.start("checking the archive", None)
        contents = read_archive(target)
        if contents.schema_version == 0:
            raise BackupInvalidError("the archive holds no ctxdb schema (no schema_migrations "
                                     "rows): is this a ctxdb database?")
        return backups.BackupContents(contents.schema_version, contents.tables)

    def inspect(self, path: Path) -> backups.BackupContents:
        contents = read_archive(path)
        newest = self.latest_version
        if not 0 < contents.schema_version <= newest:
            raise BackupInvalidError(
                f"{path} has schema version {contents.schema_version}; this ctxdb restores "
                f"1 to {newest}", file=str(path), schema_version=contents.schema_version)
        return backups.BackupContents(contents.schema_version, contents.tables)

    def live_row_counts(self) -> dict[str, int]:
        return live_row_counts(self.settings.url)

    def restore(self, source: Path, progress: Progress) -> None:
        progress.start("restoring with pg_restore and psql", None)
        with tempfile.TemporaryDirectory(prefix="ctxdb-restore-") as scratch:
            restore(self.settings.url, source, drop_sql(self.settings),
                    Path(scratch) / "data.sql")
