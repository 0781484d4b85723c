"""``ctxdb init`` and ``ctxdb db …`` on a brand-new database of each backend."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from click.testing import CliRunner, Result

from ctxdb.cli.main import cli
from ctxdb.settings import CONFIG_ENV, SETTINGS_HELP

CLEAN_ENV: dict[str, str | None] = {s.env_var: None for s in SETTINGS_HELP} | {CONFIG_ENV: None}


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with no schema at all: a new SQLite path, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield str(tmp_path / "fresh" / "ctxdb.db")
        return
    import psycopg

    pg_url: str = request.getfixturevalue("pg_url")
    name = f"ctxdb_fresh_{secrets.token_hex(4)}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(pg_url)._replace(path="/" + name))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ctxdb(url: str, home: Path, *args: str, input: str | None = None) -> Result:
    env = {**CLEAN_ENV, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    return CliRunner().invoke(cli, ["--traceback", "--url", url, *args], input=input, env=env)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def states(url: str, home: Path) -> list[str]:
    status = as_json(ctxdb(url, home, "db", "status", "--json"))
    return [m["state"] for m in status["migrations"]]


def test_schema_commands_from_nothing_and_back(
    fresh_url: str, backend: str, tmp_path: Path
) -> None:
    status = as_json(ctxdb(fresh_url, tmp_path, "db", "status", "--json"))
    assert status["current_version"] == 0 and status["backend"] == backend
    assert {m["state"] for m in status["migrations"]} == {"pending"}
    # (Any other command would create the schema of this empty database when it opens it:
    # test_migrations; here it is made by the schema commands.)
    dry = ctxdb(fresh_url, tmp_path, "db", "upgrade", "--dry-run")
    assert dry.exit_code == 0 and "CREATE TABLE projects" in dry.stdout
    assert set(states(fresh_url, tmp_path)) == {"pending"}

    created = as_json(ctxdb(fresh_url, tmp_path, "init", "--json"))
    assert created["created"] is True and created["to_version"] == created["latest_version"]
    assert set(states(fresh_url, tmp_path)) == {"applied"}
    again = ctxdb(fresh_url, tmp_path, "init")
    assert again.exit_code == 0 and "ready" in again.stdout
    assert as_json(ctxdb(fresh_url, tmp_path, "project", "list", "--json")) == []

    declined = ctxdb(fresh_url, tmp_path, "db", "downgrade", input="n\n")
    assert declined.exit_code == 1 and "error: aborted" in declined.stderr
    assert set(states(fresh_url, tmp_path)) == {"applied"}
    dry_down = ctxdb(fresh_url, tmp_path, "db", "downgrade", "--target", "0", "--dry-run")
    assert "DROP TABLE" in dry_down.stdout
    assert set(states(fresh_url, tmp_path)) == {"applied"}

    down = as_json(ctxdb(fresh_url, tmp_path, "db", "downgrade", "--target", "0", "--yes",
                         "--json"))
    assert down["to_version"] == 0 and down["migrations"][-1]["version"] == 1  # newest first
    assert set(states(fresh_url, tmp_path)) == {"pending"}
    up = as_json(ctxdb(fresh_url, tmp_path, "db", "upgrade", "--target", "1", "--json"))
    assert (up["from_version"], up["to_version"]) == (0, 1)


def test_bad_migration_targets_exit_2(fresh_url: str, tmp_path: Path) -> None:
    ctxdb(fresh_url, tmp_path, "init")
    for command in (("upgrade",), ("downgrade", "--yes")):
        result = ctxdb(fresh_url, tmp_path, "db", *command, "--target", "99")
        assert result.exit_code == 2 and "is not in 0.." in result.stderr
    below = ctxdb(fresh_url, tmp_path, "db", "upgrade", "--target", "0")
    assert below.exit_code == 2 and "use downgrade" in below.stderr
    assert set(states(fresh_url, tmp_path)) == {"applied"}


def test_a_file_that_is_not_a_database_exits_6(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a database, " * 100, encoding="utf-8")
    result = ctxdb(str(garbage), tmp_path, "db", "status", "--json")
    assert result.exit_code == 6, result.output
    error = json.loads(result.stderr)
    assert error["error"] == "database_unavailable" and error["exit_code"] == 6
    assert garbage.read_text(encoding="utf-8") == "not a database, " * 100


def test_printed_locations_hide_passwords(tmp_path: Path) -> None:
    from ctxdb.service.operations.schema import location
    from ctxdb.settings import Settings

    assert location(Settings(url="postgresql://ctx:s3cret@db.example:5433/ctxdb")) == \
        "postgresql://ctx:***@db.example:5433/ctxdb"
    assert location(Settings(url="postgresql://ctx@db.example/ctxdb")) == \
        "postgresql://ctx@db.example/ctxdb"
    assert location(Settings(url=str(tmp_path / "a.db"))) == str(tmp_path / "a.db")
