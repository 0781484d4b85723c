"""Regenerate docs/openapi.json, the OpenAPI document of `ctxdb serve` (run after changing a
route or a model).

Usage: python scripts/gen_openapi.py [--check]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from generated_doc import write_or_check

import ctxdb
from ctxdb.http.app import create_app

DOC = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def render() -> str:
    with tempfile.TemporaryDirectory() as folder, \
            ctxdb.open(url=str(Path(folder) / "openapi.db")) as db:
        document = create_app(db).openapi()
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> int:
    return write_or_check(DOC, render(), "gen_openapi.py")


if __name__ == "__main__":
    sys.exit(main())
