"""Rendering: JSON for machines, Rich tables for people, one-line errors with exit codes.

``rich`` is imported only when something is rendered for a person; JSON output and error
lines use click alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

PIPED_WIDTH = 160

# The one table from an error's category (see ctxdb.errors) to the process exit code.
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
# Not an error's: `ctxdb doctor` ran and found a failed check.
EXIT_UNHEALTHY = 7
EXIT_CODES: dict[str, int] = {
    "internal": EXIT_INTERNAL,
    "invalid": EXIT_USAGE,
    "not_found": 3,
    "conflict": 4,
    "limit": 5,
    "storage": 6,
    # Raised by the server's token checks (`ctxdb serve`), not by a local command.
    "unauthenticated": 8,
    "forbidden": 8,
}
# What each exit code means, as documented in docs/cli.md (a test keeps the two in step).
EXIT_CODE_MEANINGS: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "success"),
    (EXIT_INTERNAL, "internal error (a bug: please report it), or aborted by the user"),
    (EXIT_USAGE, "usage error or invalid input; nothing was changed"),
    (EXIT_CODES["not_found"], "not found: unknown project, phase, instance, item or memory"),
    (EXIT_CODES["conflict"], "conflict or invalid transition (e.g. completing a pending phase, "
                              "a stale memory version, an idempotency key reused for "
                              "another request)"),
    (EXIT_CODES["limit"], "limit exceeded: too many projects or instances, CRITICAL over "
                           "budget, a wait that timed out"),
    (EXIT_CODES["storage"], "storage or database error (unreachable, outdated schema, …)"),
    (EXIT_UNHEALTHY, "`ctxdb doctor` found a failed check"),
    (EXIT_CODES["unauthenticated"], "refused by a server: a missing, unknown, revoked or "
                                    "expired token, or one whose scope does not allow it"),
)


def exit_code_for(category: str) -> int:
    return EXIT_CODES.get(category, EXIT_INTERNAL)


def report_error(message: str, exit_code: int, as_json: bool, /, **fields: Any) -> int:
    """Write one error to stderr (a line, or a JSON object) and return its exit code."""
    if as_json:
        payload = {"error": "error", **fields, "message": message, "exit_code": exit_code}
        click.echo(json.dumps(payload, ensure_ascii=False, default=str), err=True)
    else:
        click.echo(f"error: {message}", err=True)
    return exit_code


# --- machine output --------------------------------------------------------------------------


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def show(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    """Print ``data`` as JSON, or call ``human`` to render it for a person."""
    if as_json:
        emit_json(data)
    else:
        human()


# --- human output ----------------------------------------------------------------------------


def console() -> Console:
    from rich.console import Console

    result = Console(highlight=False)
    # Piped output has no terminal width; Rich would squeeze tables into 80 columns.
    if not result.is_terminal and "COLUMNS" not in os.environ:
        result.width = PIPED_WIDTH
    return result


def say(markup: str) -> None:
    """One line for a person, with Rich markup."""
    console().print(markup)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# Columns whose values must be read whole: an id, a time or a state folded over lines is
# misread. Every other column may wrap, but never narrower than its header.
_WHOLE_COLUMNS = ("version", "status", "state", "priority", "scope", "kind")
_WHOLE_SUFFIXES = ("_id", "_at", "_count", "_tokens", "tokens", "_seq")
_TABLE_CHROME = 4  # Rich's outer border and padding, and 3 per column between them


def _whole(column: str) -> bool:
    return column in _WHOLE_COLUMNS or column.endswith(_WHOLE_SUFFIXES)


def _narrowest(rows: list[list[str]], columns: Sequence[str]) -> int:
    """The narrowest a table of ``rows`` can be with whole columns unwrapped and every other
    column at least as wide as its header."""
    widths = [max([len(column)] + [len(row[i]) for row in rows]) if _whole(column)
              else len(column) for i, column in enumerate(columns)]
    return sum(widths) + 3 * len(columns) + _TABLE_CHROME


def print_table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    title: str | None = None,
    empty: str = "nothing to show",
) -> None:
    """A Rich table of ``columns`` of ``rows``: ids, times and states never wrap, other
    columns never get narrower than their header. When the terminal is too narrow for
    that, each row is printed as a block of ``column: value`` lines instead."""
    from rich.table import Table

    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    if not cells:
        say(f"[dim]{empty}[/dim]")
        return
    out = console()
    if _narrowest(cells, columns) > out.width:
        _print_blocks(cells, columns, title)
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        whole = _whole(column)
        table.add_column(column, no_wrap=whole, overflow="fold", min_width=len(column))
    for values in cells:
        table.add_row(*values)
    out.print(table)


def _print_blocks(cells: list[list[str]], columns: Sequence[str], title: str | None) -> None:
    out = console()
    if title:
        out.print(title)
    label = max(len(column) for column in columns)
    for number, values in enumerate(cells):
        if number:
            out.print()
        for column, value in zip(columns, values, strict=True):
            # The value is markup as it would be in a table cell (some callers colour it).
            out.print(f"[bold]{column:>{label}}[/bold]  {value}", overflow="fold")


def print_record(record: Mapping[str, Any], title: str | None = None) -> None:
    """One record as a two-column table of field and value."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in record.items():
        table.add_row(key, cell(value))
    console().print(table)
