"""ctxdb: a database-first context store for fleets of AI coding agents.

The library entry point is :func:`ctxdb.open`, which returns a :class:`ctxdb.service.Ctxdb`
bound to the database named by the settings. The seed-compatible classes live in
:mod:`ctxdb.compat`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ctxdb.service import Ctxdb
    from ctxdb.settings import Settings


def open(settings: Settings | None = None, **overrides: Any) -> Ctxdb:
    """Open the store named by ``settings`` (default: loaded from the environment)."""
    from ctxdb.service import Ctxdb
    from ctxdb.settings import load_settings

    if settings is None:
        settings = load_settings(**overrides)
    elif overrides:
        settings = settings.replace(**overrides)
    return Ctxdb.open(settings)
