"""Where hook failures go: a log file in the user's state directory, never the agent.

``$CTXDB_HOOK_LOG`` names the file; else ``$XDG_STATE_HOME/ctxdb/hook.log``, by default
``~/.local/state/ctxdb/hook.log``. Its size is bounded: an entry that would take the file
past 1 MB first rotates it to ``hook.log.1`` (replacing the one before), and one entry keeps
at most 64 Ki characters (the start and the end of a longer one, saying how much was cut),
so the two files hold about 2 MB at most, however many hooks fail. Writing the log must
never fail a hook either, so its own errors are swallowed; text that UTF-8 cannot encode (a
lone surrogate from a JSON escape in the payload) is written escaped.

Hooks do not use :mod:`logging`: importing it costs every hook several milliseconds.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ctxdb.private_files import private_directory, private_file

if TYPE_CHECKING:
    from pathlib import Path

MAX_LOG_BYTES = 1024 * 1024
MAX_ENTRY_CHARS = 64 * 1024


def log_path() -> Path:
    from pathlib import Path  # here: a hook that succeeds never needs it

    explicit = os.environ.get("CTXDB_HOOK_LOG")
    if explicit:
        return Path(explicit)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "ctxdb" / "hook.log"


def log_failure(context: str, exc: BaseException | None = None, message: str = "") -> None:
    """Append one entry: time, what was being done, the error and its traceback."""
    # Imported here: a hook that succeeds (the common case) never needs them.
    import traceback
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    lines = [f"{stamp} pid={os.getpid()} {context}: {message}".rstrip()]
    if exc is not None:
        lines.append("".join(traceback.format_exception(exc)).rstrip())
    data = (bounded("\n".join(lines)) + "\n").encode("utf-8", errors="backslashreplace")
    try:
        path = log_path()
        private_directory(path.parent)
        if path.exists() and path.stat().st_size + len(data) > MAX_LOG_BYTES:
            path.replace(path.with_name(path.name + ".1"))
        private_file(path)  # tracebacks can quote context: the log is as private as the db
        with path.open("ab") as handle:
            handle.write(data)
    except (OSError, ValueError):
        pass


def bounded(entry: str, limit: int | None = None) -> str:
    """``entry``, or its start and end with the number of characters left out between."""
    limit = MAX_ENTRY_CHARS if limit is None else limit
    if len(entry) <= limit:
        return entry
    keep = limit // 2
    cut = len(entry) - 2 * keep
    return f"{entry[:keep]}\n[… {cut} characters left out …]\n{entry[-keep:]}"
