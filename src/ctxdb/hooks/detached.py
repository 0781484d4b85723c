"""Work that must outlive the hook process: a SessionEnd's end and handoff.

The clients give every SessionEnd hook 1.5 s and then kill it (Claude Code) or stop waiting
(Gemini CLI); on a loaded machine, importing the PostgreSQL driver, connecting and running
the end's transaction can take longer, and a hook that gave up would lose the session's end:
the next session would see it as live. SessionEnd prints nothing, so nothing needs to wait
for its result. :func:`detach` runs the work in a grandchild process in a session of its own
(so a client that kills the hook or its process group does not kill it), with stdin, stdout
and stderr on the null device (the client sees no output of it, and no pipe of the client's
is held open), and waits for it until ``wait_until``; then the hook exits as usual.

Double fork: the middle process exits at once and is reaped here, and the grandchild, an
orphan, is reaped by the system, so neither is left a zombie, whether or not the hook's
process outlives it. The fork happens before the store is opened: the grandchild opens its
own connection, never one of the hook's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import NoReturn

from ctxdb.hooks.logfile import log_failure


def can_detach() -> bool:
    """Whether this system can fork (POSIX); elsewhere the work stays in the hook."""
    return hasattr(os, "fork") and hasattr(os, "setsid")


def detach(work: Callable[[], object], wait_until: float) -> bool:
    """Run ``work`` in a detached grandchild process and wait until it ends or until
    ``wait_until`` (a ``time.monotonic()`` reading), whichever comes first.

    Returns False, having started nothing, when no process could be made (the caller then
    does the work itself); True otherwise. Never raises for the grandchild's failures: it
    logs them to the hook log itself.
    """
    try:
        finished, holding = os.pipe()  # the grandchild holds the write end until it exits
    except OSError:
        return False
    try:
        middle = _fork()
    except OSError:
        os.close(finished)
        os.close(holding)
        return False
    if middle == 0:
        _middle(work, finished)
    os.close(holding)
    try:
        if _exit_status(middle) != 0:  # its fork failed: no grandchild, nothing started
            return False
        _wait_for_end_of_file(finished, wait_until)
    finally:
        os.close(finished)
    return True


def _exit_status(middle: int) -> int:
    """The middle process's exit status (it exits as soon as it has forked); 0 when the
    system reaped it already (a client that started the hook with SIGCHLD ignored)."""
    try:
        return os.waitpid(middle, 0)[1]
    except ChildProcessError:
        return 0


def _fork() -> int:
    """``os.fork()``, without the warning Python 3.12+ gives when other threads exist (the
    stdin reader may still be blocked in a read): the child only runs ``work``, which touches
    none of their state."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*multi-threaded.*fork",
                                category=DeprecationWarning)
        return os.fork()


def _middle(work: Callable[[], object], finished: int) -> NoReturn:
    """The middle process: a new session, one more fork, and exit (1 if that fork failed)."""
    code = 1
    try:
        os.setsid()  # out of the client's session and process group
        if os.fork() == 0:
            _grandchild(work, finished)
        code = 0
    finally:
        os._exit(code)


def _grandchild(work: Callable[[], object], finished: int) -> NoReturn:
    try:
        os.close(finished)
        _standard_streams_to_null()
        work()
    except BaseException as exc:  # nothing above this frame may run in this process
        log_failure("detached hook work", exc)
    finally:
        os._exit(0)


def _standard_streams_to_null() -> None:
    """stdin was read; nothing of this process may reach the client, nor keep its pipes
    open (a client waits for their end before it counts the hook as done)."""
    null = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(null, descriptor)
    if null > 2:
        os.close(null)


def _wait_for_end_of_file(descriptor: int, wait_until: float) -> None:
    """Return when ``descriptor`` (a pipe's read end) is at its end, or at ``wait_until``."""
    import select

    left = wait_until - time.monotonic()
    if left > 0:
        select.select([descriptor], [], [], left)
