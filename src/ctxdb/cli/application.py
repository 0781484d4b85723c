"""The application object: one per invocation, carried down in the click context.

It holds the global options and loads the settings once, on first use, so that ``--help``
works even when a ``CTXDB_*`` variable is broken; it opens the store once and closes it when
the invocation ends. When the URL names a ctxdb server (``http(s)://…``, with the token of
``CTXDB_TOKEN``), the store is :func:`ctxdb.connect`'s facade over HTTP: the same services
by the same names, so the commands run unchanged; what only a local database offers raises
:class:`ctxdb.errors.LocalOnlyError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import click

if TYPE_CHECKING:
    from ctxdb.log_setup import LogChoice
    from ctxdb.service import Ctxdb
    from ctxdb.settings import Settings


class Application:
    def __init__(self) -> None:
        self.url: str | None = None
        self.config: str | None = None
        self.traceback = False
        self.logging: LogChoice | None = None  # what the root's -v and --log-format chose
        # Set as soon as a command's --json flag is parsed, so errors come out as JSON too.
        self.json_output = False
        # The command about to run when it works on the database itself (main.LOCAL_ONLY):
        # its settings, once loaded, refuse a server URL.
        self.local_only: str | None = None
        self._settings: Settings | None = None
        self._db: Ctxdb | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from ctxdb.settings import load_settings

            self._settings = load_settings(config_file=self.config, url=self.url)
        if self.local_only is not None:
            self.refuse_remote(self.local_only, self._settings)
        return self._settings

    @property
    def remote(self) -> bool:
        """Whether the URL names a ctxdb server rather than a database."""
        return self.settings.is_server

    def db(self) -> Ctxdb:
        """The store named by the settings, opened on first use (schema checked), or the
        server's facade over HTTP."""
        if self._db is None:
            if self.remote:
                self._db = self._connect()
            else:
                from ctxdb.service import Ctxdb

                self._db = Ctxdb.open(self.settings)
        return self._db

    def _connect(self) -> Ctxdb:
        import ctxdb
        from ctxdb.errors import ConfigError

        settings = self.settings
        if not settings.token:
            raise ConfigError(f"{settings.url} is a ctxdb server: set CTXDB_TOKEN to a token "
                              "it issued (ctxdb token create, on the server host; "
                              "docs/server.md)", setting="token")
        # Typed as the local facade: the remote one answers by the same names and raises
        # LocalOnlyError for what it lacks (see ctxdb.client).
        return cast("Ctxdb", ctxdb.connect(settings.url, settings.token))

    @staticmethod
    def refuse_remote(command: str, settings: Settings) -> None:
        """A command on the database itself, refused when the URL names a server."""
        if settings.is_server:
            from ctxdb.errors import LocalOnlyError

            raise LocalOnlyError(
                f"`ctxdb {command}` works on the database itself, not through the ctxdb "
                f"server at {settings.url}: run it on the server host, with CTXDB_URL naming "
                "the database (the SQLite file or postgresql://…)",
                command=command, url=settings.url)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


pass_app = click.make_pass_decorator(Application, ensure=True)
