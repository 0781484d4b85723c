"""What a prompt's hook process imports when it forwards the event to a ctxdb server.

A client starts one such process on every prompt, and its imports are most of its cost
(bench/remote_hook.py): the process must not import what only a database, a handoff, an
ingestion or https needs, nor run git once the repository's key is cached.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctxdb.service import Ctxdb
from remote_server import served
from test_hook_startup import hook_process, prompt_event, usage_transcript
from test_remote_hooks import RemoteHook, fleet_token, seed

UNWANTED = {
    # a database driver or the service layer: the server has them
    "sqlite3", "psycopg", "ctxdb.service", "ctxdb.storage",
    # git runs only until the repository's key is cached (ctxdb.git_files reads the rest)
    "subprocess",
    # socket.py (its enums), ssl and http.client: a plain socket does for http
    "socket", "ssl", "http.client", "urllib.request", "email",
    # only a handoff (dataclasses) or an ingesting event (hashlib) needs them
    "dataclasses", "inspect", "hashlib", "ctxdb.transcripts.parser",
    "ctxdb.transcripts.handoff",
    # paths are strings on this path: pathlib imports urllib.parse and ipaddress
    "pathlib",
    # the command line and the server's own libraries
    "click", "pydantic", "fastapi", "logging", "random",
}


@pytest.fixture
def server(db: Ctxdb) -> Iterator[str]:
    with served(db) as base:
        yield base


def test_a_remote_prompt_imports_nothing_it_does_not_use(
    db: Ctxdb, server: str, tmp_path: Path
) -> None:
    from test_hooks import shop_repository

    repo = shop_repository(tmp_path / "shop", origin=None)
    seed(db, repo)  # computes the repository's key once, as the session's start would
    transcript = usage_transcript(tmp_path / "session.jsonl")
    payload = prompt_event(repo, transcript=transcript)
    hook = RemoteHook(server, tmp_path / "hook.log", tmp_path / "home", fleet_token(db))
    env = {**hook.env(), "PATH": os.environ["PATH"]}
    code, _, modules = hook_process(payload, env)
    assert code == 0 and hook.logged() == ""
    # The prompt reached the server with the transcript's tail: the session is registered
    # with the context in use read from it.
    (instance,) = db.instances.list()
    assert (instance["session_id"], instance["current_token_usage"]) == ("probe", 325)
    loaded = {name for name in modules
              if any(name == unwanted or name.startswith(unwanted + ".")
                     for unwanted in UNWANTED)}
    assert loaded == set()


# Everything the remote short path (ctxdb.hooks.remote_entry) may import beyond what the
# interpreter loads for `python -c pass`: C modules and ctxdb's modules of constants. An
# import not listed (json and re, typing, enum, threading, the settings, the exception
# tree...) costs every prompt more than the request itself (docs/benchmarks.md).
SHORT_PATH_MODULES = {
    "__future__", "_json", "_socket", "binascii", "select",
    "ctxdb", "ctxdb.cli", "ctxdb.cli.main", "ctxdb.domain", "ctxdb.domain.client_rules",
    "ctxdb.domain.json_limits", "ctxdb.git_files", "ctxdb.hooks", "ctxdb.hooks.invocation",
    "ctxdb.hooks.remote_entry", "ctxdb.hooks.remote_http", "ctxdb.hooks.transcript_pieces",
    "ctxdb.repo_identity", "ctxdb.settings_names",
}
SHORT_PATH_PROBE = """\
import sys
before = set(sys.modules)
sys.argv = ["ctxdb", "hook", "--client", "claude-code"]
import os
os._exit = sys.exit  # a remote hook ends with os._exit: report after it
from ctxdb.cli.main import main
try:
    main()
except SystemExit:
    pass
loaded = sorted(set(sys.modules) - before)
import json
print(json.dumps(loaded), file=sys.stderr)
"""


def test_a_remote_prompt_on_the_short_path_imports_only_its_own_modules(
    db: Ctxdb, server: str, tmp_path: Path
) -> None:
    """As a client runs it (the event on a pipe), a prompt with its transcript's tail and a
    session's start: the modules listed above, and no other."""
    import json
    import subprocess
    import sys

    from test_hooks import shop_repository

    repo = shop_repository(tmp_path / "shop", origin=None)
    seed(db, repo)  # computes the repository's key once, as the session's start would
    transcript = usage_transcript(tmp_path / "session.jsonl")
    hook = RemoteHook(server, tmp_path / "hook.log", tmp_path / "home", fleet_token(db))
    env = {**hook.env(), "PATH": os.environ["PATH"]}
    start = json.dumps({"session_id": "probe", "cwd": str(repo), "transcript_path": None,
                        "hook_event_name": "SessionStart", "source": "startup"})
    for payload in (prompt_event(repo, transcript=transcript), start):
        done = subprocess.run([sys.executable, "-c", SHORT_PATH_PROBE], input=payload,
                              capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0 and hook.logged() == ""
        assert set(json.loads(done.stderr)) - SHORT_PATH_MODULES == set()
    (instance,) = db.instances.list()
    assert (instance["session_id"], instance["current_token_usage"]) == ("probe", 325)
