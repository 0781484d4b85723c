"""Event ids of the change feed: a feed position sealed with the database's own key.

A position is two numbers that grow with every change of every project (the writing
transaction's and the audit row's), so handing them out as they are would tell a project's
reader how many changes other projects made between two of its own. Sealed, an id tells its
holder nothing, and one the feed did not make is refused instead of followed.

The seal is a four-round Feistel permutation (Luby-Rackoff: a pseudorandom permutation when
its round function is a pseudorandom function) over 24 bytes: the two numbers and eight zero
bytes, which an id has to decode back to; the round function is keyed BLAKE2b. The id is the
result in URL-safe base64, 32 characters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct

_HALF = 12
_ROUNDS = 4
_CHECK = bytes(8)
_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32}$")


def _mix(key: bytes, round_number: int, half: bytes) -> bytes:
    return hashlib.blake2b(bytes([round_number]) + half, key=key, digest_size=_HALF).digest()


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def seal(key: bytes, xact_id: int, audit_id: int) -> str:
    """The event id of a position (two numbers from 0 to 2**63 - 1)."""
    block = struct.pack(">QQ", xact_id, audit_id) + _CHECK
    left, right = block[:_HALF], block[_HALF:]
    for number in range(_ROUNDS):
        left, right = right, _xor(left, _mix(key, number, right))
    return base64.urlsafe_b64encode(left + right).decode("ascii")


def unseal(key: bytes, event_id: str) -> tuple[int, int] | None:
    """The position an event id was made from, or ``None`` when the feed of the database with
    this key did not make it."""
    if not isinstance(event_id, str) or not _SHAPE.match(event_id):
        return None
    try:
        block = base64.urlsafe_b64decode(event_id)
    except (binascii.Error, ValueError):
        return None
    left, right = block[:_HALF], block[_HALF:]
    for number in reversed(range(_ROUNDS)):
        left, right = _xor(right, _mix(key, number, left)), left
    plain = left + right
    if plain[16:] != _CHECK:
        return None
    xact_id, audit_id = struct.unpack(">QQ", plain[:16])
    return int(xact_id), int(audit_id)
