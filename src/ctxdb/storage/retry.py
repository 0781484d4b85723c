"""Retrying a whole unit of work after a transient failure."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from ctxdb.errors import TransientStorageError

T = TypeVar("T")

# Ten attempts with backoff doubling from ~20 ms to a 1 s cap wait about 4 s in all: long enough
# to ride out a PostgreSQL restart or a burst of terminated connections (six attempts gave up
# after ~0.6 s, which a busy machine's slower reconnects could exhaust), short enough that a
# real outage is reported promptly.
MAX_ATTEMPTS = 10


def with_retries(
    attempt: Callable[[], T],
    is_transient: Callable[[BaseException], bool],
    describe: str,
) -> T:
    """Call ``attempt`` until it succeeds or fails with a non-transient error.

    Backoff is exponential with jitter so that competing writers do not retry in lockstep.
    """
    for number in range(1, MAX_ATTEMPTS + 1):
        try:
            return attempt()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if number == MAX_ATTEMPTS:
                raise TransientStorageError(
                    f"{describe} failed {MAX_ATTEMPTS} times with a transient error: {exc}"
                ) from exc
            time.sleep(min(1.0, 0.01 * 2**number) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")
