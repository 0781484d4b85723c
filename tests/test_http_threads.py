"""The worker threads of a ``/v1`` request's work (ctxdb.http.threads)."""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.queues
import threading

import pytest

from ctxdb.http.threads import in_worker


def test_the_work_runs_in_another_thread_and_its_result_comes_back() -> None:
    async def main() -> tuple[int, bool]:
        loop_thread = threading.get_ident()
        return await in_worker(lambda: (41 + 1, threading.get_ident() != loop_thread))

    assert asyncio.run(main()) == (42, True)


def test_the_works_exception_is_raised_in_the_request() -> None:
    def failing() -> None:
        raise LookupError("no such row")

    async def main() -> None:
        await in_worker(failing)

    with pytest.raises(LookupError, match="no such row"):
        asyncio.run(main())


def test_a_cancelled_request_ends_only_after_its_work() -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def work() -> None:
        started.set()
        release.wait(10)
        finished.append("done")

    async def main() -> None:
        request = asyncio.ensure_future(in_worker(work))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        request.cancel()
        await asyncio.sleep(0.05)
        assert not request.done()  # still waiting for the work, though cancelled
        request.cancel()  # cancelled again: still waits
        await asyncio.sleep(0.05)
        assert not request.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await request
        assert finished == ["done"]

    asyncio.run(main())


def _answer_in_worker(answers: multiprocessing.queues.Queue[int]) -> None:
    async def main() -> int:
        return await in_worker(lambda: 7)

    answers.put(asyncio.run(main()))


def test_a_forked_child_runs_work_although_its_parent_had_idle_threads() -> None:
    # The parent's pool has idle threads; a child made by fork() has none of them, and a
    # server forked so (tests/crash_trials.py does) must still answer its requests.
    async def warm() -> None:
        await asyncio.gather(*(in_worker(lambda: None) for _ in range(4)))

    asyncio.run(warm())
    context = multiprocessing.get_context("fork")
    answers: multiprocessing.queues.Queue[int] = context.Queue()
    child = context.Process(target=_answer_in_worker, args=(answers,), daemon=True)
    child.start()
    try:
        assert answers.get(timeout=20) == 7
    finally:
        child.join(5)
        if child.is_alive():
            child.kill()
