"""The bundle file: versioned JSON Lines, checked line by line before anything is imported.

Line 1 is the header: format name and version, the ctxdb and schema versions that wrote it,
when, from which backend, the project (or null for the whole database) and, per table, the
columns its rows have. Then one canonical record per row (see ``records.py``), tables in
parent-before-child order and rows in key order. The last line is the trailer: the number of
records, per table its row count and the checksum of its records' checksums, and the SHA-256
of every byte before the trailer. A file whose name ends in ``.gz`` is gzip-compressed
(recognised when reading by its magic bytes, whatever its name).

:func:`verify_bundle` reads the whole file and refuses it (``BundleError``) on any damage: a
line that is not JSON, a record whose checksum does not match its content, a table out of
order, a count or a checksum that differs from the trailer, a missing trailer, anything after
it. :func:`read_records` reads it again for the import and checks, at its end, that the file
did not change in between.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from ctxdb.domain.validation import (
    MAX_BIGINT,
    MAX_INDEXED_BYTES,
    is_real_timestamp,
    load_json,
    unstorable,
)
from ctxdb.errors import BundleError, BundleVersionError, ValidationError
from ctxdb.progress import NoProgress, Progress
from ctxdb.service.operations.records import (
    RowCodec,
    TableDigest,
    is_canonical_timestamp,
)
from ctxdb.storage.tables import TABLES, Table, table_named

FORMAT = "ctxdb-bundle"
FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
_GZIP_MAGIC = b"\x1f\x8b"
_RECORD_KEYS = {"row", "sha256", "table"}
_PLAIN_DECODER = json.JSONDecoder()
_ORDER = {table.name: index for index, table in enumerate(TABLES)}
_SHA_MEMBER = b',"sha256":"'
_RECORD_TAIL = re.compile(rb',"sha256":"([0-9a-f]{64})","table":"([a-z_]+)"\}\r?\n?')
_PROGRESS_BYTES = 1 << 20  # report reading progress every MiB
# A record line can hold a NUL or a lone surrogate only as a JSON escape (\u0000,
# \uD800-\uDFFF): the lines that have none need not have their values searched for them.
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
# Text columns that are part of an index (ids, keys, uuids and the few named here): PostgreSQL
# refuses an index entry over about 2,700 bytes, so both backends refuse longer values.
_INDEXED_COLUMN = re.compile(r"(?:^|_)(?:id|key|uuid)$|^(?:path|command|namespace|app_name|"
                             r"recipient|recipient_kind|lease_owner|entity_type)$")


def is_gzip_name(path: str | Path) -> bool:
    return str(path).endswith(".gz")


def open_for_reading(path: Path) -> IO[bytes]:
    try:
        with path.open("rb") as probe:
            compressed = probe.read(2) == _GZIP_MAGIC
        return cast(IO[bytes], gzip.open(path, "rb") if compressed else path.open("rb"))
    except OSError as exc:
        raise BundleError(f"cannot read the bundle {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class Manifest:
    """What a verified bundle holds: its header, its tables and columns, its trailer."""

    header: dict[str, Any]
    columns: dict[str, tuple[str, ...]]  # table -> columns, in registry order
    trailer: dict[str, Any]

    @property
    def counts(self) -> dict[str, int]:
        return {name: int(entry["rows"]) for name, entry in self.trailer["tables"].items()}

    @property
    def records(self) -> int:
        return int(self.trailer["records"])

    @property
    def sha256(self) -> str:
        return str(self.trailer["sha256"])

    def tables(self) -> list[Table]:
        return [table for table in TABLES if table.name in self.columns]


def _damaged(message: str, line: int | None = None) -> BundleError:
    where = f" (line {line})" if line is not None else ""
    return BundleError(f"damaged bundle{where}: {message}; nothing was imported", line=line)


def _json_line(raw: bytes, number: int) -> Any:
    try:
        return load_json(raw, "the line")
    except ValidationError as exc:  # over a limit of every JSON (domain/validation.py)
        raise _damaged(exc.message, number) from None
    except ValueError:  # not JSON, not UTF-8
        raise _damaged("not a JSON line", number) from None


def _header_columns(header: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    tables = header.get("tables")
    if not isinstance(tables, dict):
        raise _damaged("the header lists no tables", 1)
    columns: dict[str, tuple[str, ...]] = {}
    for name in sorted(tables, key=lambda n: _ORDER.get(n, len(_ORDER))):
        table = table_named(name)
        if table is None:
            raise BundleVersionError(
                f"the bundle has a table {name!r} this ctxdb does not know; import it with the "
                "ctxdb version that wrote it (or a newer one)", table=name)
        listed = tables[name]
        if not isinstance(listed, list) or not set(table.key) <= set(listed):
            raise _damaged(f"the header's columns of {name} lack its primary key", 1)
        unknown = sorted(set(listed) - set(table.column_names))
        if unknown:
            raise BundleVersionError(
                f"the bundle's table {name} has columns this ctxdb does not know: "
                f"{', '.join(map(str, unknown))}", table=name)
        columns[name] = tuple(c for c in table.column_names if c in listed)
    return columns


def parse_header(raw: bytes, latest_schema: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header of a bundle and its columns per table; refuses what cannot be read."""
    try:
        header = load_json(raw, "the header")
    except (ValueError, ValidationError):  # not JSON, or over a limit: not a header
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BundleError(f"not a ctxdb bundle: the first line is not a {FORMAT} header",
                          line=1)
    version = header.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise BundleVersionError(
            f"bundle format version {version!r} is not supported by this ctxdb (it reads "
            f"{', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))})", format_version=version)
    schema = header.get("schema_version")
    if not isinstance(schema, int) or schema > latest_schema:
        raise BundleVersionError(
            f"the bundle was written at schema version {schema!r}, newer than this ctxdb's "
            f"({latest_schema}); upgrade ctxdb to import it", schema_version=schema)
    return header, _header_columns(header)


# The Python type of each kind's values as JSON parses them (JSON columns take any value);
# timestamps are also matched against their canonical form.
_KIND_TYPES: dict[str, type] = {"int": int, "text": str, "bool": bool, "timestamp": str}


class _RecordChecker:
    """Checks records one by one: shape, table order, value kinds, checksum."""

    def __init__(self, columns: dict[str, tuple[str, ...]]) -> None:
        self.columns = columns
        self.codecs = {name: RowCodec(table_named(name), cols)  # type: ignore[arg-type]
                       for name, cols in columns.items()}
        # Per table, the type of each column that is not JSON, and its timestamp columns.
        self.types = {name: tuple((c, _KIND_TYPES[codec.table.kind(c)]) for c in codec.columns
                                  if codec.table.kind(c) != "json")
                      for name, codec in self.codecs.items()}
        self.timestamps = {name: codec.table.columns_of_kind("timestamp")
                           for name, codec in self.codecs.items()}
        self.indexed = {name: tuple(c for c in codec.table.columns_of_kind("text")
                                    if c in codec.columns and _INDEXED_COLUMN.search(c))
                        for name, codec in self.codecs.items()}
        self.known = {name: frozenset(codec.columns) for name, codec in self.codecs.items()}
        self.digests = {name: TableDigest() for name in columns}
        self.position = -1

    def check(self, record: Any, raw: bytes, number: int) -> None:
        """The whole check of one parsed record line."""
        name, row = self.check_record(record, number, raw)
        self._check_order(name, number)
        checksum = record["sha256"]
        if not isinstance(checksum, str) or (
                _checksum_of_line(raw, name) != checksum
                and self.codecs[name].checksum(row) != checksum):
            raise _damaged(f"the {name} record's checksum does not match its content", number)
        self.digests[name].add(checksum)

    def check_bytes(self, raw: bytes, number: int) -> bool:
        """Check a record line by its bytes alone, without parsing it: True for a line in
        ctxdb's layout whose bytes hash to its checksum (its row's values are then checked
        by :func:`read_records`); False for any other line, which the caller parses."""
        found = _canonical_record(raw)
        if found is None:
            return False
        name, checksum, hashed = found
        if name not in self.codecs or hashlib.sha256(hashed).hexdigest() != checksum:
            return False
        self._check_order(name, number)
        self.digests[name].add(checksum)
        return True

    def check_record(self, record: Any, number: int,
                     raw: bytes | None = None) -> tuple[str, dict[str, Any]]:
        """The table and row of a parsed record, checked against the header's columns.

        ``raw``, the record's line, spares searching the values of a line that holds no
        escape of an unstorable character.
        """
        if not isinstance(record, dict) or set(record) != _RECORD_KEYS:
            raise _damaged("not a record (expected table, row and sha256)", number)
        name, row = record["table"], record["row"]
        if name not in self.codecs or not isinstance(row, dict):
            raise _damaged(f"a record of a table the header does not list: {name!r}", number)
        self._check_values(self.codecs[name].table, row, number)
        if raw is None or _UNSTORABLE_ESCAPE.search(raw):
            self._check_storable(self.codecs[name].table, row, number)
        return name, row

    @staticmethod
    def _invalid(table: Table, column: str, number: int) -> BundleError:
        return _damaged(f"{table.name}.{column} is not a valid {table.kind(column)}", number)

    def _check_order(self, name: str, number: int) -> None:
        if _ORDER[name] < self.position:
            raise _damaged(f"a {name} record after records of a later table", number)
        self.position = _ORDER[name]

    def _check_values(self, table: Table, row: dict[str, Any], number: int) -> None:
        if not self.known[table.name].issuperset(row):
            extra = sorted(set(row) - self.known[table.name])
            raise _damaged(f"a {table.name} record has unknown columns {extra}", number)
        for column, expected in self.types[table.name]:
            value = row.get(column)
            if value is not None and type(value) is not expected:
                raise self._invalid(table, column, number)
            if isinstance(value, int) and not -MAX_BIGINT - 1 <= value <= MAX_BIGINT:
                raise _damaged(f"{table.name}.{column} is {value}, outside the 64-bit integers "
                               f"a database stores (-{MAX_BIGINT + 1}..{MAX_BIGINT})", number)
        for column in self.timestamps[table.name]:
            value = row.get(column)
            if value is not None and not (is_canonical_timestamp(value)
                                          and is_real_timestamp(value)):
                raise self._invalid(table, column, number)  # 2025-13-45 is no date
        for column in self.indexed[table.name]:
            value = row.get(column)
            if value is not None and len(value.encode("utf-8", "surrogatepass")) \
                    > MAX_INDEXED_BYTES:
                raise _damaged(f"{table.name}.{column} is longer than {MAX_INDEXED_BYTES} "
                               "bytes, more than PostgreSQL indexes", number)
        if any(row.get(key) is None for key in table.key):
            raise _damaged(f"a {table.name} record without its primary key", number)

    @staticmethod
    def _check_storable(table: Table, row: dict[str, Any], number: int) -> None:
        """Refuse NUL characters and lone surrogates, in text and JSON values alike: neither
        database can store them (SQLite would take a NUL that PostgreSQL refuses)."""
        for column, value in row.items():
            try:
                why = unstorable(value)
            except RecursionError:
                why = "JSON nested too deep"
            if why:
                raise _damaged(f"{table.name}.{column} holds {why}, which no database "
                               "stores", number)


def _canonical_record(raw: bytes) -> tuple[str, str, bytes] | None:
    """(table, checksum, the bytes the checksum is of) of a record line as ctxdb writes it.

    Such a line is ``{"row":{…},"sha256":"…","table":"…"}``: the bytes that were hashed are
    the line without its sha256 member, so they need not be encoded again (which is most of
    the cost of verifying). ``None`` for a line of another layout.
    """
    at = raw.rfind(_SHA_MEMBER)
    tail = _RECORD_TAIL.fullmatch(raw, at) if at > 0 else None
    if tail is None or not raw.startswith(b'{"row":{'):
        return None
    table = tail.group(2)
    return (table.decode("ascii"), tail.group(1).decode("ascii"),
            raw[:at] + b',"table":"' + table + b'"}')


def _checksum_of_line(raw: bytes, table: str) -> str | None:
    """The checksum of a record line of ctxdb's layout, hashed from its bytes; else None."""
    found = _canonical_record(raw)
    if found is None or found[0] != table:
        return None
    return hashlib.sha256(found[2]).hexdigest()


def _check_trailer(trailer: dict[str, Any], checker: _RecordChecker, records: int,
                   file_sha: str, number: int) -> None:
    expected = {name: digest.to_dict() for name, digest in checker.digests.items()}
    if trailer.get("records") != records or trailer.get("tables") != expected:
        raise _damaged("the records do not match the trailer's counts and checksums "
                       "(a line is missing, repeated or changed)", number)
    if trailer.get("sha256") != file_sha:
        raise _damaged("the file's checksum does not match the trailer", number)


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    try:
        yield from stream
    except (OSError, EOFError, zlib.error) as exc:
        raise _damaged(f"cannot be read to its end ({exc})") from None


def verify_bundle(path: Path, latest_schema: int, progress: Progress | None = None, *,
                  values: bool = True) -> Manifest:
    """Read and check the whole bundle; its manifest, or ``BundleError``.

    ``values=False`` is the import's first reading: a record line in ctxdb's own layout whose
    bytes hash to its checksum is taken as intact without parsing it (any changed byte still
    fails it), and the values of its row are checked as :func:`read_records` reads them.
    """
    progress = progress or NoProgress()
    with open_for_reading(path) as stream:
        # Progress counts bytes of JSON Lines; the size of a compressed file says nothing.
        compressed = isinstance(stream, gzip.GzipFile)
        progress.start("verify", None if compressed else path.stat().st_size)
        lines = _lines(stream)
        first = next(lines, None)
        if first is None:
            raise BundleError(f"{path} is empty, not a bundle", line=1)
        header, columns = parse_header(first, latest_schema)
        file_hash, checker = hashlib.sha256(first), _RecordChecker(columns)
        number, pending = 1, 0
        for records, raw in enumerate(lines):
            number = records + 2
            if values or not checker.check_bytes(raw, number):
                parsed = _json_line(raw, number)
                if isinstance(parsed, dict) and parsed.get("kind") == "trailer":
                    _check_trailer(parsed, checker, records, file_hash.hexdigest(), number)
                    if any(line.strip() for line in lines):
                        raise _damaged("lines after the trailer", number + 1)
                    return Manifest(header, columns, parsed)
                checker.check(parsed, raw, number)
            file_hash.update(raw)
            pending += len(raw)
            if pending >= _PROGRESS_BYTES:
                progress.advance(pending)
                pending = 0
    raise _damaged("it ends before its trailer (truncated?)", number)


def read_records(path: Path, manifest: Manifest) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(table, row, checksum) of each record of a verified bundle, in file order, each row
    checked against its table's columns (``BundleError`` for a value of the wrong kind).

    The file is read a second time: its checksum is recomputed and compared at the end, so
    that a file changed since it was verified fails the import (whose transaction is then
    rolled back) instead of importing unchecked records.
    """
    checker = _RecordChecker(manifest.columns)
    with open_for_reading(path) as stream:
        lines = _lines(stream)
        file_hash = hashlib.sha256(next(lines, b""))
        for number, raw in enumerate(lines, start=2):
            try:
                record = _PLAIN_DECODER.raw_decode(raw.decode("utf-8"))[0]
            except (ValueError, UnicodeDecodeError, RecursionError):
                # Its bytes matched its checksum when verified: its writer signed a line that
                # is no JSON, or the file changed since.
                raise _damaged("not a JSON line (or the file changed while it was being "
                               "imported)", number) from None
            if isinstance(record, dict) and record.get("kind") == "trailer":
                break
            name, row = checker.check_record(record, number, raw)
            file_hash.update(raw)
            yield name, row, record["sha256"]
    if file_hash.hexdigest() != manifest.sha256:
        raise _changed()


def _changed() -> BundleError:
    return BundleError("the bundle changed while it was being imported; nothing was imported")
