"""Canonical records: a table row as the same bytes whichever database it was read from.

Bundles are made of these records and ``db copy`` verifies with them, so a row exported from
SQLite and the same row exported from PostgreSQL are byte-identical:

- JSON columns are parsed and written back with sorted keys and no spaces (PostgreSQL's jsonb
  reorders keys and SQLite keeps the writer's order). Numbers are read as PostgreSQL keeps
  them: a number written with an exponent that is a whole number (``1e+20``, which jsonb
  prints as ``100000000000000000000``) is that integer, and there is no negative zero;
- a JSON column that is SQL NULL is left out of the row, so that ``null`` in a record always
  means the JSON value null;
- timestamps are ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (what ctxdb writes; finer fractions,
  which only imported transcript times can have, are cut to milliseconds, as PostgreSQL
  reads them back);
- booleans are JSON booleans (SQLite stores 0 and 1).

A record is ``{"row": {...}, "sha256": "...", "table": "..."}`` with sorted keys; its
checksum is the SHA-256 of the same object without the ``sha256`` member, in UTF-8.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ctxdb.storage.tables import Table

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                            allow_nan=False)
_DECODER = json.JSONDecoder(parse_float=lambda token: _json_number(token))


def _json_number(token: str) -> int | float:
    if "e" in token or "E" in token:
        exact = Decimal(token)
        if exact == exact.to_integral_value():
            return int(exact)
    value = float(token)
    return 0.0 if value == 0 else value


def parse_json(text: str) -> Any:
    """JSON text as canonical Python values (numbers as PostgreSQL's jsonb keeps them)."""
    return _DECODER.decode(text)


def encode_json(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 characters as they are."""
    return _ENCODER.encode(value)


def canonical_timestamp(value: str) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ``; text that is no timestamp at all is returned as it is
    (the database that receives it will refuse it)."""
    if _TIMESTAMP.fullmatch(value):
        return value
    try:
        moment = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def is_canonical_timestamp(value: str) -> bool:
    return _TIMESTAMP.fullmatch(value) is not None


class RowCodec:
    """Turns one table's rows, read as tuples of ``columns``, into canonical records and
    records back into values to insert."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self._json = [c for c in self.columns if table.kind(c) == "json"]
        self._timestamps = [c for c in self.columns if table.kind(c) == "timestamp"]
        self._bools = [c for c in self.columns if table.kind(c) == "bool"]
        self._json_at = [(i, c) for i, c in enumerate(self.columns) if c in self._json]
        self._prefix = '{"row":'
        self._middle = ',"table":"' + table.name + '"}'

    def canonical(self, values: Sequence[Any]) -> dict[str, Any]:
        """The canonical row of values read from either database."""
        row = dict(zip(self.columns, values, strict=True))
        for column in self._json:
            text = row[column]
            if text is None:
                del row[column]
            else:
                row[column] = parse_json(text)
        for column in self._timestamps:
            stamp = row[column]
            if stamp is not None and not _TIMESTAMP.fullmatch(stamp):
                row[column] = canonical_timestamp(stamp)
        for column in self._bools:
            if row[column] is not None:
                row[column] = bool(row[column])
        return row

    def record(self, row: dict[str, Any]) -> tuple[str, str]:
        """The record's line (without newline) and its checksum."""
        body = _ENCODER.encode(row)
        digest = hashlib.sha256(
            (self._prefix + body + self._middle).encode("utf-8")).hexdigest()
        return (f'{self._prefix}{body},"sha256":"{digest}","table":"{self.table.name}"}}',
                digest)

    def checksum(self, row: dict[str, Any]) -> str:
        return self.record(row)[1]

    def values(self, row: dict[str, Any]) -> list[Any]:
        """Values to insert, in ``columns`` order (JSON as canonical text)."""
        values = [row.get(column) for column in self.columns]
        for index, column in self._json_at:
            values[index] = encode_json(row[column]) if column in row else None
        return values


class TableDigest:
    """Row count and checksum of a table's records in key order: the SHA-256 of their
    checksums, one after the other (64 hex digits each)."""

    def __init__(self) -> None:
        self.rows = 0
        self._hash = hashlib.sha256()

    def add(self, checksum: str) -> None:
        self.rows += 1
        self._hash.update(checksum.encode("ascii"))

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "sha256": self.sha256}
