"""ctxdb: a database-first context store for fleets of AI coding agents.

The library entry point is :func:`ctxdb.open`, which returns a :class:`ctxdb.service.Ctxdb`
bound to the database named by the settings; :func:`ctxdb.connect` gives the same services
over the HTTP API of a ``ctxdb serve``. The seed-compatible classes live in
:mod:`ctxdb.compat`.
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False  # typing's own import costs every hook process (docs/benchmarks.md)
if TYPE_CHECKING:
    from typing import Any

    from ctxdb.client import RemoteCtxdb
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


def connect(url: str, token: str, *, project_id: str | None = None,
            timeout: float = 30.0) -> RemoteCtxdb:
    """The services of the ``ctxdb serve`` at ``url``, as :func:`open` gives a database's
    (docs/api.md). Needs the ``client`` extra (README: Install)."""
    try:
        from ctxdb.client import connect as connect_to
    except ModuleNotFoundError as exc:
        from ctxdb.errors import ConfigError

        raise ConfigError(f"ctxdb.connect needs the client extra ({exc.name} is missing): "
                          f"pip install '.[client]' in a clone of ctxdb") from exc
    return connect_to(url, token, project_id=project_id, timeout=timeout)
