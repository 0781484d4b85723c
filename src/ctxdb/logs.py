"""ctxdb's loggers: standard :mod:`logging` loggers, one per module, named after it.

An application that embeds ctxdb configures them as it configures any library's. The front
ends (CLI, server, MCP) call ``logging.getLogger(__name__)``. The modules an agent hook
imports (storage, service) take theirs from :func:`get_logger`: the same logger, but
``logging`` itself is only imported where something else already did (importing it costs a
hook several milliseconds, on every prompt). A process that never imported ``logging`` has
configured no handler, so nothing is lost: there a message is dropped before it is built.

ctxdb's own processes (the CLI, ``ctxdb serve``, ``ctxdb mcp``) set logging up in one place,
:func:`ctxdb.log_setup.configure`.
"""

from __future__ import annotations

import sys
from typing import Any

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40


class LazyLogger:
    """``logging.getLogger(name)``, looked up only when a message is logged with ``logging``
    already imported (by ``log_setup.configure``, or by the embedding program)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def debug(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._log(DEBUG, message, args, kwargs)

    def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._log(INFO, message, args, kwargs)

    def warning(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._log(WARNING, message, args, kwargs)

    def _log(self, level: int, message: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> None:
        logging = sys.modules.get("logging")
        if logging is None:
            return
        logger = logging.getLogger(self.name)
        if logger.isEnabledFor(level):
            # stacklevel 3: the record names the caller, not this method or debug/info.
            logger.log(level, message, *args, stacklevel=3, **kwargs)


def get_logger(name: str) -> LazyLogger:
    return LazyLogger(name)
