"""``ctxdb hook --client …`` without click: the path every agent event starts on.

A client starts one ``ctxdb`` process per event (on every prompt), and importing click and the
command tree costs more than the hook's own work. So ``ctxdb.cli.main.main`` asks
:func:`hook_arguments` first: a well-formed ``hook --client C [--deadline S]`` runs
:func:`run_hook_command` directly; anything else — ``--help``, a bad client or deadline, an
unknown option, global options before ``hook`` — returns None and goes through click, which
gives the usual help and usage errors. The click command (``ctxdb.cli.hook``) calls the same
:func:`run_hook_command`, so both paths behave alike.

This module imports nothing heavy at the top: ``main`` imports it in every ``ctxdb`` process.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctxdb.settings import Settings

MIN_DEADLINE = 0.05  # seconds; the click option's lower bound too
_OPTIONS = ("--client", "--deadline")


def hook_arguments(argv: list[str]) -> tuple[str, float | None] | None:
    """``(client, deadline)`` when ``argv`` is exactly a valid ``hook`` invocation, else None.

    Accepts only what click would accept with the same meaning (``--opt value`` or
    ``--opt=value``, each option at most once), so the fast path never changes an outcome.
    """
    if not argv or argv[0] != "hook":
        return None
    from ctxdb.domain.agents import CLIENTS  # imported only on the hook path

    values: dict[str, str] = {}
    rest = iter(argv[1:])
    for argument in rest:
        name, equals, value = argument.partition("=")
        if name not in _OPTIONS or name in values:
            return None
        if not equals:
            value = next(rest, "")
            if not value or value.startswith("-"):
                return None
        values[name] = value
    client = values.get("--client")
    if client not in CLIENTS:
        return None
    if "--deadline" not in values:
        return client, None
    deadline = _deadline(values["--deadline"])
    return None if deadline is None else (client, deadline)


def _deadline(text: str) -> float | None:
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= MIN_DEADLINE else None


def run_hook_command(client: str, deadline: float | None,
                     load_settings: Callable[[], Settings] | None = None) -> int:
    """Read the event on stdin, handle it, print the output if any. Always returns 0.

    ``load_settings`` defaults to the settings of the environment and config file (what
    ``ctxdb`` without ``--url``/``--config`` uses); it is called inside the deadline.
    """
    from ctxdb.hooks.dispatch import run_hook

    try:
        raw = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    except OSError:
        raw = ""
    output = run_hook(client, raw, load_settings or _default_settings, deadline)
    if output is not None:
        try:
            sys.stdout.write(output + "\n")
            sys.stdout.flush()
        except OSError:  # the client stopped reading: nothing more to tell it
            pass
    return 0


def _default_settings() -> Settings:
    from ctxdb.settings import load_settings

    return load_settings()
