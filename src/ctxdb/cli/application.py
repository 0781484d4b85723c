"""The application object: one per invocation, carried down in the click context.

It holds the global options and loads the settings once, on first use, so that ``--help``
works even when a ``CTXDB_*`` variable is broken; it opens the store once and closes it when
the invocation ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        self._settings: Settings | None = None
        self._db: Ctxdb | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from ctxdb.settings import load_settings

            self._settings = load_settings(config_file=self.config, url=self.url)
        return self._settings

    def db(self) -> Ctxdb:
        """The store named by the settings, opened on first use (schema checked)."""
        if self._db is None:
            from ctxdb.service import Ctxdb

            self._db = Ctxdb.open(self.settings)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


pass_app = click.make_pass_decorator(Application, ensure=True)
