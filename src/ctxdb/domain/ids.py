"""Identifiers in the seed's format: ``proj_YYYYMMDD_HHMMSS_<hex>``, ``inst_…``, ``sess_…``."""

from __future__ import annotations

import os
from datetime import UTC, datetime


def _hex(nbytes: int) -> str:
    # What secrets.token_hex does (os.urandom), without importing secrets, which loads
    # OpenSSL through hmac: a few milliseconds in every hook process, which makes ids.
    return os.urandom(nbytes).hex()


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d_%H%M%S")


def new_project_id() -> str:
    # 12 hex digits: ids made in the same second by many processes must not collide.
    return f"proj_{_stamp()}_{_hex(6)}"


def new_instance_id() -> str:
    return f"inst_{_stamp()}_{_hex(6)}"


def new_session_id() -> str:
    return f"sess_{_stamp()}_{_hex(6)}"


def new_idempotency_key() -> str:
    return _hex(16)
