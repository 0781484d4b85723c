"""Options and parameter types shared by the command groups."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ctxdb.cli.application import Application
from ctxdb.domain.validation import load_json
from ctxdb.errors import InputFileError

F = TypeVar("F", bound=Callable[..., Any])

# click made ParamType generic after 8.1; only the type checker needs the parameters.
if TYPE_CHECKING:
    ParamBase = click.ParamType[Any]
else:
    ParamBase = click.ParamType


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.ensure_object(Application).json_output = True
    return value


def json_option(func: F) -> F:
    """``--json``: machine-readable JSON on stdout and nothing else (errors as JSON too)."""
    # Eager, so that the flag is known before any other parameter can fail to parse.
    return click.option(
        "--json", "as_json", is_flag=True, is_eager=True, callback=_remember_json,
        help="Print machine-readable JSON (and nothing else) on stdout.",
    )(func)


def project_option(func: F) -> F:
    return click.option("--project", "-p", "project_id", required=True, metavar="PROJECT_ID",
                        help="The project (an id like proj_…).")(func)


class JsonText(ParamBase):
    """A parameter given as JSON text, parsed to a Python value."""

    name = "json"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return load_json(value, f"the value of {param.name if param else 'a parameter'}")
        except json.JSONDecodeError as exc:
            self.fail(f"not valid JSON ({exc}): {value!r}", param, ctx)


class JsonObject(JsonText):
    name = "json-object"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        parsed = super().convert(value, param, ctx)
        if not isinstance(parsed, dict):
            self.fail(f"must be a JSON object like '{{\"key\": \"value\"}}', got {value!r}",
                      param, ctx)
        return parsed


JSON_OBJECT = JsonObject()


def read_input_text(source: str, errors: str = "strict") -> str:
    """The text of the file ``source`` ('-': stdin), as UTF-8; a file that is missing,
    unreadable, a folder or (with strict ``errors``) not UTF-8 text is an ``InputFileError``
    naming it and the problem, not a traceback."""
    name = "stdin" if source == "-" else source
    try:
        if source == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(source, "rb") as handle:
                data = handle.read()
    except FileNotFoundError:
        raise InputFileError(f"{name}: no such file", path=name, reason="missing") from None
    except IsADirectoryError:
        raise InputFileError(f"{name} is a folder, not a file", path=name,
                             reason="directory") from None
    except PermissionError:
        raise InputFileError(f"{name}: permission denied", path=name,
                             reason="unreadable") from None
    except OSError as exc:
        raise InputFileError(f"cannot read {name}: {exc.strerror or exc}", path=name,
                             reason="unreadable") from None
    try:
        return data.decode("utf-8", errors)
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{name} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "give a text file", path=name, reason="not_utf8", offset=exc.start) from None


def read_content(content: str | None, file: str | None, as_text: bool) -> Any:
    """The content of a context item: the argument, a file, or stdin; JSON unless ``as_text``."""
    if content is not None and file is not None:
        raise click.UsageError("give the content either as an argument or with --file, not both")
    if content is None:
        if file is None and sys.stdin.isatty():
            raise click.UsageError("no content: give it as an argument, with --file, or on stdin")
        content = read_input_text("-" if file is None else file)
        if not as_text:
            content = content.strip()
    if as_text:
        return content
    if not content:
        raise click.UsageError("the content is empty; pass JSON such as '{\"note\": \"…\"}'")
    try:
        return load_json(content, "the content")
    except json.JSONDecodeError as exc:
        raise click.UsageError(
            f"the content is not valid JSON ({exc}); use --text to store plain text"
        ) from None


def content_options(func: F) -> F:
    """CONTENT argument plus --file and --text, shared by store and supersede."""
    func = click.option("--text", "as_text", is_flag=True,
                        help="Store the content as a plain string instead of parsing JSON.")(func)
    func = click.option("--file", "-f", "file", type=click.Path(dir_okay=False,
                                                                allow_dash=True),
                        help="Read the content from a file ('-' for stdin).")(func)
    return click.argument("content", required=False)(func)
