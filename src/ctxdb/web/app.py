"""The dashboard as an ASGI application of its own, which ``ctxdb serve`` mounts at ``/ui``.

Its own application, rather than routes among the API's, because its answers differ from
the API's in kind: HTML pages, errors shown as pages, a sign-in that redirects, and the
security headers of a browser front end (:class:`~ctxdb.web.render.SecurityHeaders`) on
everything it serves, static files included. Like every front end it calls only the
service layer.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ctxdb.errors import AuthenticationError, CtxdbError
from ctxdb.service import Ctxdb
from ctxdb.web import fleet, instance, live, project, work
from ctxdb.web.render import REGION_HEADER, SecurityHeaders, Unchanged, page
from ctxdb.web.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    clear_cookie,
    new_login_csrf,
    posting_viewer,
    read_form,
    set_cookie,
    viewer_of,
)

STATUS_BY_CATEGORY = {"invalid": 400, "limit": 422, "unauthenticated": 401, "forbidden": 403,
                      "not_found": 404, "conflict": 409, "storage": 503}
SESSION_SECONDS = 12 * 3600


def create_dashboard(db: Ctxdb, feed: live.Feed) -> FastAPI:
    """The dashboard over an open store (the caller closes it); ``feed`` streams the change
    feed to its pages (``/ui/events``)."""
    dashboard = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    dashboard.state.db = db
    dashboard.state.feed = feed
    for module in (fleet, work, instance, project, live):
        dashboard.include_router(module.routes)
    dashboard.add_api_route("/login", login_page, methods=["GET"])
    dashboard.add_api_route("/login", login, methods=["POST"])
    dashboard.add_api_route("/logout", logout, methods=["POST"])
    dashboard.mount("/static", StaticFiles(packages=[("ctxdb.web", "static")]), name="static")
    dashboard.add_exception_handler(CtxdbError, shown_error)  # type: ignore[arg-type]
    dashboard.add_exception_handler(Unchanged, not_modified)  # type: ignore[arg-type]
    dashboard.add_exception_handler(RequestValidationError, bad_request)  # type: ignore[arg-type]
    dashboard.add_exception_handler(StarletteHTTPException, no_such_page)  # type: ignore[arg-type]
    dashboard.add_middleware(SecurityHeaders)
    return dashboard


def login_page(request: Request) -> Response:
    return login_form(request)


def login_form(request: Request, error: str = "", status_code: int = 200) -> Response:
    """The sign-in form (with ``error`` after a refusal: never taken from the request)."""
    token = new_login_csrf()
    answer = page(request, "login.html", {"title": "Sign in", "login_csrf": token,
                                          "error": error}, status_code=status_code)
    set_cookie(request, answer, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return answer


async def login(request: Request) -> Response:
    form = await read_form(request)
    check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), form)
    secret = form.get("token", "").strip()
    try:
        await run_in_threadpool(viewer_of, request.app.state.db, secret)
    except AuthenticationError as exc:
        return login_form(request, f"Sign-in refused: {exc.message}", status_code=401)
    answer = RedirectResponse(f"{request.scope.get('root_path', '')}/", status_code=303)
    set_cookie(request, answer, SESSION_COOKIE, secret, max_age=SESSION_SECONDS)
    clear_cookie(request, answer, LOGIN_CSRF_COOKIE)
    return answer


async def logout(request: Request) -> Response:
    await posting_viewer(request)
    answer = RedirectResponse(f"{request.scope.get('root_path', '')}/login", status_code=303)
    clear_cookie(request, answer, SESSION_COOKIE)
    return answer


def shown_error(request: Request, exc: CtxdbError) -> Response:
    """A refused request: to the sign-in page when not signed in (a form posted after the
    token was revoked too; a region poll gets a bare 401, so that the page's script sends
    the person there), else a page naming the error."""
    status = STATUS_BY_CATEGORY.get(exc.category, 500)
    if status == 401:
        if request.headers.get(REGION_HEADER) == "1":
            return Response(status_code=401)
        answer = RedirectResponse(f"{request.scope.get('root_path', '')}/login", status_code=303)
        clear_cookie(request, answer, SESSION_COOKIE)
        return answer
    return page(request, "error.html", {"title": "Error", "message": exc.message,
                                        "code": exc.code}, status_code=status)


def not_modified(request: Request, exc: Unchanged) -> Response:
    return Response(status_code=304, headers={"ETag": exc.etag, "Cache-Control": "no-cache"})


def no_such_page(request: Request, exc: StarletteHTTPException) -> Response:
    message = {404: "there is no such page", 405: "this page does not take that method"}.get(
        exc.status_code, str(exc.detail))
    return page(request, "error.html", {"title": "Error", "message": message,
                                        "code": "http"}, status_code=exc.status_code)


def bad_request(request: Request, exc: RequestValidationError) -> Response:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(part) for part in first.get("loc", ()))
    return page(request, "error.html", {"title": "Error", "message": f"{where}: {first['msg']}",
                                        "code": "invalid_input"}, status_code=400)

