"""API tokens of ``ctxdb serve``: create (the secret is shown once), list, revoke, and the
check of the token a request presents.

Named apart from ``service/tokens.py`` (an instance's token *usage*). Only the SHA-256 of a
secret is stored. A token is read from the database on every request, never cached, so a
revocation takes effect on the next request. Creating and revoking a token are audited.
"""

from __future__ import annotations

import builtins
import logging
from typing import Any

from ctxdb.domain.access import is_well_formed, new_secret, new_token_id, secret_hash
from ctxdb.domain.validation import (
    check_choice,
    check_identifier,
    check_non_negative_int,
    check_text,
)
from ctxdb.domain.vocabulary import TokenScope
from ctxdb.errors import (
    ApiTokenNotFoundError,
    AuthenticationError,
    CtxdbError,
    ValidationError,
)
from ctxdb.service.common import Service, audit
from ctxdb.service.usecases.projects import require_project
from ctxdb.storage import Row, Tx

MAX_TOKEN_NAME = 200
# A token's use is recorded at most this often (seconds): a write a minute per token in use,
# not one per request.
USE_RECORDED_EVERY = 60


def _view(row: Row) -> dict[str, Any]:
    """A token as it is shown: never its secret or hash; ``status`` says whether it works."""
    token = {name: value for name, value in row.items()
             if name not in ("expired", "use_unrecorded")}
    token["status"] = ("revoked" if row["revoked_at"] is not None
                       else "expired" if row["expired"] else "active")
    return token


class ApiTokenService(Service):
    def create(self, project_id: str | None, scope: str, *, name: str = "",
               ttl_seconds: int | None = None, actor: str | None = None) -> dict[str, Any]:
        """A new token of one project, or with ``project_id`` None a fleet-wide one. The
        result holds ``secret``: the only time it is ever available."""
        chosen = check_choice(scope, TokenScope, "scope")
        check_text(name, "name", MAX_TOKEN_NAME)
        if ttl_seconds is not None and check_non_negative_int(ttl_seconds, "ttl_seconds") < 1:
            raise ValidationError("ttl_seconds must be at least 1", ttl_seconds=ttl_seconds)
        secret, token_id = new_secret(), new_token_id()
        who = actor or self.settings.actor

        def unit(tx: Tx) -> dict[str, Any]:
            if project_id is not None:
                require_project(tx, project_id, active=True)
            tx.execute("insert_api_token", token_id=token_id, name=name or token_id,
                       project_id=project_id, scope=chosen.value,
                       secret_sha256=secret_hash(secret), actor=who, ttl_seconds=ttl_seconds)
            audit(tx, who, "api_token.create", "api_token", token_id, project_id,
                  scope=chosen.value, name=name or token_id, ttl_seconds=ttl_seconds)
            return _view(self._require(tx, token_id))

        return {**self.storage.write(unit), "secret": secret}

    def list(self, project_id: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every token (or one project's), newest last; never a secret or a hash."""
        if project_id is not None:
            check_identifier(project_id, "project_id")
        rows = self.storage.read(lambda tx: tx.all("list_api_tokens", project_id=project_id or ""))
        return [_view(row) for row in rows]

    def revoke(self, token_id: str, actor: str | None = None) -> dict[str, Any]:
        """Revoke a token; revoking it again changes nothing and answers the same."""
        check_identifier(token_id, "token_id")
        who = actor or self.settings.actor

        def unit(tx: Tx) -> dict[str, Any]:
            token = self._require(tx, token_id)
            if token["revoked_at"] is None:
                tx.execute("revoke_api_token", token_id=token_id)
                audit(tx, who, "api_token.revoke", "api_token", token_id, token["project_id"])
            return _view(self._require(tx, token_id))

        return self.storage.write(unit)

    def authenticate(self, secret: str) -> dict[str, Any]:
        """The live token whose secret this is: ``token_id``, ``name``, ``project_id`` (None
        for a fleet-wide token) and ``scope``; otherwise ``AuthenticationError``."""
        if not is_well_formed(secret):
            raise AuthenticationError("the bearer token is malformed: a ctxdb API token "
                                      "starts with 'ctxdb_' (see `ctxdb token create`)")
        # One statement, so no transaction around it (PostgreSQL: one round trip, not two):
        # every request of the server makes this read.
        row = self.storage.read_one("api_token_by_secret", secret_sha256=secret_hash(secret),
                                    use_every=USE_RECORDED_EVERY)
        if row is None:
            raise AuthenticationError("the bearer token is not a token of this server")
        if row["revoked_at"] is not None:
            raise AuthenticationError(f"token {row['token_id']} is revoked")
        if row["expired"]:
            raise AuthenticationError(f"token {row['token_id']} expired at {row['expires_at']}")
        if row["use_unrecorded"]:
            self._record_use(row["token_id"])
        return _view(row)

    def _record_use(self, token_id: str) -> None:
        """Set the token's ``last_used_at`` (if no other request did within the minute). Only
        bookkeeping: a database that cannot take the write now does not fail the request."""
        try:
            self.storage.write(lambda tx: tx.execute(
                "touch_api_token", token_id=token_id, use_every=USE_RECORDED_EVERY))
        except CtxdbError:
            logging.getLogger("ctxdb.tokens").warning(
                "could not record the use of token %s", token_id, exc_info=True)

    @staticmethod
    def _require(tx: Tx, token_id: str) -> Row:
        row = tx.one("get_api_token", token_id=token_id)
        if row is None:
            raise ApiTokenNotFoundError(f"unknown API token {token_id!r}", token_id=token_id)
        return row
