"""The worker threads a ``/v1`` request's synchronous work runs in (``ctxdb.http.encoding``).

FastAPI hands a plain ``def`` endpoint to anyio's worker threads: per request a capacity
limiter, a cancel scope, a ``queue.Queue`` (a lock and a condition in Python) and a copy of
the context, about a tenth of a busy worker's CPU on the fleet's mix. :func:`in_worker`
does the same hand-off over a standard thread pool (its queue is ``queue.SimpleQueue``, in
C) and one ``call_soon_threadsafe`` back to the event loop. What it keeps of anyio's: at most
:data:`MAX_THREADS` threads (anyio's default), and a request cancelled while its work runs
(its client gone, the server stopping) waits for that work to end before it ends itself, so
nothing is left running against a store that is about to be closed.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

MAX_THREADS = 40  # anyio's default limit of worker threads, which the server ran with

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    """In a child made by fork(): the parent's pool has no threads here, yet counts its idle
    ones, so work submitted to it would wait for threads that never take it (a server forked
    from a process that had served requests hung). The child makes a pool of its own."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _threads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="ctxdb-request")
    return _pool


def _settle(done: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if done.cancelled():
        return
    if error is None:
        done.set_result(result)
    else:
        done.set_exception(error)


async def in_worker(call: Callable[[], T]) -> T:
    """``call()`` in a worker thread; its result or its exception."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        try:
            result = call()
        except BaseException as error:  # handed to the request, as anyio does
            loop.call_soon_threadsafe(_settle, done, None, error)
        else:
            loop.call_soon_threadsafe(_settle, done, result, None)

    _threads().submit(run)
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        while not done.done():  # the work goes on: wait for it, whatever cancels again
            try:
                await asyncio.wait((done,))
            except asyncio.CancelledError:
                continue
        done.exception()  # seen: the request is cancelled whatever the work's outcome
        raise
