"""The facades a token's requests run on are kept across requests (ctxdb.http.auth.Facades),
the token itself never: each request still reads it, so a revocation or a new token takes
effect at once, and each token's writes are audited as that token, scoped to its project."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from ctxdb.http.app import create_app
from ctxdb.http.auth import Facades
from ctxdb.service import Ctxdb


def stored(client: TestClient, project_id: str, secret: str, note: str) -> Any:
    return client.post(f"/v1/projects/{project_id}/context",
                       json={"content": {"note": note}, "priority": "HIGH"},
                       headers={"Authorization": f"Bearer {secret}"})


def test_a_tokens_facade_is_kept_and_its_writes_are_audited_as_it(db: Ctxdb) -> None:
    project, other = (db.projects.create(name)["project_id"] for name in ("mine", "theirs"))
    first, second = (db.access_tokens.create(project, "write") for _ in range(2))
    fleet = db.access_tokens.create(None, "write")
    with TestClient(create_app(db)) as client:
        for made, note in ((first, "a"), (first, "b"), (second, "c"), (fleet, "d")):
            assert stored(client, project, made["secret"], note).status_code == 201
        kept: Facades = client.app.state.facades  # type: ignore[attr-defined]
        assert len(kept._of_token) == 3  # one per token, the first's made once
        facade = kept._of_token[(first["token_id"], project)]
        assert facade.settings.actor == f"token:{first['token_id']}"
        # A project's token still reaches only its project.
        assert stored(client, other, first["secret"], "e").status_code == 404
        db.access_tokens.revoke(first["token_id"])
        answer = stored(client, project, first["secret"], "f")
        assert answer.status_code == 401 and "revoked" in answer.json()["detail"]
        assert stored(client, project, second["secret"], "g").status_code == 201
    actors = {entry["actor"] for entry in db.audit_log(project_id=project, limit=50)}
    assert actors >= {f"token:{made['token_id']}" for made in (first, second, fleet)}


def test_past_its_limit_the_kept_facades_are_made_again(db: Ctxdb) -> None:
    project = db.projects.create("many tokens")["project_id"]
    kept = Facades(db, limit=2)
    tokens = [{"token_id": f"t{n}", "project_id": project} for n in range(3)]
    made = [kept.of(token) for token in tokens]
    assert len(kept._of_token) == 1  # the third dropped the two kept before it
    assert kept.of(tokens[2]) is made[2] and kept.of(tokens[0]) is not made[0]
    assert [facade.settings.actor for facade in made] == ["token:t0", "token:t1", "token:t2"]
