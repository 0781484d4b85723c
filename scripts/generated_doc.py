"""What the documentation generators share: write a generated file, or with --check say
whether the committed one is current (exit 1 and the command to run when it is not)."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(doc: Path, text: str, script: str) -> int:
    """Write ``text`` to ``doc``; with ``--check`` only compare. Returns the exit status."""
    if "--check" in sys.argv[1:]:
        if doc.read_text(encoding="utf-8") != text:
            print(f"{doc} is out of date: run python scripts/{script}", file=sys.stderr)
            return 1
        return 0
    doc.write_text(text, encoding="utf-8")
    print(f"wrote {doc}")
    return 0
