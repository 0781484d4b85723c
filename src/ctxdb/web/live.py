"""``GET /ui/events``: the change feed for the dashboard's pages, signed in by the cookie.

A browser's ``EventSource`` cannot send the ``Authorization`` header that ``/v1/events``
needs, so the dashboard has its own door to the same feed (the same stream code, which the
server hands the dashboard: :data:`Feed`). It follows the projects of the signed-in token (a
project's token: its project; a fleet-wide token: every project, or ``?project_id=``), is
ended at the next heartbeat once the token is revoked or expired (and reconnecting is then
refused with 401), and answers only the dashboard's own pages: a request another site made
(``Sec-Fetch-Site`` other than ``same-origin``, or an ``Origin`` other than this server's) is
refused with 403. The session cookie is ``SameSite=Strict`` and nothing here allows CORS, so
this is a second wall, not the only one.

Each event only tells the page that something changed (which project, which record); the
page then asks for its live region as a poll would (docs/dashboard.md, "Live updates"), so
what it shows is still read, and filtered, by the page itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Protocol

from fastapi import APIRouter, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from ctxdb.errors import AuthenticationError
from ctxdb.service import Ctxdb
from ctxdb.service.usecases.changes import Position
from ctxdb.web.session import SESSION_COOKIE, Viewer, over_tls, viewer_of

routes = APIRouter()


class Feed(Protocol):
    """The change feed as a streaming response (``http.event_routes.feed_response`` bound to
    the server's application, whose shutdown ends the stream)."""

    def __call__(self, db: Ctxdb, scope: str | None, start: Position,
                 still_allowed: Callable[[], bool]) -> Response: ...


def same_origin(request: Request) -> bool:
    """Whether the request came from a page of this server (as far as the browser says:
    a browser sends ``Sec-Fetch-Site``, and ``Origin`` on cross-origin requests)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return False
    origin = request.headers.get("origin")
    scheme = "https" if over_tls(request) else request.url.scheme  # TLS ended at a proxy
    return origin is None or origin == f"{scheme}://{request.url.netloc}"


def still_signed_in(db: Ctxdb, secret: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            viewer_of(db, secret)
        except AuthenticationError:
            return False
        return True

    return check


def followed(viewer: Viewer, project_id: str | None) -> str | None:
    """The project whose changes the viewer follows (``None``: every one of a fleet token)."""
    if project_id is None:
        return None if viewer.fleet_wide else str(viewer.token["project_id"])
    viewer.project(project_id)
    viewer.db.projects.get(project_id)  # an unknown project is refused, not followed
    return project_id


@routes.get("/events", name="events")
async def follow_changes(
        request: Request, project_id: str | None = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    """The signed-in viewer's change feed, as Server-Sent Events."""
    if not same_origin(request):
        return Response("only the dashboard's own pages may follow its feed", status_code=403,
                        media_type="text/plain")
    db: Ctxdb = request.app.state.db
    secret = request.cookies.get(SESSION_COOKIE) or ""
    try:
        viewer = await run_in_threadpool(viewer_of, db, secret)
    except AuthenticationError:
        # A bare 401 (not the sign-in page): EventSource gives up, and the page's poll,
        # which it falls back to, sends the person to sign in.
        return Response(status_code=401)
    scope = await run_in_threadpool(followed, viewer, project_id)
    start = await run_in_threadpool(viewer.db.changes.start, last_event_id)
    feed: Feed = request.app.state.feed
    return feed(viewer.db, scope, start, still_signed_in(db, secret))
