"""Templates, and the headers every dashboard answer carries.

A page is rendered whole, or, when the page's script asks for it (``X-Ctxdb-Region: 1``),
only its live region: the part that refreshes without a reload. The region's ETag is
``"<data version>-<hash of its text>"``. The data version is the newest audit entry the
viewer may see (every change is audited in its own transaction, so nothing changes without
a new one) and a 10-second tick (for what changes with time alone: a heartbeat growing
late, a lease expiring). A poll whose version is still current is answered 304 before any
page is built; one whose version moved is rendered, and answered 304 all the same (with the
new tag) when its text did not change, so the page repaints only when something shown did.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ctxdb.service import Ctxdb

REGION_HEADER = "x-ctxdb-region"
TICK_SECONDS = 10
# Nothing inline, nothing from elsewhere: scripts, styles and images come from this server.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "object-src 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode("ascii")),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every answer of the dashboard, errors and static
    files included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_secured)


class Unchanged(Exception):
    """Nothing the viewer may see changed since the region's last fetch: answered 304."""

    def __init__(self, etag: str) -> None:
        super().__init__(etag)
        self.etag = etag


def data_version(db: Ctxdb, project_id: str | None) -> str:
    newest = db.audit_log(project_id=project_id, limit=1)
    return f"{newest[0]['audit_id'] if newest else 0}.{int(time.time() // TICK_SECONDS)}"


def check_unchanged(request: Request, db: Ctxdb, project_id: str | None) -> None:
    """For a poll of a live region: raise :class:`Unchanged` when the data version the
    poll's tag names is still current; else (and for a whole page) keep the version, read
    before the page's data, for the region's tag."""
    version = data_version(db, project_id)
    request.state.data_version = version
    tag = request.headers.get("if-none-match", "")
    if request.headers.get(REGION_HEADER) == "1" and tag.startswith(f'"{version}-'):
        raise Unchanged(tag)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def build_environment() -> Environment:
    env = Environment(loader=PackageLoader("ctxdb.web", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    return env


ENVIRONMENT = build_environment()


def page(request: Request, template: str, context: dict[str, Any],
         status_code: int = 200) -> Response:
    """The page, or only its live region when the page's script polls for it."""
    values = {"request": request, "base": request.scope.get("root_path", ""), **context}
    if request.headers.get(REGION_HEADER) == "1":
        return region(request, template, values)
    if context.get("viewer") is not None and hasattr(request.state, "data_version"):
        # The page carries its region's tag: the script's first refresh is then a 304
        # unless something changed since, instead of replacing what was just shown.
        values["region_etag"] = region_tag(request, region_text(template, values))
    html = ENVIRONMENT.get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def region_text(template: str, values: dict[str, Any]) -> str:
    compiled = ENVIRONMENT.get_template(template)
    return "".join(compiled.blocks["region"](compiled.new_context(values)))


def region_tag(request: Request, html: str) -> str:
    digest = hashlib.sha256(html.encode("utf-8")).hexdigest()[:32]
    return f'"{getattr(request.state, "data_version", "")}-{digest}"'


def region(request: Request, template: str, values: dict[str, Any]) -> Response:
    html = region_text(template, values)
    tag = region_tag(request, html)
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match", "").endswith(f'-{tag.split("-", 1)[1]}'):
        return Response(status_code=304, headers=headers)
    return HTMLResponse(html, headers=headers)
