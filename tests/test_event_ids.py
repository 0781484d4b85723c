"""The seal of the change feed's positions (domain/event_ids.py): it round-trips, depends on
the key, refuses what it did not make, and hides the numbers' order and distance."""

from __future__ import annotations

import itertools
import secrets

from ctxdb.domain.event_ids import seal, unseal

KEY = secrets.token_bytes(32)


def test_a_sealed_position_unseals_with_its_key_only() -> None:
    for xact_id, audit_id in ((0, 0), (0, 1), (8282, 4), (2**63 - 1, 2**63 - 1)):
        sealed = seal(KEY, xact_id, audit_id)
        assert len(sealed) == 32 and unseal(KEY, sealed) == (xact_id, audit_id)
        assert unseal(secrets.token_bytes(32), sealed) is None


def test_neighbouring_positions_give_unrelated_ids() -> None:
    ids = [seal(KEY, 5000, n) for n in range(200)]
    assert len(set(ids)) == 200
    # Sorted ids would be in position order; sealed ones are in no order at all.
    assert 60 < sum(a < b for a, b in itertools.pairwise(ids)) < 140
    # Nearly every character differs between neighbours (by chance, one in 64 matches).
    same = sum(x == y for a, b in itertools.pairwise(ids) for x, y in zip(a, b, strict=True))
    assert same < 199 * 32 / 64 * 2


def test_anything_the_seal_did_not_make_is_refused() -> None:
    sealed = seal(KEY, 1, 2)
    flipped = sealed[:10] + ("A" if sealed[10] != "A" else "B") + sealed[11:]
    for text in ("", "1-2", sealed[:-1], sealed + "A", flipped, "=" * 32, "é" * 32):
        assert unseal(KEY, text) is None
