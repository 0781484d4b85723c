"""How a hook is invoked: its command line, and the time each event is given.

``ctxdb.cli.main.main`` reads the command line with :func:`hook_arguments` in every
``ctxdb`` process, and both hook paths (``hooks.command`` and the remote short path,
``hooks.remote_entry``) take their deadlines from here. Imports nothing: it starts every
hook process.
"""

from __future__ import annotations

from ctxdb.domain.client_rules import CLIENTS

MIN_DEADLINE = 0.05  # seconds; the click option's lower bound too
# Seconds for the event to arrive on stdin when no --deadline is given. The clients write it
# at once; one that leaves stdin open after a whole event is served as soon as it is there.
INPUT_DEADLINE = 1.0
# Seconds of database work allowed per event, well inside the clients' timeouts (all
# SessionEnd hooks share 1.5 s; UserPromptSubmit has 30 s, the others 60 s by default).
DEADLINES = {
    "SessionStart": 10.0,
    "UserPromptSubmit": 5.0,
    "PreCompact": 25.0,
    "PostCompact": 25.0,
    "Stop": 25.0,
    "SubagentStop": 25.0,
    "SessionEnd": 1.0,
}
# A SessionEnd's database work (the end and its handoff) goes on in a process of its own
# once the hook has exited (hooks.detached): the clients kill their SessionEnd hooks after
# 1.5 s, which a loaded machine's PostgreSQL connection and end transaction can outlast.
# Nothing waits for that process, so it is given this much (or the --deadline, if longer).
DETACHED_DEADLINE = 25.0
DETACHED_EVENTS = frozenset({"SessionEnd"})
# A server that does not answer must not cost every prompt its whole deadline: the hook
# logs why and exits within about a second of its start, whatever its imports took on a busy
# machine. So its PostgreSQL connection must be made within CONNECTED_BY seconds of the
# hook's start (less if pg_connect_timeout says so), but is given at least
# MIN_CONNECT_TIMEOUT. A server slower to connect would slow every prompt anyway.
CONNECTED_BY = 0.6
MIN_CONNECT_TIMEOUT = 0.2
# Through a ctxdb server (CTXDB_URL=http(s)://…) an event takes milliseconds; one that has no
# answer REMOTE_DEADLINE seconds after the hook's start counts as down and the hook goes on
# without it (fail open), unless --deadline asked for longer. The forward stops waiting
# REMOTE_MARGIN before, to log why rather than only that time ran out.
REMOTE_DEADLINE = 1.0
REMOTE_MARGIN = 0.05
_OPTIONS = ("--client", "--deadline")


def hook_arguments(argv: list[str]) -> tuple[str, float | None] | None:
    """``(client, deadline)`` when ``argv`` is exactly a valid ``hook`` invocation, else None.

    Accepts only what click would accept with the same meaning (``--opt value`` or
    ``--opt=value``, each option at most once), so the fast path never changes an outcome.
    """
    if not argv or argv[0] != "hook":
        return None
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
    # abs(nan) < inf is false too: a finite number (math would be one more import)
    return seconds if abs(seconds) < float("inf") and seconds >= MIN_DEADLINE else None


def print_output(output: str) -> None:
    """Write the output as UTF-8 bytes, whatever encoding ``sys.stdout`` was given."""
    import sys

    try:
        sys.stdout.buffer.write((output + "\n").encode("utf-8", errors="backslashreplace"))
        sys.stdout.buffer.flush()
    except (OSError, ValueError, AttributeError):  # the client stopped reading (or gave
        pass  # no stdout): nothing more to tell it
