"""A SessionEnd whose database work is held up: the hook exits at its deadline, the work goes
on in a detached process (hooks.detached), and the session's end and handoff land once the
database lets them.

The test holds a lock the end must wait for: on PostgreSQL the session's instance row
(``SELECT … FOR UPDATE``), on SQLite the write lock (``BEGIN IMMEDIATE``). The hook runs in
a process group of its own, as a client starts it, so killing that group is what a client
that kills its hook does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import test_hooks
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from test_hooks import CTXDB, Hook, event, instance, wait_for_end

hook, repo, transcript = test_hooks.hook, test_hooks.repo, test_hooks.transcript


@contextlib.contextmanager
def end_held_up(settings: Settings, instance_id: str) -> Iterator[None]:
    """Hold what the end of ``instance_id`` must write until the block is left."""
    if settings.is_postgres:
        import psycopg

        with psycopg.connect(settings.url) as holder:  # a transaction until the block ends
            holder.execute("SELECT 1 FROM instances WHERE instance_id = %s FOR UPDATE",
                           (instance_id,))
            yield
            holder.rollback()
        return
    holder = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


def start_hook(hook: Hook, payload: dict[str, Any], *args: str) -> subprocess.Popen[str]:
    """``ctxdb hook`` in a new session and process group (its leader is the hook), its
    input from a file: nothing here has to feed it while it runs."""
    event_file = hook.home.parent / f"event-{time.monotonic_ns()}.json"
    event_file.write_text(json.dumps(payload))
    with event_file.open("rb") as stdin:
        return subprocess.Popen([str(CTXDB), "hook", "--client", "claude-code", *args],
                                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=hook.env(), start_new_session=True)


def detached_work(hook: Hook, hook_pid: int, within: float = 30.0) -> int:
    """The pid of the process doing the hook's work outside its process group, once there
    is one: a process with this test's hook log in its environment, in another group, and
    not the hook's child (the middle process of the double fork, which exits at once)."""
    marker = f"CTXDB_HOOK_LOG={hook.log}".encode()
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError):
                environment = (entry / "environ").read_bytes().split(b"\0")
                _, parent, group = _stat(int(entry.name))
                if marker in environment and hook_pid not in (parent, group):
                    return int(entry.name)
        time.sleep(0.05)
    raise AssertionError(f"no detached process within {within:g} s")


def _stat(pid: int) -> tuple[str, int, int]:
    """The state, parent and process group of ``pid`` (from /proc/PID/stat)."""
    state, parent, group = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:3]
    return state, int(parent), int(group)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has ended: its state is Z)."""
    try:
        return _stat(pid)[0] != "Z"
    except (OSError, IndexError):
        return False


def started_session(hook: Hook, db: Ctxdb, repo: Path, transcript: Path) -> str:
    hook(event("SessionStart", repo, transcript, "held", source="startup"))
    hook(event("Stop", repo, transcript, "held"))  # its transcript ingested
    row = instance(db, "held")
    assert row is not None and row["status"] == "active"
    return str(row["instance_id"])


def assert_ended_with_handoff(db: Ctxdb, hook: Hook) -> None:
    ended = wait_for_end(db, "held", within=30.0)
    handoff = db.tokens.latest_handoff(instance_id=ended["instance_id"])
    assert handoff is not None and handoff["kind"] == "end"
    assert "xterm.js" in handoff["summary"]
    assert hook.logged() == ""


def test_a_held_up_session_end_exits_at_its_deadline_and_lands_once_free(
    hook: Hook, db: Ctxdb, settings: Settings, repo: Path, transcript: Path
) -> None:
    instance_id = started_session(hook, db, repo, transcript)
    with end_held_up(settings, instance_id):
        process = start_hook(hook, event("SessionEnd", repo, transcript, "held",
                                         reason="logout"))
        # Its deadline (1 s) counts from its input; the process's start-up comes on top.
        stdout, stderr = process.communicate(timeout=20)
        assert (process.returncode, stdout, stderr) == (0, "", "")
        assert instance(db, "held")["status"] == "active"  # still held up
        # What a client does to a hook past its time: nothing of the work is in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        time.sleep(0.5)
        assert instance(db, "held")["status"] == "active"
    assert_ended_with_handoff(db, hook)


def test_killing_the_hook_and_its_process_group_does_not_stop_the_end(
    hook: Hook, db: Ctxdb, settings: Settings, repo: Path, transcript: Path
) -> None:
    instance_id = started_session(hook, db, repo, transcript)
    with end_held_up(settings, instance_id):
        # A long deadline: the hook is still waiting for the work when it is killed.
        process = start_hook(hook, event("SessionEnd", repo, transcript, "held",
                                         reason="logout"), "--deadline", "20")
        worker = detached_work(hook, process.pid)
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait(timeout=20) == -signal.SIGKILL
        assert process.communicate() == ("", "")
        time.sleep(0.5)
        assert alive(worker), "the detached work died with the hook's process group"
        assert instance(db, "held")["status"] == "active"
    assert_ended_with_handoff(db, hook)
    for _ in range(200):  # and it exits once done
        if not alive(worker):
            break
        time.sleep(0.05)
    assert not alive(worker)


@pytest.mark.parametrize("deadline", [None, "20"])
def test_a_second_end_of_the_same_session_changes_nothing(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path, deadline: str | None
) -> None:
    """A retried SessionEnd (or one that meets its detached predecessor still at work) finds
    the session ended and makes no second handoff."""
    started_session(hook, db, repo, transcript)
    args = ("--deadline", deadline) if deadline else ()
    first = start_hook(hook, event("SessionEnd", repo, transcript, "held"), *args)
    second = start_hook(hook, event("SessionEnd", repo, transcript, "held"), *args)
    for process in (first, second):
        assert process.communicate(timeout=30) == ("", "") and process.returncode == 0
    ended = wait_for_end(db, "held", within=30.0)
    time.sleep(1.0)  # whatever either detached process had left to do
    handoffs = db.storage.read(lambda tx: tx.all_raw(
        db.storage.dialect.compile("SELECT kind FROM handoffs WHERE instance_id = :i"),
        {"i": ended["instance_id"]}))
    assert [row["kind"] for row in handoffs] == ["end"]
    assert hook.logged() == ""


def test_a_hook_started_with_sigchld_ignored_still_ends_the_session(
    hook: Hook, db: Ctxdb, repo: Path, transcript: Path
) -> None:
    """A client may start its hooks with SIGCHLD ignored (inherited across exec): then the
    system reaps the middle process itself, and waiting for it finds no child."""
    started_session(hook, db, repo, transcript)
    ignoring = ("import os, signal, sys\n"
                "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
                "os.execv(sys.argv[1], sys.argv[1:])\n")
    done = subprocess.run(
        [sys.executable, "-c", ignoring, str(CTXDB), "hook", "--client", "claude-code"],
        input=json.dumps(event("SessionEnd", repo, transcript, "held")), capture_output=True,
        text=True, env=hook.env(), timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert_ended_with_handoff(db, hook)
