"""The lock that serializes what counts a project's instances (``lock_project_instances``), on
PostgreSQL: it excludes another holder until COMMIT, but neither the inserts of rows that refer
to the project (their foreign key checks) nor the stores' sequence draws, an update of the
project's row (every store, message and handoff of a project stood behind each agent's
SessionStart while the lock was the project's row). Another project's registrations do not
wait for it either."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from ctxdb.service import Ctxdb
from ctxdb.storage.dialect import POSTGRES
from ctxdb.storage.queries import compiled_queries

INSERT_MESSAGE = ("INSERT INTO messages (project_id, sender, recipient_kind, recipient, subject, "
                  "body, created_at) VALUES (%(project_id)s, 'user:test', 'broadcast', NULL, "
                  "'while locked', '\"a row that refers to the project\"', now())")


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_project_lock_excludes_holders_but_not_writes_to_the_project(
    make_settings: Any,
) -> None:
    settings = make_settings()
    with Ctxdb.open(settings) as db:
        project_id = db.projects.create("locked")["project_id"]
        other_project = db.projects.create("elsewhere")["project_id"]
    queries = compiled_queries(POSTGRES)
    lock, draw = queries["lock_project_instances"], queries["next_sequence"]
    params = {"project_id": project_id}
    with psycopg.connect(settings.url, autocommit=True) as holder, \
            psycopg.connect(settings.url, autocommit=True) as other:
        holder.execute("BEGIN")
        holder.execute(lock, params)
        other.execute("SET lock_timeout = '2s'")
        with other.transaction():
            other.execute(INSERT_MESSAGE, params)
            assert other.execute(draw, params).fetchone() == (1,)
        with other.transaction():
            other.execute(lock, {"project_id": other_project})
        with pytest.raises(psycopg.errors.LockNotAvailable), other.transaction():
            other.execute(lock, params)
        holder.execute("ROLLBACK")
        with other.transaction():
            other.execute(lock, params)
        count = other.execute("SELECT count(*) FROM messages WHERE project_id = %(project_id)s",
                              params).fetchone()
        assert count == (1,)
