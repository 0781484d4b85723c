"""Retrying a whole unit of work after a transient failure."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

from ctxdb.errors import TransientStorageError
from ctxdb.logs import get_logger

T = TypeVar("T")
log = get_logger(__name__)

# Ten attempts with backoff doubling from ~20 ms to a 1 s cap wait about 4 s in all: long enough
# to ride out a PostgreSQL restart or a burst of terminated connections (six attempts gave up
# after ~0.6 s, which a busy machine's slower reconnects could exhaust), short enough that a
# real outage is reported promptly.
MAX_ATTEMPTS = 10
# For PostgreSQL, that promise in seconds, attempts included: no attempt starts after it. Ten
# quick attempts fit (their pauses add up to 6.4 s at most, with jitter); attempts that each
# wait out a silent server (a connection within pg_connect_timeout) are cut short instead of
# adding up to minutes. (A SQLite attempt waits for the lock as its busy timeout says.)
RETRY_BUDGET = 8.0


def with_retries(
    attempt: Callable[[], T],
    is_transient: Callable[[BaseException], bool],
    describe: str,
    budget: float | None = None,
) -> T:
    """Call ``attempt`` until it succeeds or fails with a non-transient error, at most
    :data:`MAX_ATTEMPTS` times, and (with a ``budget``) never starting one more than
    ``budget`` seconds in.

    Backoff is exponential with jitter so that competing writers do not retry in lockstep.
    """
    give_up_at = time.monotonic() + budget if budget is not None else math.inf
    for number in range(1, MAX_ATTEMPTS + 1):
        try:
            return attempt()
        except Exception as exc:
            if not is_transient(exc):
                raise
            import random  # a retry is rare: the process that never retries skips its import

            pause = min(1.0, 0.01 * 2**number) * random.uniform(0.5, 1.5)
            if number == MAX_ATTEMPTS or time.monotonic() + pause > give_up_at:
                raise TransientStorageError(
                    f"{describe} failed {number} times with a transient error: {exc}"
                ) from exc
            log.info("%s: transient error on attempt %d of %d (%s); retrying in %.0f ms",
                     describe, number, MAX_ATTEMPTS, exc, pause * 1000)
            time.sleep(pause)
    raise AssertionError("unreachable")
