"""Idempotency keys for every create, in one place: a retried create never duplicates.

A create given an idempotency key (the HTTP API's ``Idempotency-Key`` header, the
``idempotency_key`` argument of the services) first claims the key in its own transaction: a row of
``idempotency_keys`` per (project, operation, key) holding the SHA-256 of the request. The
create then runs in that same transaction, and its answer is stored in the row before the
COMMIT. So, whatever happened to the first answer (a lost response, a client timeout, a
crash after the commit):

- the same key with the same request gets the first answer again and writes nothing;
- the same key with another request is refused with :class:`IdempotencyConflictError`,
  and writes nothing;
- keys are per project and per operation: another project (or another kind of create) may
  use the same key for its own request.

Creating a project belongs to no project yet: its keys are fleet-wide (project ``''``).

A few creates keep a key in their own rows since before this table (context items,
approval gates, command runs, checkpoints, session events: see their services); they answer
a retry the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from ctxdb.domain.validation import check_identifier
from ctxdb.errors import IdempotencyConflictError
from ctxdb.storage import Storage, Tx

T = TypeVar("T")
FLEET = ""  # the "project" of creates that belong to none yet


class Claim(NamedTuple):
    """What a create given a key claims: its key, and the fingerprint of its request."""

    project_id: str
    operation: str
    key: str
    request_sha256: str

    @property
    def where(self) -> dict[str, str]:
        return {"project_id": self.project_id, "operation": self.operation,
                "idempotency_key": self.key}


def fingerprint(request: dict[str, Any]) -> str:
    """The SHA-256 of a request's arguments as canonical JSON (keys sorted, no spaces)."""
    import hashlib  # loads OpenSSL: only a create that names a key needs it, not a hook

    text = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str,
                      ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def claim_of(project_id: str, operation: str, key: str | None,
             request: dict[str, Any]) -> Claim | None:
    """The claim of a create with ``key`` (``None`` without one: nothing to claim)."""
    if key is None:
        return None
    return Claim(project_id, operation, check_identifier(key, "idempotency_key"),
                 fingerprint(request))


def write_once(storage: Storage, claim: Claim | None, unit: Callable[[Tx], T]) -> T:
    """``storage.write(unit)``, guarded by ``claim``: the create runs only if its key is new."""
    if claim is None:
        return storage.write(unit)

    def guarded(tx: Tx) -> T:
        if tx.one("claim_idempotency_key", request_sha256=claim.request_sha256,
                  **claim.where) is None:
            first: T = answer_of(tx, claim)  # the JSON of a T, as the first attempt stored it
            return first
        result = unit(tx)
        tx.execute("record_idempotent_response", response=json.dumps(result, default=str),
                   **claim.where)
        return result

    return storage.write(guarded)


def answer_of(tx: Tx, claim: Claim) -> Any:
    """The first answer under the claim's key, if the request is the same."""
    stored = tx.one("get_idempotency_key", **claim.where)
    if stored is None:  # claimed by a transaction that then rolled back: cannot be seen here
        raise IdempotencyConflictError(
            f"idempotency key {claim.key!r} is being used by another request right now; "
            f"retry", idempotency_key=claim.key)
    if stored["request_sha256"] != claim.request_sha256:
        raise IdempotencyConflictError(
            f"idempotency key {claim.key!r} was already used for another {claim.operation} "
            f"request (at {stored['created_at']}); a retry must send the same request and a "
            f"new request needs a new key; nothing was written",
            idempotency_key=claim.key, operation=claim.operation)
    response = stored["response"]
    return json.loads(response) if isinstance(response, str) else response
