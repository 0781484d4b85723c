"""Regenerate docs/openapi.json, the OpenAPI document of `ctxdb serve` (run after changing a
route or a model).

Usage: python scripts/gen_openapi.py [--check]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import ctxdb
from ctxdb.http.app import create_app

DOC = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def render() -> str:
    with tempfile.TemporaryDirectory() as folder, \
            ctxdb.open(url=str(Path(folder) / "openapi.db")) as db:
        document = create_app(db).openapi()
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is out of date: run python scripts/gen_openapi.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
