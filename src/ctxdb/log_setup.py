"""Setting up logging for ctxdb's own processes: the CLI, ``ctxdb serve`` and ``ctxdb mcp``.

See :mod:`ctxdb.logs` for the loggers. :func:`configure` sends records to stderr (never
stdout: it carries command output, and MCP's protocol) at the level of ``-v``/``-vv`` or
``$CTXDB_LOG_LEVEL`` (default WARNING), as text or, with ``--log-format json`` or
``$CTXDB_LOG_FORMAT=json``, one JSON object per line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ctxdb.errors import ConfigError
from ctxdb.logs import DEBUG, INFO, WARNING

LEVEL_ENV = "CTXDB_LOG_LEVEL"
FORMAT_ENV = "CTXDB_LOG_FORMAT"
FORMATS = ("text", "json")
LEVELS = {"DEBUG": DEBUG, "INFO": INFO, "WARNING": WARNING, "ERROR": logging.ERROR,
          "CRITICAL": logging.CRITICAL}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The attributes every LogRecord has; any other one came from ``extra=`` and is logged too.
_RECORD_FIELDS = frozenset({
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
    "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
    "relativeCreated", "thread", "threadName", "processName", "process", "taskName",
    "message", "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colours
})


def resolve_level(verbosity: int = 0) -> int:
    """``-v`` INFO, ``-vv`` DEBUG; without them ``$CTXDB_LOG_LEVEL``, else WARNING."""
    if verbosity > 0:
        return INFO if verbosity == 1 else DEBUG
    named = os.environ.get(LEVEL_ENV, "").strip()
    if not named:
        return WARNING
    level = LEVELS.get(named.upper())
    if level is None:
        raise ConfigError(f"{LEVEL_ENV}={named!r} is not a log level: expected one of "
                          f"{', '.join(LEVELS)}", setting=LEVEL_ENV)
    return level


def resolve_format(chosen: str | None = None) -> str:
    """``chosen`` (an option), else ``$CTXDB_LOG_FORMAT``, else ``text``."""
    named = (chosen or os.environ.get(FORMAT_ENV, "") or "text").strip().lower()
    if named not in FORMATS:
        raise ConfigError(f"{FORMAT_ENV}={named!r} is not a log format: expected one of "
                          f"{', '.join(FORMATS)}", setting=FORMAT_ENV)
    return named


@dataclass(frozen=True)
class LogChoice:
    """The level and format :func:`configure` chose (passed on to server workers)."""

    level: int
    format: str


def configure(verbosity: int = 0, log_format: str | None = None) -> LogChoice:
    """Send log records to stderr at the level and in the format chosen (see the module's
    docstring); ctxdb's loggers at that level, other libraries' at WARNING. Calling it again
    replaces what an earlier call set up."""
    level, chosen_format = resolve_level(verbosity), resolve_format(log_format)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if chosen_format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    logging.getLogger("ctxdb").setLevel(level)
    return LogChoice(level, chosen_format)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (a test's capture, a
    redirected stream), never to stdout."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, process, the
    ``extra`` fields, and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name,
            "message": record.getMessage(), "pid": record.process,
        }
        entry.update({key: value for key, value in record.__dict__.items()
                      if key not in _RECORD_FIELDS and not key.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
