"""PostgreSQL down, frozen or refusing: every wait is bounded, and what cannot succeed by
waiting is said at once.

A refused server is a port nothing listens on; an unreachable one is a local listener that
never accepts (the kernel completes the TCP handshake, then nothing answers), which behaves
like a server behind a dead network and works offline. A frozen server is the test proxy of
``test_concurrency_commit`` told to forward nothing more.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctxdb.errors import (
    DatabaseTimeoutError,
    DatabaseUnavailableError,
    StatementRefusedError,
    TransientStorageError,
)
from ctxdb.hooks.dispatch import DEADLINES
from ctxdb.hooks.invocation import CONNECTED_BY
from ctxdb.service import Ctxdb
from ctxdb.settings import load_settings
from ctxdb.storage.base import Tx
from ctxdb.storage.retry import RETRY_BUDGET
from test_concurrency_commit import proxy_to, through_proxy
from test_concurrency_units import admin_connection, terminate_other_backends

CTXDB = Path(sys.executable).with_name("ctxdb")
# Whole processes on a busy two-core machine: the limits the issue sets, not tighter.
HOOK_LIMIT = 1.5
# A port nothing listens on: the server refuses at once, so a hook costs its start-up, its
# imports and its log entry, and no wait. What the same hook takes with it, measured in the
# same test, is the machine's share of a hook's time; a silent server may add CONNECTED_BY
# (the hook gives its connection up that long after its start), and the scheduler this much.
REFUSED_URL = "postgresql://ctxdb@127.0.0.1:1/ctxdb?sslmode=disable"
SCHEDULING_SLACK = 0.4
CLI_LIMIT = 3.0
EXIT_STORAGE = 6

POSTGRES_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)])


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A port whose listener never accepts: connections are made, nothing ever answers."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture(params=["refused", "unreachable"])
def down_url(request: pytest.FixtureRequest) -> str:
    port = 1 if request.param == "refused" else request.getfixturevalue("silent_port")
    return f"postgresql://ctxdb@127.0.0.1:{port}/ctxdb?sslmode=disable"


def run_ctxdb(args: list[str], url: str, tmp_path: Path, stdin: str = "",
              **settings: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "CTXDB_URL": url, "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "CTXDB_HOOK_LOG": str(tmp_path / "hook.log"), **settings}
    env.pop("CTXDB_CONFIG", None)
    started = time.monotonic()
    done = subprocess.run([str(CTXDB), *args], input=stdin, capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    return done, time.monotonic() - started


@pytest.mark.parametrize("event", sorted(DEADLINES))
def test_every_hook_exits_at_once_when_postgres_is_down(
        event: str, down_url: str, tmp_path: Path) -> None:
    payload = json.dumps({"hook_event_name": event, "session_id": "s-down", "cwd": str(tmp_path),
                          "source": "startup", "prompt": "hello"})
    """Within HOOK_LIMIT; on a loaded machine, within what the same hook took just before and
    just after against a server that refuses at once, plus what a silent one may cost. The
    connect timeout the settings give is long: the hook's own bound must hold."""
    hook = ["hook", "--client", "claude-code"]
    generous = {"CTXDB_PG_CONNECT_TIMEOUT": "5"}
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    before = run_ctxdb(hook, REFUSED_URL, tmp_path / "before", payload, **generous)[1]
    done, elapsed = run_ctxdb(hook, down_url, tmp_path, payload, **generous)
    after = run_ctxdb(hook, REFUSED_URL, tmp_path / "after", payload, **generous)[1]
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    limit = max(HOOK_LIMIT, max(before, after) + CONNECTED_BY + SCHEDULING_SLACK)
    assert elapsed <= limit, (f"{event} took {elapsed:.2f} s; against a refusing server "
                              f"{before:.2f} s before and {after:.2f} s after")
    # Why, in the log: the connection failed; or time ran out while connecting. SessionEnd's
    # work goes on in a detached process (hooks.detached), which logs it when it gives up.
    log = ""
    for log in logged(tmp_path / "hook.log"):
        if ("cannot connect to PostgreSQL at 127.0.0.1:" in log
                or "exceeded while opening the database" in log):
            break
    else:
        raise AssertionError(f"the hook did not log why: {log!r}")


def logged(path: Path, within: float = 30.0) -> Iterator[str]:
    """The log's text now, then again every 50 ms for ``within`` seconds."""
    give_up = time.monotonic() + within
    while True:
        yield path.read_text() if path.exists() else ""
        if time.monotonic() > give_up:
            return
        time.sleep(0.05)


def test_the_cli_says_in_one_line_that_postgres_is_down(down_url: str, tmp_path: Path) -> None:
    done, elapsed = run_ctxdb(["summary"], down_url, tmp_path)
    assert done.returncode == EXIT_STORAGE
    assert elapsed <= CLI_LIMIT, f"the CLI took {elapsed:.2f} s"
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: cannot connect to PostgreSQL at 127.0.0.1:"), lines


def test_the_cli_json_error_is_only_json_when_postgres_is_down(
        down_url: str, tmp_path: Path) -> None:
    done, elapsed = run_ctxdb(["summary", "--json"], down_url, tmp_path)
    assert done.returncode == EXIT_STORAGE
    assert elapsed <= CLI_LIMIT
    error = json.loads(done.stderr)  # the whole of stderr: no log line before it
    assert error["error"] == "database_unavailable"
    assert error["message"].startswith("cannot connect to PostgreSQL")


def test_a_library_open_fails_within_the_connect_timeout(
        down_url: str, tmp_path: Path) -> None:
    settings = load_settings(env={"HOME": str(tmp_path)}, url=down_url, pg_connect_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError, match="cannot connect to PostgreSQL"):
        Ctxdb.open(settings)
    assert time.monotonic() - started < 0.5 + 0.5


# --- a live server that freezes, refuses, or is killed ---------------------------------------


@POSTGRES_ONLY
def test_a_frozen_server_never_blocks_a_call_past_its_timeouts(make_settings: Any) -> None:
    settings = make_settings()
    with proxy_to(settings.url) as proxy:
        bounded = settings.replace(url=through_proxy(settings.url, proxy),
                                   pg_connect_timeout=0.5, pg_statement_timeout=0.5,
                                   pg_socket_timeout=1.5)
        with Ctxdb.open(bounded) as db:
            project_id = db.projects.create("frozen")["project_id"]
            proxy.freeze()
            # On the open connection: no answer within pg_socket_timeout.
            started = time.monotonic()
            with pytest.raises(DatabaseTimeoutError, match=r"did not answer within 1\.5 s"):
                db.context.store(project_id, {"n": 1})
            assert time.monotonic() - started < 1.5 + 1.0
            # A new connection: the server never answers its startup.
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailableError, match=r"no answer .* within 0\.5 s"):
                db.projects.get(project_id)
            assert time.monotonic() - started < 0.5 + 1.0


@POSTGRES_ONLY
def test_a_lost_commit_answer_on_a_frozen_server_is_bounded_and_says_so(
        make_settings: Any) -> None:
    settings = make_settings()
    with proxy_to(settings.url) as proxy:
        bounded = settings.replace(url=through_proxy(settings.url, proxy),
                                   pg_connect_timeout=0.5, pg_statement_timeout=0.5,
                                   pg_socket_timeout=1.5)
        with Ctxdb.open(bounded) as db:
            db.projects.create("frozen commit")

            def freeze_then_insert(tx: Tx) -> None:
                tx.execute_raw("SELECT 1", {})
                # The statements the write adds after the unit (the search terms) still get
                # their answers; the COMMIT goes out, and nothing comes back.
                proxy.freeze_at_commit()

            started = time.monotonic()
            with pytest.raises(DatabaseTimeoutError, match="may have been committed"):
                db.storage.write(freeze_then_insert)
            # The answer's wait, then the question on a new connection whether it committed.
            assert time.monotonic() - started < 1.5 + 0.5 + 1.0


@POSTGRES_ONLY
def test_a_statement_past_its_timeout_is_cancelled_and_not_retried(
        make_settings: Any) -> None:
    with Ctxdb.open(make_settings(pg_statement_timeout=0.3)) as db:
        attempts = []

        def slow(tx: Tx) -> Any:
            attempts.append(1)
            return tx.one_raw("SELECT pg_sleep(5)", {})

        started = time.monotonic()
        with pytest.raises(DatabaseTimeoutError, match="pg_statement_timeout"):
            db.storage.read(slow)
        assert time.monotonic() - started < 2.0
        assert len(attempts) == 1


@POSTGRES_ONLY
def test_a_server_refusing_connections_fails_a_write_within_the_retry_budget(
        make_settings: Any) -> None:
    settings = make_settings()
    with proxy_to(settings.url) as proxy:
        db = Ctxdb.open(settings.replace(url=through_proxy(settings.url, proxy)))
        try:
            project_id = db.projects.create("refused")["project_id"]
            proxy.close()  # its connections cut, and its port refuses new ones
            started = time.monotonic()
            with pytest.raises(TransientStorageError):
                db.context.store(project_id, {"n": 1})
            assert time.monotonic() - started < RETRY_BUDGET + 2.0
        finally:
            db.close()


@POSTGRES_ONLY
def test_a_permanent_error_is_reported_at_once(db: Ctxdb) -> None:
    attempts = []

    def index_row_too_large(tx: Tx) -> None:
        attempts.append(1)
        tx.script("CREATE TEMP TABLE wide (x text) ON COMMIT DROP; CREATE INDEX ON wide (x)")
        # About 16 kB of incompressible text: more than a btree index row may hold.
        tx.execute_raw("INSERT INTO wide SELECT string_agg(md5(n::text), '') "
                       "FROM generate_series(1, 500) AS n", {})

    started = time.monotonic()
    with pytest.raises(StatementRefusedError) as raised:
        db.storage.write(index_row_too_large)
    assert raised.value.details["sqlstate"] == "54000"
    assert len(attempts) == 1
    assert time.monotonic() - started < 1.0


@POSTGRES_ONLY
def test_killed_backends_do_not_grow_a_process_past_one_connection(
        make_settings: Any) -> None:
    settings = make_settings()
    with Ctxdb.open(settings) as db, admin_connection(settings.url) as admin:
        project_id = db.projects.create("killed again and again")["project_id"]
        for number in range(8):
            terminate_other_backends(admin)
            db.context.store(project_id, {"n": number})
            db.context.full(project_id)
        # A connection attempt that timed out on a loaded machine leaves a backend behind
        # until the server sees its socket closed, which took more than 3 s at a load average
        # of 18 on two cores: give it time; a leaked connection stays however long we wait.
        deadline = time.monotonic() + 15
        while (count := other_sessions(admin)) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert count == 1


def other_sessions(admin: Any) -> int:
    (count,) = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()").fetchone()
    return int(count)
