"""Who is calling: the bearer token of each request, read from the database every time.

Nothing about a token is cached beyond the request, so a revoked or expired token is refused
from the next request on. What is kept is only the facade a token's requests run on (scoped
to its project, its audit rows naming it: :class:`Facades`), which depends on nothing but the
token's id and project, so that each request does not build it and its services again.
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


class Facades:
    """The facades the app's requests run on: one over every project, for the token lookup,
    and one per token seen (by id and project), kept across requests. A facade holds no
    state of a request (its services keep only the storage and the settings), so the requests
    of one token share it. At most ``limit`` are kept: past that the kept ones are dropped and
    made again as tokens come (a server sees a few tokens, its agents'), so memory stays
    bounded whatever tokens come."""

    def __init__(self, db: Ctxdb, limit: int = 1024) -> None:
        self.db = db
        self.everywhere = db.scoped(None)
        self.limit = limit
        self._of_token: dict[tuple[str, str | None], Ctxdb] = {}

    def of(self, token: dict[str, Any]) -> Ctxdb:
        key = (str(token["token_id"]), token["project_id"])
        facade = self._of_token.get(key)
        if facade is None:
            if len(self._of_token) >= self.limit:
                self._of_token.clear()
            projects = None if token["project_id"] is None else [token["project_id"]]
            # Two requests of a new token may both make one: either does (same scope, actor).
            facade = self._of_token[key] = self.db.scoped(projects,
                                                          actor=f"token:{token['token_id']}")
        return facade


def facades(request: Request) -> Facades:
    """The app's :class:`Facades` (made on first use, over the app's store)."""
    state = request.app.state
    kept: Facades | None = getattr(state, "facades", None)
    if kept is None or kept.db is not state.db:
        kept = state.facades = Facades(state.db)
    return kept


class Need:
    """A dependency: the request's caller, refused unless its token has ``scope``. A plain
    ``def`` that reads the database: on a ``/v1`` route it runs in the endpoint's worker
    thread, before the endpoint (``ctxdb.http.encoding``); elsewhere FastAPI runs it in a
    worker thread of its own."""

    def __init__(self, scope: TokenScope, *, fleet: bool = False) -> None:
        self.scope = scope
        self.fleet = fleet  # operations on every project (creating one) need a fleet token

    def __call__(self, request: Request) -> Caller:
        kept = facades(request)
        # The one read made before the project is known: a token is found by its secret's
        # hash among every project's (with row-level security, a fleet-wide scope).
        token = kept.everywhere.access_tokens.authenticate(bearer_secret(request))
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
        caller = Caller(token, kept.of(token))
        # A route of a project refuses a token of another before its body is even checked.
        project_id = request.path_params.get("project_id")
        if project_id is not None:
            caller.project(project_id)
        return caller


READ = Need(TokenScope.READ)
WRITE = Need(TokenScope.WRITE)
ADMIN = Need(TokenScope.ADMIN)
FLEET_ADMIN = Need(TokenScope.ADMIN, fleet=True)
