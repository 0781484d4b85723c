"""Writing a bundle: its header, its records and the trailer with the whole-file checksum
(the format is described in :mod:`ctxdb.service.operations.bundle_format`)."""

from __future__ import annotations

import hashlib
from typing import IO, Any

from ctxdb.service.operations.records import TableDigest, encode_json


class BundleWriter:
    """Writes the lines of one bundle to a binary stream and keeps the whole-file checksum."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()
        self.records = 0
        self.bytes = 0

    def _line(self, text: str) -> None:
        data = text.encode("utf-8") + b"\n"
        self._hash.update(data)
        self._stream.write(data)
        self.bytes += len(data)

    def header(self, header: dict[str, Any]) -> None:
        self._line(encode_json({"kind": "header", **header}))

    def record(self, line: str) -> None:
        self.records += 1
        self._line(line)

    def trailer(self, tables: dict[str, TableDigest]) -> dict[str, Any]:
        trailer = {
            "kind": "trailer",
            "records": self.records,
            "tables": {name: digest.to_dict() for name, digest in tables.items()},
            "sha256": self._hash.hexdigest(),
        }
        text = encode_json(trailer).encode("utf-8") + b"\n"
        self._stream.write(text)
        self.bytes += len(text)
        return trailer
