"""``ctxdb serve``: the HTTP API over the configured database (docs/server.md)."""

from __future__ import annotations

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.errors import ConfigError

# From a clone (README: Install): 'ctxdb' on the public index is another project.
SERVER_HINT = "install ctxdb with its server extra: pip install '.[server]' in a clone of ctxdb"


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (put a TLS proxy in front for anything but loopback).")
@click.option("--port", default=8700, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Worker processes, each with its own connections.")
@click.option("--max-body-bytes", default=2 * 1024 * 1024, show_default=True,
              type=click.IntRange(1), help="Larger request bodies get 413, unread.")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One log line per request (uvicorn.access, INFO, on stderr). Without it a "
                   "busy server spends less CPU per request; errors are logged either way.")
@pass_app
def serve_command(app: Application, host: str, port: int, workers: int,
                  max_body_bytes: int, access_log: bool) -> None:
    """Serve the REST API /v1 with bearer tokens (see `ctxdb token create`).

    /healthz answers without a token; every other route needs one. SIGTERM stops accepting
    connections and lets requests in flight finish. Needs the server extra (README:
    Install).

    \b
    Example:
      ctxdb serve --port 8700 --workers 2
    """
    try:
        from ctxdb.http.server import serve
    except ImportError as exc:
        if (exc.name or "").startswith("ctxdb"):
            raise
        raise ConfigError(f"ctxdb serve needs the server extra, which is not installed "
                          f"({exc}): {SERVER_HINT}") from None
    app.db()  # an unreachable database or an outdated schema fails now, not per request
    app.close()  # each worker opens its own store
    serve(url=app.settings.url, config_file=app.config, host=host, port=port,
          workers=workers, max_body_bytes=max_body_bytes, logging_choice=app.logging,
          access_log=access_log)
