"""The database URL: the accepted forms, and every other one refused before anything is
created (a URL must never be taken for the name of a new SQLite file).

The settings and the CLI need no database here; the hook runs as a subprocess, as the clients
run it, and must still exit 0 (logging why it did nothing).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ctxdb.database_url import URL_FORMS
from ctxdb.errors import ConfigError
from ctxdb.service import Ctxdb
from ctxdb.settings import load_settings
from test_cli import Cli
from test_hooks import CTXDB, Hook

REFUSED = {
    "mysql://x/y": "unknown database URL scheme 'mysql:'",
    "postgressql://x/y": "unknown database URL scheme 'postgressql:' (did you mean "
                         "postgresql://…?)",
    "ftp://db.internal/ctxdb": "unknown database URL scheme 'ftp:'",
    "http+unix://x": "unknown database URL scheme 'http+unix:'",
    "https://ctxdb:secret@db.internal": "server URL 'https://ctxdb:***@db.internal' must be "
                                        "http(s)://host[:port][/path] (the token goes in "
                                        "CTXDB_TOKEN",
    "http://db.internal/?token=x": "must be http(s)://host[:port][/path]",
    "http:///ctxdb": "must be http(s)://host[:port][/path]",
    "http://db.internal:http": "must be http(s)://host[:port][/path]",
    "http://db.internal:70000": "is malformed: port 70000 is out of range",
    "sqlite://rel.db": "SQLite URL 'sqlite://rel.db' is not of an accepted form",
    "sqlite:rel.db": "SQLite URL 'sqlite:rel.db' is not of an accepted form",
    "sqlite://": "SQLite URL 'sqlite://' is not of an accepted form",
    "sqlite+pysqlite:///rel.db": "is not of an accepted form",
    "postgresql:ctxdb": "must start with postgresql://",
    "postgresql://ctxdb@db:port/ctxdb": "is malformed: Port could not be cast",
    "postgres://ctxdb:secret@db:99999/ctxdb": "'postgres://ctxdb:***@db:99999/ctxdb' is "
                                              "malformed: Port out of range",
}


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, where a URL taken for a file name would show up."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.mark.parametrize("url", sorted(REFUSED))
def test_other_forms_are_refused_with_the_accepted_ones(cwd: Path, url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env={"HOME": str(cwd), "CTXDB_URL": url})
    assert raised.value.message.startswith("CTXDB_URL: ")
    assert REFUSED[url] in raised.value.message
    assert raised.value.details == {"setting": "url"}
    assert "secret" not in raised.value.message
    if "scheme" in REFUSED[url]:
        assert raised.value.message.endswith(f"accepted are {URL_FORMS}")
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize(("url", "kept"), [
    ("postgresql://ctxdb@db:5432/ctxdb", "postgresql://ctxdb@db:5432/ctxdb"),
    ("postgres://ctxdb@db/ctxdb", "postgresql://ctxdb@db/ctxdb"),
    ("postgresql+psycopg://ctxdb@db/ctxdb", "postgresql://ctxdb@db/ctxdb"),
    ("postgresql+psycopg2://ctxdb@db/ctxdb", "postgresql://ctxdb@db/ctxdb"),
    ("PostgreSQL:///ctxdb?host=/run/postgresql", "postgresql:///ctxdb?host=/run/postgresql"),
])
def test_postgresql_spellings_are_accepted_as_libpq_reads_them(
        cwd: Path, url: str, kept: str) -> None:
    settings = load_settings(env={"HOME": str(cwd)}, url=url)
    assert settings.is_postgres and settings.url == kept
    assert settings.replace(url=url).url == kept  # db copy --to goes through replace


@pytest.mark.parametrize(("url", "kept"), [
    ("http://db.internal:8700", "http://db.internal:8700"),
    ("HTTPS://ctxdb.example.com/", "HTTPS://ctxdb.example.com"),
    ("https://proxy.example.com/ctxdb/", "https://proxy.example.com/ctxdb"),
])
def test_a_server_url_is_kept_for_the_remote_client_and_is_no_database(
        cwd: Path, url: str, kept: str) -> None:
    settings = load_settings(env={"HOME": str(cwd), "CTXDB_TOKEN": "ctxdb_t"}, url=url)
    assert settings.is_server and not settings.is_postgres and settings.url == kept
    assert settings.token == "ctxdb_t" and "ctxdb_t" not in repr(settings)
    with pytest.raises(ConfigError, match="is a ctxdb server, not a database"):
        Ctxdb.open(settings)
    assert list(cwd.iterdir()) == []


def test_the_cli_says_a_server_url_needs_a_token(cwd: Path) -> None:
    message = Cli("http://127.0.0.1:9", cwd).fails(2, "summary")
    assert "is a ctxdb server" in message and "CTXDB_TOKEN" in message
    assert "docs/server.md" in message
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize(("url", "path"), [
    ("rel.db", "rel.db"),
    ("sqlite:///rel.db", "rel.db"),
    ("sqlite:///sub/rel.db", "sub/rel.db"),
    ("SQLite:///rel.db", "rel.db"),
    ("notes:v2.db", "notes:v2.db"),  # a colon in a file name is no scheme
])
def test_sqlite_paths_are_resolved_once(cwd: Path, url: str, path: str) -> None:
    settings = load_settings(env={"HOME": str(cwd)}, url=url)
    assert not settings.is_postgres and settings.url == str(cwd / path)
    assert settings.replace(url=url).url == str(cwd / path)
    absolute = cwd / "abs.db"
    assert load_settings(env={"HOME": str(cwd)}, url=f"sqlite:///{absolute}").url == \
        str(absolute)  # sqlite:////absolute/path


@pytest.mark.parametrize("url", ["mysql://x/y", "postgressql://x/y", "sqlite://rel.db"])
def test_the_cli_refuses_a_bad_url_and_creates_nothing(cwd: Path, url: str) -> None:
    run = Cli(url, cwd)
    message = run.fails(2, "summary")
    assert message.startswith("error: argument url: ") and "sqlite:///relative" in message
    result = run("summary", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stderr)["error"] == "invalid_config"
    assert list(cwd.iterdir()) == []


def test_an_empty_summary_shows_where_the_database_is(cwd: Path) -> None:
    result = Cli("sqlite:///rel.db", cwd)("summary")
    assert result.exit_code == 0
    assert f"no active projects in {cwd / 'rel.db'}" in " ".join(result.stdout.split())


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://rel.db"])
def test_a_hook_with_a_bad_url_exits_0_logs_why_and_creates_nothing(
        tmp_path: Path, url: str) -> None:
    folder = tmp_path / "repository"
    folder.mkdir()
    hook = Hook(url, tmp_path / "state" / "hook.log", tmp_path / "home")
    payload = {"hook_event_name": "UserPromptSubmit", "session_id": "s-1", "prompt": "hi",
               "cwd": str(folder), "transcript_path": str(folder / "s-1.jsonl")}
    done = subprocess.run([str(CTXDB), "hook", "--client", "claude-code"],
                          input=json.dumps(payload), capture_output=True, text=True,
                          env=hook.env(), cwd=folder, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert "ConfigError" in hook.logged() and "accepted" in hook.logged()
    assert list(folder.iterdir()) == []
