"""The command reference in docs/cli.md, generated from the commands' own ``--help``.

``scripts/gen_cli_docs.py`` writes it; a test fails when the file is out of date, so a command,
option, setting or exit code cannot go undocumented.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

from ctxdb.cli.output import EXIT_CODE_MEANINGS
from ctxdb.settings import CONFIG_ENV
from ctxdb.settings_sources import SETTINGS_HELP

HELP_WIDTH = 100

INTRO = """\
# The `ctxdb` command

`ctxdb` is the command-line front end of ctxdb: it parses input, calls the service layer and
renders the result. This file is generated from the commands' `--help` by
`scripts/gen_cli_docs.py`; a test fails when it is out of date.

## Conventions

- **Database**: `--url` (before the command: `ctxdb --url /tmp/x.db project list`), else
  `CTXDB_URL`, else the config file, else `ctxdb.db` in the user's data directory
  (`$XDG_DATA_HOME/ctxdb/`, by default `~/.local/share/ctxdb/`). A SQLite file is created and
  upgraded when first opened; an empty PostgreSQL database gets its schema when first opened, and
  one at an older version is upgraded only by `ctxdb init` or `ctxdb db upgrade`.
- **Through a server**: with `--url http(s)://host:port` (or `CTXDB_URL`) and a token in
  `CTXDB_TOKEN`, the everyday commands (project, phase, instance, tokens, context, memory,
  session, task, message, approval, command, checkpoint, search, summary, audit) run through
  the server's HTTP API (`ctxdb.connect`), with the same output. Commands on the database
  itself (init, db, backup, restore, gc, import, export, doctor, demo, serve, mcp,
  ingest-transcript, token) and `context --as-new-session` (or without `--project`) exit 2
  with the error `local_only`: run them on the server host. A token's refusal exits 8.
- **Output**: people get Rich tables. `--json` (on every command that prints data) prints
  machine-readable JSON and nothing else on stdout.
- **Errors** go to stderr as one line, `error: <message>`; with `--json`, as one JSON object
  `{"error": <code>, "message": …, "exit_code": …, …details}`. Bad input changes nothing.
- **Limits** of every JSON ctxdb takes (content, metadata, state, bodies, import files, bundle
  lines): at most 100 levels of nesting and integers of at most 4,300 digits; over one is an
  error naming it (exit 2). Input files and stdin must be UTF-8 text.
- **Exit codes** are listed below; each error's `category` (see `ctxdb.errors`) picks its code
  in one table (`ctxdb.cli.output.EXIT_CODES`).
"""


def exit_code_table() -> str:
    rows = ["| exit code | meaning |", "| --- | --- |"]
    rows += [f"| {code} | {meaning} |" for code, meaning in EXIT_CODE_MEANINGS]
    return "\n".join(rows)


def environment_table() -> str:
    rows = ["| variable | meaning |", "| --- | --- |"]
    rows += [f"| `{s.env_var}` | {s.help} |" for s in SETTINGS_HELP]
    rows.append(f"| `{CONFIG_ENV}` | the TOML config file to read (see configuration.md) |")
    return "\n".join(rows)


def walk(command: click.Command, ctx: click.Context) -> Iterator[click.Context]:
    """The context of ``command`` and of every subcommand below it, depth first."""
    yield ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, sub.make_context(name, [], parent=ctx,
                                                      resilient_parsing=True))


def command_reference(root: click.Command) -> str:
    top = root.make_context("ctxdb", [], resilient_parsing=True,
                            terminal_width=HELP_WIDTH, max_content_width=HELP_WIDTH)
    sections = []
    for ctx in walk(root, top):
        help_text = ctx.command.get_help(ctx).rstrip()
        sections.append(f"### `{ctx.command_path}`\n\n```text\n{help_text}\n```")
    return "\n\n".join(sections)


def render_reference() -> str:
    from ctxdb.cli.main import cli

    return "\n\n".join([
        INTRO.rstrip(),
        "## Exit codes\n\n" + exit_code_table(),
        "## Environment variables\n\nEvery setting can also be set in the TOML config file "
        "(see [configuration.md](configuration.md)); the environment wins over the file, "
        "`--url` wins over both.\n\n" + environment_table(),
        "## Commands\n\n" + command_reference(cli),
    ]) + "\n"
