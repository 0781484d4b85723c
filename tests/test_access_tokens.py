"""API tokens of ``ctxdb serve`` on both backends: the service (create, list, revoke,
authenticate) and ``ctxdb token …``; bad input is refused with a typed error and changes
nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from ctxdb.domain.access import is_well_formed, parse_lifetime, secret_hash
from ctxdb.errors import (
    ApiTokenNotFoundError,
    AuthenticationError,
    InvalidTransitionError,
    ProjectNotFoundError,
    ValidationError,
)
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings
from test_cli import Cli
from test_retention import backdate


@pytest.fixture
def run(settings: Settings, tmp_path: Path) -> Cli:
    return Cli(settings.url, tmp_path)


def test_a_token_authenticates_until_revoked(db: Ctxdb, pid: str) -> None:
    made = db.access_tokens.create(pid, "write", name="ci")
    assert is_well_formed(made["secret"]) and made["status"] == "active"
    assert set(made) >= {"token_id", "name", "project_id", "scope", "created_at", "expires_at"}
    assert not any("sha256" in name for name in made)
    found = db.access_tokens.authenticate(made["secret"])
    assert (found["token_id"], found["project_id"], found["scope"]) == \
        (made["token_id"], pid, "write")
    db.access_tokens.revoke(made["token_id"])
    with pytest.raises(AuthenticationError, match="revoked"):
        db.access_tokens.authenticate(made["secret"])
    again = db.access_tokens.revoke(made["token_id"])  # revoking twice answers the same
    assert again["status"] == "revoked"
    actions = [e["action"] for e in db.audit_log(entity_id=made["token_id"])]
    assert actions == ["api_token.revoke", "api_token.create"]


def test_expired_malformed_and_unknown_tokens_are_refused(db: Ctxdb, pid: str) -> None:
    short = db.access_tokens.create(pid, "read", ttl_seconds=1)
    time.sleep(1.2)
    with pytest.raises(AuthenticationError, match="expired"):
        db.access_tokens.authenticate(short["secret"])
    assert db.access_tokens.list(pid)[0]["status"] == "expired"
    with pytest.raises(AuthenticationError, match="malformed"):
        db.access_tokens.authenticate("Bearer nope")
    with pytest.raises(AuthenticationError, match="not a token"):
        db.access_tokens.authenticate("ctxdb_" + "A" * 43)


def test_bad_input_changes_nothing(db: Ctxdb, pid: str) -> None:
    with pytest.raises(ValidationError, match="scope must be one of read, write, admin"):
        db.access_tokens.create(pid, "root")
    with pytest.raises(ProjectNotFoundError):
        db.access_tokens.create("proj_nope", "read")
    with pytest.raises(ValidationError, match="ttl_seconds"):
        db.access_tokens.create(pid, "read", ttl_seconds=0)
    with pytest.raises(ApiTokenNotFoundError):
        db.access_tokens.revoke("tok_nope")
    db.projects.archive(pid)
    with pytest.raises(InvalidTransitionError, match="archived"):
        db.access_tokens.create(pid, "read")
    assert db.access_tokens.list() == []


def test_the_database_holds_the_hash_only(db: Ctxdb, pid: str) -> None:
    made = db.access_tokens.create(None, "admin", name="operators")
    assert made["project_id"] is None
    from ctxdb.storage.base import raw

    rows = db.storage.read(lambda tx: raw(tx).all_raw("SELECT * FROM api_tokens", {}))
    assert [row["secret_sha256"] for row in rows] == [secret_hash(made["secret"])]
    assert made["secret"] not in str(rows)


def test_lifetimes() -> None:
    assert [parse_lifetime(text) for text in ("90m", "12h", "30d", "2w")] == \
        [5400, 43200, 2_592_000, 1_209_600]
    for bad in ("", "30", "0d", "-1d", "3y", "99999999d", "1.5h"):
        with pytest.raises(ValidationError):
            parse_lifetime(bad)


def test_cli_creates_lists_and_revokes(run: Cli, db: Ctxdb, pid: str) -> None:
    made: dict[str, Any] = run.ok("token", "create", "--project", pid, "--scope", "read",
                                  "--expires", "30d", "--name", "ci")
    assert made["expires_at"] is not None and is_well_formed(made["secret"])
    human = run("token", "create", "--all-projects", "--scope", "admin")
    assert human.exit_code == 0
    secret = human.stdout.strip().splitlines()[-1]
    assert db.access_tokens.authenticate(secret)["project_id"] is None
    listed = run.ok("token", "list")
    assert len(listed) == 2 and all("secret" not in token for token in listed)
    assert [t["token_id"] for t in run.ok("token", "list", "--project", pid)] == \
        [made["token_id"]]
    assert run.ok("token", "revoke", made["token_id"])["status"] == "revoked"
    assert "exactly one of" in run.fails(2, "token", "create", "--scope", "read")
    assert "exactly one of" in run.fails(2, "token", "create", "--project", pid,
                                         "--all-projects", "--scope", "read")
    assert "--expires" in run.fails(2, "token", "create", "--project", pid, "--scope", "read",
                                    "--expires", "forever")
    assert "unknown API token" in run.fails(3, "token", "revoke", "tok_nope")
    assert len(run.ok("token", "list")) == 2


def last_used(db: Ctxdb, pid: str, token_id: str) -> object:
    """One token's last use, found by id: two tokens made within a millisecond share a
    creation time, so their place in the list is not theirs to keep."""
    return {t["token_id"]: t["last_used_at"] for t in db.access_tokens.list(pid)}[token_id]


def test_a_tokens_last_use_is_recorded_at_most_once_a_minute(
        run: Cli, db: Ctxdb, settings: Settings, pid: str) -> None:
    made = db.access_tokens.create(pid, "read", name="ci")
    other = db.access_tokens.create(pid, "read", name="unused")
    assert made["last_used_at"] is None
    db.access_tokens.authenticate(made["secret"])
    first = last_used(db, pid, made["token_id"])
    assert first is not None
    db.access_tokens.authenticate(made["secret"])  # within the minute: nothing written
    assert last_used(db, pid, made["token_id"]) == first
    backdate(settings, "api_tokens", "last_used_at", "token_id", made["token_id"])
    long_ago = last_used(db, pid, made["token_id"])
    db.access_tokens.authenticate(made["secret"])
    later = last_used(db, pid, made["token_id"])
    assert later != long_ago and str(later) >= str(first)  # recorded again: the minute passed
    listed = {t["token_id"]: t["last_used_at"] for t in run.ok("token", "list")}
    assert listed == {made["token_id"]: later, other["token_id"]: None}
    human = run("token", "list")
    assert "last_used_at" in human.stdout and other["token_id"] in human.stdout
    assert not db.audit_log(entity_id=made["token_id"])[0]["action"].endswith("use")
