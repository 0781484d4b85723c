"""The ``ctxdb`` root click group: global options, lazy command groups, errors mapped to exit codes.

Every command runs inside :meth:`CtxdbGroup.main`, which owns the one mapping from errors to
exit codes (see ``output.EXIT_CODES``): a :class:`ctxdb.errors.CtxdbError` exits with the
code of its ``category``, a usage error with 2, anything unexpected with 1. The commands are
registered in ``ctxdb.cli.main.COMMANDS``; a command's module is imported only when it runs.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from ctxdb import __version__
from ctxdb.cli.application import Application
from ctxdb.cli.main import COMMANDS, LOCAL_ONLY
from ctxdb.cli.output import EXIT_INTERNAL, EXIT_USAGE, exit_code_for, report_error
from ctxdb.errors import CtxdbError
from ctxdb.settings import CONFIG_ENV
from ctxdb.settings_sources import SETTINGS_HELP

log = logging.getLogger(__name__)


def _environment_help() -> str:
    lines = ["Environment variables (also settable in the config file):", "", "\b"]
    width = max(len(s.env_var) for s in SETTINGS_HELP)
    lines += [f"  {s.env_var:<{width}}  {s.help}" for s in SETTINGS_HELP]
    lines.append(f"  {CONFIG_ENV:<{width}}  the TOML config file to read")
    lines.append(f"  {'CTXDB_LOG_LEVEL':<{width}}  DEBUG, INFO, WARNING (default), ERROR")
    lines.append(f"  {'CTXDB_LOG_FORMAT':<{width}}  text (default) or json, logs on stderr")
    lines += ["", "Exit codes: 0 ok, 1 internal error, 2 invalid input, 3 not found,",
              "4 conflict, 5 limit exceeded, 6 storage error, 7 doctor found a failure",
              "(see docs/cli.md)."]
    return "\n".join(lines)


class CtxdbGroup(click.Group):
    """The root group: loads subcommands lazily and maps errors to exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoisted(args))

    def main(self, *args: Any, **kwargs: Any) -> Any:
        standalone = kwargs.pop("standalone_mode", True)
        app = kwargs.setdefault("obj", Application())
        try:
            # Typed as Any: click's overloads cannot see that standalone_mode is always False.
            base_main: Any = super().main
            result = base_main(*args, standalone_mode=False, **kwargs)
            code = result if isinstance(result, int) else 0
        except CtxdbError as exc:
            log.debug("%s: exit %s", type(exc).__name__, exit_code_for(exc.category),
                      exc_info=exc)
            code = report_error(exc.message, exit_code_for(exc.category), app.json_output,
                                **exc.to_dict())
        except click.ClickException as exc:
            code = report_error(_usage_message(exc), EXIT_USAGE, app.json_output,
                                error="usage")
        except click.Abort:
            code = report_error("aborted", EXIT_INTERNAL, app.json_output, error="aborted")
        except Exception as exc:
            if app.traceback:
                raise
            log.debug("internal error", exc_info=exc)
            code = report_error(
                f"internal error: {type(exc).__name__}: {exc} (rerun with --traceback "
                "to see where)", EXIT_INTERNAL, app.json_output, error="internal")
        finally:
            app.close()
        if standalone:
            sys.exit(code)
        return code


# The root's options, which a user may also give after the subcommand (`ctxdb project list
# --url …`): click only takes a group's options before its subcommand.
_ROOT_VALUED = ("--url", "--config", "--log-format")
_ROOT_FLAGS = ("--traceback", "--verbose", "-v", "-vv")


def hoisted(args: list[str]) -> list[str]:
    """``args`` with the root's options moved in front of the subcommand, up to a ``--``."""
    front: list[str] = []
    rest: list[str] = []
    position = 0
    while position < len(args):
        arg = args[position]
        if arg == "--":
            rest += args[position:]
            break
        name = arg.split("=", 1)[0]
        if arg in _ROOT_FLAGS or (name in _ROOT_VALUED and "=" in arg):
            front.append(arg)
        elif arg in _ROOT_VALUED and position + 1 < len(args):
            front += args[position:position + 2]
            position += 1
        else:
            rest.append(arg)
        position += 1
    return front + rest


def _usage_message(exc: click.ClickException) -> str:
    message = exc.format_message()
    context = getattr(exc, "ctx", None)
    if context is not None:
        message += f" (see '{context.command_path} --help')"
    return message


@click.group("ctxdb", cls=CtxdbGroup, epilog=_environment_help(),
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", metavar="URL", help="Database: a SQLite file path or postgresql://…, "
              "or a ctxdb server http(s)://… (token: $CTXDB_TOKEN) "
              "(default: $CTXDB_URL, else ctxdb.db in the user's data directory).")
@click.option("--config", metavar="PATH", type=click.Path(dir_okay=False),
              help=f"TOML config file (default: ${CONFIG_ENV}, else "
              "~/.config/ctxdb/config.toml when present).")
@click.option("--traceback", is_flag=True,
              help="Let unexpected (internal) errors raise with their Python traceback.")
@click.option("--verbose", "-v", "verbosity", count=True,
              help="Log what ctxdb does on stderr: -v for INFO, -vv for DEBUG (default: "
              "$CTXDB_LOG_LEVEL, else WARNING).")
@click.option("--log-format", type=click.Choice(("text", "json")),
              help="How log lines look: text, or json (one object per line, for a "
              "long-running serve or mcp). Default: $CTXDB_LOG_FORMAT, else text.")
@click.version_option(__version__, "--version", prog_name="ctxdb")
@click.pass_context
def cli(ctx: click.Context, url: str | None, config: str | None, traceback: bool,
        verbosity: int, log_format: str | None) -> None:
    """ctxdb: a database-first context store for fleets of AI coding agents.

    Projects, phases and agent instances; prioritized context (CRITICAL, HIGH, MEDIUM, LOW)
    loaded back within a token budget; clear-and-reload with handoffs. SQLite by default,
    PostgreSQL with --url postgresql://… (--url, --config, --traceback, --verbose and
    --log-format may also follow the subcommand).

    \b
    Examples:
      ctxdb demo                        a guided tour on a throwaway database
      ctxdb init                        create or upgrade the database
      ctxdb project create Shop --description "e-commerce rewrite"
      ctxdb context --project proj_… --budget-tokens 8000 --format markdown
      ctxdb summary --json
    """
    from ctxdb.log_setup import configure

    app = ctx.ensure_object(Application)
    app.url, app.config, app.traceback = url, config, traceback
    app.logging = configure(verbosity, log_format)
    if ctx.invoked_subcommand in LOCAL_ONLY:
        app.local_only = ctx.invoked_subcommand
