"""Who is calling: the bearer token of each request, read from the database every time.

Nothing is cached beyond the request, so a revoked token is refused from the next request on.
A route states the scope it needs with one of :data:`READ`, :data:`WRITE` or :data:`ADMIN`
as a dependency; the tests enumerate the app's routes and fail on one without.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from ctxdb.domain.access import allows
from ctxdb.domain.vocabulary import TokenScope
from ctxdb.errors import AuthenticationError, PermissionDeniedError, ProjectNotFoundError
from ctxdb.service import Ctxdb


@dataclass(frozen=True)
class Caller:
    """A request's token and a facade whose audit rows name it (``token:<id>``)."""

    token: dict[str, Any]
    db: Ctxdb

    @property
    def fleet_wide(self) -> bool:
        return self.token["project_id"] is None

    def project(self, project_id: str) -> str:
        """``project_id`` when the token may reach it. Another project's id is answered
        exactly as an unknown one (the service's own error), so that nothing tells a
        caller whether a project it may not see exists."""
        if not self.fleet_wide and project_id != self.token["project_id"]:
            raise ProjectNotFoundError(f"unknown project {project_id!r}", project_id=project_id)
        return project_id


def bearer_secret(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise AuthenticationError("no token: send 'Authorization: Bearer <token>'")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
    return secret.strip()


class Need:
    """A dependency: the request's caller, refused unless its token has ``scope``. A plain
    ``def`` that reads the database: on a ``/v1`` route it runs in the endpoint's worker
    thread, before the endpoint (``ctxdb.http.encoding``); elsewhere FastAPI runs it in a
    worker thread of its own."""

    def __init__(self, scope: TokenScope, *, fleet: bool = False) -> None:
        self.scope = scope
        self.fleet = fleet  # operations on every project (creating one) need a fleet token

    def __call__(self, request: Request) -> Caller:
        db: Ctxdb = request.app.state.db
        # The one read made before the project is known: a token is found by its secret's
        # hash among every project's (with row-level security, a fleet-wide scope).
        token = db.scoped(None).access_tokens.authenticate(bearer_secret(request))
        if not allows(TokenScope(token["scope"]), self.scope):
            raise PermissionDeniedError(
                f"token {token['token_id']} has scope {token['scope']}; this needs "
                f"{self.scope.value}", needed=self.scope.value)
        if self.fleet and token["project_id"] is not None:
            raise PermissionDeniedError(
                f"token {token['token_id']} belongs to one project; this needs a fleet-wide "
                f"token (ctxdb token create --all-projects)")
        # Every transaction of the request is scoped to the token's project by PostgreSQL's
        # row-level security too (when set up), a second wall under Caller.project.
        projects = None if token["project_id"] is None else [token["project_id"]]
        caller = Caller(token, db.scoped(projects, actor=f"token:{token['token_id']}"))
        # A route of a project refuses a token of another before its body is even checked.
        project_id = request.path_params.get("project_id")
        if project_id is not None:
            caller.project(project_id)
        return caller


READ = Need(TokenScope.READ)
WRITE = Need(TokenScope.WRITE)
ADMIN = Need(TokenScope.ADMIN)
FLEET_ADMIN = Need(TokenScope.ADMIN, fleet=True)
