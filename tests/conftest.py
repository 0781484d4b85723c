"""Shared fixtures: every storage and service test runs on SQLite (a real file) and PostgreSQL.

PostgreSQL: a fresh database is created per test run on ``CTXDB_TEST_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``) and dropped at the end; each test starts
from empty tables. Without a reachable server the PostgreSQL cases are skipped, unless
``CTXDB_REQUIRE_POSTGRES=1`` (set by CI), in which case they fail.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

import ctxdb
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings

# Output is not a terminal here, so Rich would wrap at 80 columns, and where a long temporary
# path falls (longer under parallel workers) would decide whether a phrase a test looks for is
# cut by a line break. Tests of the 80-column layout set COLUMNS themselves.
os.environ.setdefault("COLUMNS", "200")

PG_ADMIN_URL = os.environ.get(
    "CTXDB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("CTXDB_REQUIRE_POSTGRES", "") in ("1", "true", "yes")
# CTXDB_TEST_GROUP_COMMIT=1: the SQLite stores of the fixtures commit through the group-commit
# writer (storage/group_commit.py), as `ctxdb serve` does, to run the suite against that mode.
GROUP_COMMIT = os.environ.get("CTXDB_TEST_GROUP_COMMIT", "") in ("1", "true", "yes")
TABLES_IN_DELETE_ORDER = (
    "idempotency_keys", "search_documents", "audit_seals", "audit_log", "api_tokens",
    "checkpoints", "command_runs", "approval_gates",
    "message_deliveries", "messages", "task_dependencies", "tasks",
    "session_events", "sessions", "memory_versions", "memories", "observations", "injections",
    "compactions",
    "api_usage", "transcripts", "handoffs",
    "archived_context_items", "context_items", "instances",
    "phases", "projects",
)


def _with_dbname(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


def _unavailable(reason: str) -> None:
    if REQUIRE_POSTGRES:
        pytest.fail(f"PostgreSQL is required (CTXDB_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database for this test run."""
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed")
        raise
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        _unavailable(f"cannot connect to {PG_ADMIN_URL}: {exc}")
        raise
    name = f"ctxdb_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_dbname(PG_ADMIN_URL, name)
    try:
        with ctxdb.open(url=url, auto_migrate=True):
            pass
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _empty_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(TABLES_IN_DELETE_ORDER) + " RESTART IDENTITY")
        # Item numbers start again too, as a new database's do (migration 0029's sequence,
        # which no table owns, so RESTART IDENTITY leaves it).
        conn.execute("ALTER SEQUENCE IF EXISTS context_item_numbers RESTART")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Any:
    """A factory of settings for the test's backend; extra keyword arguments override."""
    if backend == "postgres":
        url = request.getfixturevalue("pg_url")
        _empty_postgres(url)
    else:
        url = str(tmp_path / "ctxdb.db")

    def make(**overrides: Any) -> Settings:
        env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
        if GROUP_COMMIT and backend == "sqlite":
            overrides.setdefault("sqlite_group_commit", True)
        return load_settings(env=env, url=url, actor="user:test", **overrides)

    return make


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    result: Settings = make_settings()
    return result


@pytest.fixture
def db(settings: Settings) -> Iterator[Ctxdb]:
    with Ctxdb.open(settings) as store:
        yield store


@pytest.fixture
def project(db: Ctxdb) -> dict[str, Any]:
    return db.projects.create("Test project", "made by a fixture", 100)


@pytest.fixture
def pid(project: dict[str, Any]) -> str:
    """The id of the test's project."""
    return str(project["project_id"])


@pytest.fixture
def lite(tmp_path: Path) -> Settings:
    """A SQLite file of the test's own, for tests that read it beside ctxdb as well."""
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return load_settings(env=env, url=str(tmp_path / "lite.db"), actor="user:test")


@pytest.fixture
def lite_db(lite: Settings) -> Iterator[Ctxdb]:
    with Ctxdb.open(lite) as store:
        yield store


@pytest.fixture
def scratch(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Settings of a migrated database of the test's own (not the shared one): a test may
    damage it, downgrade it or drop it."""
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    if backend == "sqlite":
        settings = load_settings(env=env, url=str(tmp_path / "scratch.db"), actor="user:test")
        Ctxdb.open(settings).close()
        yield settings
        return
    import psycopg

    server: str = request.getfixturevalue("pg_url")
    name = f"ctxdb_scratch_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_dbname(server, name)
    settings = load_settings(env=env, url=url, actor="user:test")
    try:
        Ctxdb.open(settings.replace(auto_migrate=True)).close()
        yield settings
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The corpus counts its cases in the process that runs them (a worker, when the suite runs in
# parallel): each test carries what it ran in its report, and the process that prints the
# summary adds up the reports it receives.
CORPUS_CASES: Counter[str] = Counter()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    corpus = sys.modules.get("bad_input_corpus")
    before = Counter(corpus.RAN) if corpus else Counter()
    try:
        return (yield)
    finally:
        corpus = sys.modules.get("bad_input_corpus")
        if corpus:
            for name, count in (corpus.RAN - before).items():
                item.user_properties.append(("bad_input_cases", (name, count)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":  # the teardown's report carries the test's properties again
        return
    for key, value in report.user_properties:
        if key == "bad_input_cases":
            name, count = value
            CORPUS_CASES[name] += count


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many bad-input cases the corpus generated (``bad_input_corpus.py``)."""
    if CORPUS_CASES:
        parts = ", ".join(f"{name} {count}" for name, count in sorted(CORPUS_CASES.items()))
        terminalreporter.write_line(
            f"bad-input corpus: {sum(CORPUS_CASES.values())} generated cases ({parts})")
