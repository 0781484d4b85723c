"""Who is looking: the sign-in cookie, checked against the database on every request.

The session cookie holds the API token the person signed in with (``ctxdb token create``),
HttpOnly, SameSite=Strict, and Secure when the request came over TLS. Nothing is kept on the
server: every request reads the token back from the database, so revoking or expiring it
signs the person out at their next request, and any replica of the server can answer.

Every form carries a CSRF token that is an HMAC of the session's secret: an attacker's page
can neither read the cookie nor compute the HMAC, and the token changes with the session.
The sign-in form, before a session exists, is protected by a random value sent both as a
cookie and as a form field (the double-submit pattern).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from ctxdb.domain.access import allows
from ctxdb.domain.vocabulary import TokenScope
from ctxdb.errors import (
    AuthenticationError,
    PermissionDeniedError,
    ProjectNotFoundError,
    ValidationError,
)
from ctxdb.service import Ctxdb
from ctxdb.web.render import check_unchanged

SESSION_COOKIE = "ctxdb_session"
LOGIN_CSRF_COOKIE = "ctxdb_login_csrf"
CSRF_FIELD = "csrf"
MAX_FORM_BYTES = 64 * 1024


class CsrfError(PermissionDeniedError):
    """A form arrived without the CSRF token of the session that shows it."""

    code = "csrf_failed"


@dataclass(frozen=True)
class Viewer:
    """A signed-in person: their token (never its secret), a facade whose audit rows name
    the token (``token:<id>``), and the CSRF token their forms carry."""

    token: dict[str, Any]
    db: Ctxdb
    csrf: str

    @property
    def actor(self) -> str:
        return f"token:{self.token['token_id']}"

    @property
    def fleet_wide(self) -> bool:
        return self.token["project_id"] is None

    @property
    def can_write(self) -> bool:
        return allows(TokenScope(self.token["scope"]), TokenScope.WRITE)

    def project(self, project_id: str) -> str:
        """``project_id`` when the token may see it; another project's id is answered
        exactly like one that does not exist."""
        if not self.fleet_wide and project_id != self.token["project_id"]:
            raise ProjectNotFoundError(f"unknown project {project_id!r}", project_id=project_id)
        return project_id

    def need_write(self) -> None:
        if not self.can_write:
            raise PermissionDeniedError(
                f"token {self.token['token_id']} has scope {self.token['scope']}; deciding "
                "needs a write token", needed=TokenScope.WRITE.value)


def csrf_of(secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), b"ctxdb dashboard csrf", hashlib.sha256).hexdigest()


def over_tls(request: Request) -> bool:
    """Whether the browser reached us over TLS (directly, or through a proxy that says so)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def set_cookie(request: Request, response: Response, name: str, value: str,
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite="strict", secure=over_tls(request))


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="strict",
                           secure=over_tls(request))


def viewer_of(db: Ctxdb, secret: str | None) -> Viewer:
    """The viewer whose session cookie holds ``secret``; ``AuthenticationError`` without
    one, or when the token is unknown, revoked or expired (read from the database now)."""
    if not secret:
        raise AuthenticationError("not signed in")
    token = db.access_tokens.authenticate(secret)
    actor = f"token:{token['token_id']}"
    return Viewer(token, Ctxdb(db.storage, db.settings.replace(actor=actor)), csrf_of(secret))


def current_viewer(request: Request) -> Viewer:
    """A dependency of every page (a plain ``def``: its database read runs in a worker). A
    poll of a page's live region whose data did not change ends here, with a 304."""
    viewer = viewer_of(request.app.state.db, request.cookies.get(SESSION_COOKIE))
    project_id = request.path_params.get("project_id")
    if project_id is not None:
        viewer.project(project_id)
    check_unchanged(request, viewer.db, viewer.token["project_id"])
    return viewer


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form (the first value of each)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ValidationError(f"the form is larger than {MAX_FORM_BYTES} bytes")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def check_csrf(expected: str | None, form: dict[str, str]) -> None:
    given = form.get(CSRF_FIELD, "")
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise CsrfError("the form's CSRF token is missing or wrong: reload the page and "
                        "submit again")


async def posting_viewer(request: Request) -> tuple[Viewer, dict[str, str]]:
    """The viewer of a form post and its fields, refused unless the form carries the CSRF
    token of this viewer's session."""
    form = await read_form(request)
    viewer = await run_in_threadpool(current_viewer, request)
    check_csrf(viewer.csrf, form)
    return viewer, form


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)
