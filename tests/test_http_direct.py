"""A ``/v1`` route's everyday requests skip FastAPI's general handler (ctxdb.http.direct);
every other request goes to that handler and answers exactly as it did."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ctxdb.http import direct
from ctxdb.http.app import create_app
from ctxdb.service import Ctxdb


@pytest.fixture
def served(db: Ctxdb) -> tuple[TestClient, str, dict[str, str]]:
    project = db.projects.create("direct")["project_id"]
    secret = db.access_tokens.create(project, "write")["secret"]
    return TestClient(create_app(db)), project, {"Authorization": f"Bearer {secret}"}


def test_the_v1_routes_but_the_stream_are_answered_directly(db: Ctxdb) -> None:
    app = create_app(db)
    v1 = [route for route in app.router.routes if getattr(route, "path", "").startswith("/v1")]
    general = [route.path for route in v1  # type: ignore[attr-defined]
               if not getattr(route, "app", None).__qualname__.startswith("direct_app")]
    assert general == ["/v1/events"]  # a stream: FastAPI's own handler


def test_a_plain_request_never_reaches_fastapis_handler(
        served: tuple[TestClient, str, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    client, project, auth = served
    seen: list[bytes | None] = []
    original = direct._replayed

    def noted(raw: bytes | None, receive: Any) -> Any:
        seen.append(raw)
        return original(raw, receive)

    monkeypatch.setattr(direct, "_replayed", noted)
    answer = client.post(f"/v1/projects/{project}/context", headers=auth,
                         json={"content": "a plain store", "priority": "HIGH"})
    assert answer.status_code == 201 and seen == []
    answer = client.post(f"/v1/projects/{project}/context", headers=auth, json={"priority": 3})
    assert answer.status_code == 400 and seen == [b'{"priority":3}']


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8",
                                          "application/merge-patch+json"])
def test_another_json_content_type_is_read_by_fastapi_as_before(
        served: tuple[TestClient, str, dict[str, str]], content_type: str) -> None:
    client, project, auth = served
    answer = client.post(f"/v1/projects/{project}/context",
                         headers={**auth, "Content-Type": content_type},
                         content=json.dumps({"content": "typed", "priority": "LOW"}))
    assert answer.status_code == 201, answer.text
    item = client.get(f"/v1/projects/{project}/context/{answer.json()['item_id']}",
                      headers=auth)
    assert item.json()["content"] == "typed"


def test_broken_json_and_a_bad_body_answer_as_fastapi_did(
        served: tuple[TestClient, str, dict[str, str]]) -> None:
    client, project, auth = served
    url = f"/v1/projects/{project}/context"
    broken = client.post(url, headers={**auth, "Content-Type": "application/json"},
                         content=b'{"content": ')
    assert broken.status_code == 400
    assert broken.headers["content-type"] == "application/problem+json"
    assert broken.json()["errors"][0]["msg"] == "JSON decode error"
    missing = client.post(url, headers=auth, json={"priority": "HIGH"})
    assert missing.status_code == 400 and missing.json()["detail"].startswith("body.content")
    bad_query = client.get(f"/v1/projects/{project}/context", headers=auth,
                           params={"priority": "HIGH", "limit": "many"})
    assert bad_query.status_code == 400 and "limit" in bad_query.json()["detail"]


def test_a_refused_token_answers_before_a_refused_body(
        served: tuple[TestClient, str, dict[str, str]]) -> None:
    client, project, _ = served
    url = f"/v1/projects/{project}/context"
    anonymous = client.post(url, json={"priority": "nonsense"})
    assert anonymous.status_code == 401
    wrong = client.post(url, json={"priority": "nonsense"},
                        headers={"Authorization": "Bearer ctxdb_not-a-token"})
    assert wrong.status_code == 401

