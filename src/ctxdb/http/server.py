"""Running the application under uvicorn: ``ctxdb serve``.

Each worker process opens its own store (a factory builds the app in the worker). On SIGTERM
or SIGINT uvicorn stops accepting connections and lets requests in flight finish (up to
``graceful_seconds``); the store is closed after the last one, so every write that was
acknowledged has been committed. The change feed's streams, which never end by themselves,
are ended as the signal comes (``event_routes.end_streams``).

Logging: each worker sets it up as the ``ctxdb serve`` that started it did (level and format
passed on in the environment, :func:`ctxdb.log_setup.configure`), uvicorn's own loggers
included, so ``CTXDB_LOG_FORMAT=json`` makes every line on stderr (startup, requests,
shutdown) one JSON object. The access log (``uvicorn.access``: one line per request, about
a twentieth of a busy worker's CPU) is left out with ``access_log=False``
(``--no-access-log``): uvicorn then gives that logger no handler and stops its propagation.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType

import uvicorn
from fastapi import FastAPI

from ctxdb.http.app import DEFAULT_MAX_BODY_BYTES, create_app
from ctxdb.http.event_routes import end_streams
from ctxdb.log_setup import FORMAT_ENV, LEVEL_ENV, LogChoice, configure
from ctxdb.service import Ctxdb
from ctxdb.service.operations.row_security import server_warning
from ctxdb.service.operations.schema import location
from ctxdb.settings import load_settings

# How the settings reach worker processes, which uvicorn starts from an import string.
_ENV_URL, _ENV_CONFIG = "CTXDB_SERVE_URL", "CTXDB_SERVE_CONFIG"
_ENV_MAX_BODY = "CTXDB_SERVE_MAX_BODY"

log = logging.getLogger(__name__)


def app_from_environment() -> FastAPI:
    """The app of one worker: its own store, opened here and closed at shutdown."""
    configure()  # from CTXDB_LOG_LEVEL and CTXDB_LOG_FORMAT, which serve() set
    settings = load_settings(config_file=os.environ.get(_ENV_CONFIG) or None,
                             url=os.environ.get(_ENV_URL) or None)
    if settings.sqlite_group_commit is None:
        # A server's many request threads write at once: on SQLite they share COMMITs
        # (storage/group_commit.py) unless the settings say otherwise.
        settings = settings._replace(sqlite_group_commit=True)
    db = Ctxdb.open(settings)
    if warning := server_warning(db.row_security):
        log.warning("%s", warning)
    app = create_app(db, max_body_bytes=int(os.environ.get(_ENV_MAX_BODY,
                                                           DEFAULT_MAX_BODY_BYTES)))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        _before_stopping(lambda: end_streams(app))
        _freeze_startup_objects()
        log.info("worker %d serving %s (event loop: %s, HTTP parser: %s)", os.getpid(),
                 location(settings), _event_loop(), _http_parser())
        try:
            yield
        finally:
            db.close()
            log.info("worker %d stopped; its store is closed", os.getpid())

    app.router.lifespan_context = lifespan
    return app


def _freeze_startup_objects() -> None:
    """Leave what the worker built before serving (modules, classes, the app and its
    validators: over a hundred thousand objects, alive until the process ends) out of the
    garbage collector's passes. Requests allocate enough to set off a collection every few
    requests, and the older generations' passes walked all of those objects again: on the
    fleet's mix the collector's share of a worker's CPU fell from about 6% to 3%."""
    gc.collect()
    gc.freeze()


def _event_loop() -> str:
    """uvloop when uvicorn found it (the server extra installs it), else asyncio's own."""
    import asyncio

    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") \
        else "asyncio"


def _http_parser() -> str:
    """httptools when importable: uvicorn's ``http="auto"`` picks it then, else h11 (pure
    Python, more CPU per request)."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def _before_stopping(action: Callable[[], None]) -> None:
    """Run ``action`` when SIGTERM or SIGINT asks the server to stop, then uvicorn's own
    handler (installed before the app starts; it lets requests in flight finish)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for number in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(number)
        if not callable(previous):
            continue

        def handler(sig: int, frame: FrameType | None,
                    previous: Callable[[int, FrameType | None], object] = previous) -> None:
            action()
            previous(sig, frame)

        signal.signal(number, handler)


def serve(*, url: str, config_file: str | None, host: str, port: int, workers: int,
          max_body_bytes: int, logging_choice: LogChoice | None = None,
          graceful_seconds: int = 30, access_log: bool = True) -> None:
    if logging_choice is not None:  # the workers log as this process was told to
        os.environ[LEVEL_ENV] = logging.getLevelName(logging_choice.level)
        os.environ[FORMAT_ENV] = logging_choice.format
    os.environ[_ENV_URL] = url
    os.environ[_ENV_CONFIG] = config_file or ""
    os.environ[_ENV_MAX_BODY] = str(max_body_bytes)
    uvicorn.run("ctxdb.http.server:app_from_environment", factory=True, host=host, port=port,
                workers=workers, timeout_graceful_shutdown=graceful_seconds,
                log_level="info", server_header=False, access_log=access_log,
                log_config=None)  # uvicorn's loggers go through ctxdb's (configure())

