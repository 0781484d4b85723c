"""The server's API tokens as values: their secrets, hashes, scopes and lifetimes.

A secret is ``ctxdb_`` and 43 URL-safe characters (32 random bytes); the database keeps only
its SHA-256, so a token is found by hashing what a request presents. Checking the shape
first lets a malformed header be refused without a database round trip.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

from ctxdb.domain.vocabulary import TokenScope
from ctxdb.errors import ValidationError

SECRET_PREFIX = "ctxdb_"
_SECRET = re.compile(r"ctxdb_[A-Za-z0-9_-]{43}")
_DURATION = re.compile(r"([1-9]\d{0,6})\s*([mhdw])")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86_400, "w": 604_800}
MAX_TOKEN_LIFETIME = 10 * 365 * 86_400  # ten years: anything longer is a mistake
# Each scope allows what the ones before it allow.
_RANK = {TokenScope.READ: 0, TokenScope.WRITE: 1, TokenScope.ADMIN: 2}


def new_secret() -> str:
    return SECRET_PREFIX + base64.urlsafe_b64encode(os.urandom(32)).decode("ascii").rstrip("=")


def is_well_formed(secret: str) -> bool:
    return _SECRET.fullmatch(secret) is not None


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_token_id() -> str:
    return "tok_" + os.urandom(8).hex()


def allows(granted: TokenScope, needed: TokenScope) -> bool:
    return _RANK[granted] >= _RANK[needed]


def parse_lifetime(text: str, what: str = "expires") -> int:
    """A token's lifetime such as ``90m``, ``12h``, ``30d`` or ``2w``, in seconds."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValidationError(f"{what} must be a duration such as 90m, 12h, 30d or 2w, "
                              f"got {text!r}", value=text)
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds > MAX_TOKEN_LIFETIME:
        raise ValidationError(f"{what} must be at most ten years, got {text!r}", value=text)
    return seconds
