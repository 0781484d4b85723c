"""Regenerate docs/cli.md from the commands' --help (run after changing a command).

Usage: python scripts/gen_cli_docs.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

from generated_doc import write_or_check

from ctxdb.cli.reference import render_reference

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def main() -> int:
    return write_or_check(DOC, render_reference(), "gen_cli_docs.py")


if __name__ == "__main__":
    sys.exit(main())
