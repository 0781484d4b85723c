"""Regenerate docs/cli.md from the commands' --help (run after changing a command).

Usage: python scripts/gen_cli_docs.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

from ctxdb.cli.reference import render_reference

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def main() -> int:
    text = render_reference()
    if "--check" in sys.argv[1:]:
        if DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is out of date: run python scripts/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
