"""``Idempotency-Key`` on every create of the HTTP API, on both backends: a retry with the same
key and body gets the first answer and writes nothing; another body under the key is 409
idempotency_conflict and writes nothing; keys are per project."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from ctxdb.http.app import create_app
from ctxdb.service import Ctxdb


@pytest.fixture
def client(db: Ctxdb) -> Iterator[TestClient]:
    with TestClient(create_app(db)) as test_client:
        yield test_client


def ids_of(db: Ctxdb, name: str) -> dict[str, Any]:
    project = db.projects.create(f"project {name}")["project_id"]
    instance = db.instances.launch(project)["instance_id"]
    return {"project_id": project, "instance_id": instance,
            "item_id": db.context.store(project, "old", "HIGH", "note")["item_id"],
            "session_id": db.conversations.create(project, "app", "user")["session_id"]}


def bodies(ids: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Route name -> (a body it accepts, another body it accepts): one entry per create."""
    instance = ids["instance_id"]
    return {
        "create_project": ({"name": "p1"}, {"name": "p2"}),
        "create_phase": ({"phase_number": 7, "name": "n"}, {"phase_number": 8, "name": "n"}),
        "launch_instance": ({"model": "m1"}, {"model": "m2"}),
        "record_handoff": ({"instance_id": instance, "summary": "s1"},
                           {"instance_id": instance, "summary": "s2"}),
        "store_context": ({"content": "c1"}, {"content": "c2"}),
        "supersede_context": ({"content": "c1"}, {"content": "c2"}),
        "create_task": ({"title": "t1"}, {"title": "t2"}),
        "send_message": ({"recipient_kind": "broadcast", "body": 1},
                         {"recipient_kind": "broadcast", "body": 2}),
        "create_session": ({"app_name": "a", "user_id": "u1"},
                           {"app_name": "a", "user_id": "u2"}),
        "append_event": ({"role": "user", "content": 1}, {"role": "user", "content": 2}),
        "request_approval": ({"gate_type": "plan", "request": 1},
                             {"gate_type": "plan", "request": 2}),
        "queue_command": ({"command": "make"}, {"command": "pytest"}),
        "record_command": ({"command": "make", "exit_code": 0},
                           {"command": "pytest", "exit_code": 0}),
        "save_checkpoint": ({"instance_id": instance, "state": 1},
                            {"instance_id": instance, "state": 2}),
    }


def creates(client: TestClient) -> list[APIRoute]:
    return [r for r in client.app.routes  # type: ignore[attr-defined]
            if isinstance(r, APIRoute) and r.status_code == 201]


def takes_key(route: APIRoute) -> bool:
    return any(p.alias == "Idempotency-Key" for p in route.dependant.header_params)


def url(route: APIRoute, ids: dict[str, Any]) -> str:
    return route.path.format(**ids)


def test_every_create_takes_an_idempotency_key(client: TestClient, db: Ctxdb) -> None:
    found = {route.name for route in creates(client)}
    assert found == set(bodies(ids_of(db, "x"))), "a create without a test below"
    assert all(takes_key(route) for route in creates(client))


def test_a_retry_gets_the_first_answer_and_writes_nothing(client: TestClient,
                                                          db: Ctxdb) -> None:
    ids = ids_of(db, "A")
    headers = {"Authorization": f"Bearer {db.access_tokens.create(None, 'admin')['secret']}"}
    for route in creates(client):
        body, other = bodies(ids)[route.name]
        keyed = {**headers, "Idempotency-Key": f"key-of-{route.name}"}
        first = client.post(url(route, ids), json=body, headers=keyed)
        assert first.status_code == 201, (route.name, first.text)
        audited = len(db.audit_log(limit=100_000))
        again = client.post(url(route, ids), json=body, headers=keyed)
        assert again.status_code == 201, (route.name, again.text)
        assert again.json() == first.json(), route.name
        conflict = client.post(url(route, ids), json=other, headers=keyed)
        assert conflict.status_code == 409, (route.name, conflict.text)
        assert conflict.json()["code"] == "idempotency_conflict"
        assert len(db.audit_log(limit=100_000)) == audited, f"{route.name} wrote again"
        if route.name == "supersede_context":
            continue  # the item is superseded by now: only a retry of that call succeeds
        fresh = client.post(url(route, ids), json=other,
                            headers={**keyed, "Idempotency-Key": f"new-{route.name}"})
        assert fresh.status_code == 201 and fresh.json() != first.json(), route.name


def test_keys_are_per_project(client: TestClient, db: Ctxdb) -> None:
    """The same key in two projects makes two records, each project's own."""
    a, b = ids_of(db, "A"), ids_of(db, "B")
    for route in creates(client):
        if route.name == "create_project":
            continue  # fleet-wide: a project belongs to none
        made = []
        for ids in (a, b):
            token = db.access_tokens.create(ids["project_id"], "write")["secret"]
            answer = client.post(url(route, ids), json=bodies(ids)[route.name][0],
                                 headers={"Authorization": f"Bearer {token}",
                                          "Idempotency-Key": "the-same-key"})
            assert answer.status_code == 201, (route.name, answer.text)
            made.append(answer.json())
        assert made[0] != made[1], route.name
        assert ids_of_answer(made[0], a) and ids_of_answer(made[1], b), route.name


def ids_of_answer(answer: dict[str, Any], ids: dict[str, Any]) -> bool:
    """Whether an answer belongs to the project of ``ids`` (by project or session id)."""
    return ids["project_id"] in str(answer) or ids["session_id"] == answer.get("session_id")
