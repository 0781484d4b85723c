"""Where hook failures go: a log file in the user's state directory, never the agent.

``$CTXDB_HOOK_LOG`` names the file; else ``$XDG_STATE_HOME/ctxdb/hook.log``, by default
``~/.local/state/ctxdb/hook.log``. The file is rotated to ``hook.log.1`` past 1 MB. Writing
the log must never fail a hook either, so its own errors are swallowed; text that UTF-8
cannot encode (a lone surrogate from a JSON escape in the payload) is written escaped.
"""

from __future__ import annotations

import os
from pathlib import Path

from ctxdb.private_files import private_directory, private_file

MAX_LOG_BYTES = 1024 * 1024


def log_path() -> Path:
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
    try:
        path = log_path()
        private_directory(path.parent)
        if path.exists() and path.stat().st_size > MAX_LOG_BYTES:
            path.replace(path.with_name(path.name + ".1"))
        private_file(path)  # tracebacks can quote context: the log is as private as the db
        with path.open("a", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write("\n".join(lines) + "\n")
    except (OSError, ValueError):
        pass
