"""The HTTP API of ``ctxdb serve`` in process (httpx through the ASGI app), on both backends:
tokens, the auth and isolation matrices over every route, the error table, the body limit."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_origin

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from ctxdb.errors import CtxdbError
from ctxdb.http.app import create_app
from ctxdb.http.auth import Need
from ctxdb.http.problems import STATUS_BY_CATEGORY
from ctxdb.service import Ctxdb
from test_cli_docs import all_error_classes

# FastAPI's own routes (the OpenAPI document and its viewers), open to all by design.
DOCUMENTATION_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
OPENAPI_DOC = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"
SECRET_OF_B = "the-secret-of-project-b"


def token(db: Ctxdb, project_id: str | None, scope: str, **kw: Any) -> str:
    return str(db.access_tokens.create(project_id, scope, **kw)["secret"])


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def client(db: Ctxdb) -> Iterator[TestClient]:
    with TestClient(create_app(db, max_body_bytes=64 * 1024)) as test_client:
        yield test_client


@pytest.fixture
def world(db: Ctxdb) -> dict[str, Any]:
    return build_world(db)


def build_world(db: Ctxdb) -> dict[str, Any]:
    """Projects A and B, each with one record of every kind a route names by id."""
    found: dict[str, Any] = {}
    for name in ("A", "B"):
        project = db.projects.create(f"project {name}")["project_id"]
        instance = db.instances.launch(project)["instance_id"]
        phase = db.phases.create(project, 1, f"phase of {name}")["phase_id"]
        secret = SECRET_OF_B if name == "B" else "a's own"
        item = db.context.store(project, {"note": secret}, "HIGH", "note")["item_id"]
        db.memories.put(project, f"notes-of-{name}", f"plan-of-{name}", {"v": secret})
        task = db.tasks.create(project, f"task {secret}")["task_id"]
        message = db.messages.send(project, "broadcast", None, {"m": secret})["message_id"]
        found[name] = {"project_id": project, "instance_id": instance, "item_id": item,
                       "namespace": f"notes-of-{name}", "key": f"plan-of-{name}", "task_id": task,
                       "message_id": message, "phase_id": phase,
                       **workflow_records(db, project, instance, secret)}
    return found


def workflow_records(db: Ctxdb, project: str, instance: str, secret: str) -> dict[str, Any]:
    """A session with an event, an approval gate, a command run and a checkpoint, each
    holding ``secret``."""
    session = db.conversations.create(project, "app", "user", state={"s": secret})
    db.conversations.append(session["session_id"], "user", {"said": secret})
    return {"session_id": session["session_id"],
            "gate_id": db.approvals.request(project, "plan", {"r": secret})["gate_id"],
            "run_id": db.commands.queue(project, "pytest", [secret])["run_id"],
            "checkpoint_id": db.checkpoints.save(instance, {"c": secret})["checkpoint_id"]}


def routes(client: TestClient) -> list[APIRoute]:
    return [r for r in client.app.routes if isinstance(r, APIRoute)]  # type: ignore[attr-defined]


def needed_scope(route: APIRoute) -> str | None:
    needs = [d.call for d in route.dependant.dependencies if isinstance(d.call, Need)]
    assert len(needs) <= 1, route.path
    return needs[0].scope.value if needs else None


def url_of(route: APIRoute, ids: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: str(ids[match[1]]), route.path)


SAMPLE_QUERY = {"priority": "HIGH", "budget_tokens": 1000, "q": "secret"}
# Body fields whose declared type allows values the service refuses before any lookup.
SAMPLE_FIELDS = {"role": "user", "exit_code": 0, "to": "context"}


def sample(annotation: Any) -> Any:
    """A value of the type a field declares (the first type of a union)."""
    if get_origin(annotation) is dict:
        return {"a": 1}
    for kind, value in ((bool, True), (int, 1), (float, 1.0), (str, "x"), (list, [])):
        if annotation is kind or kind in getattr(annotation, "__args__", ()):
            return value
    return {"a": 1}


def sample_body(route: APIRoute, ids: dict[str, Any]) -> dict[str, Any] | None:
    """A body the route's model accepts, naming the records of ``ids`` where it has a field
    for them (an instance id in a claim, an inbox, an ack, a handoff)."""
    if not route.dependant.body_params:
        return None
    model = route.dependant.body_params[0].field_info.annotation
    body = {}
    for name, field in model.model_fields.items():
        if name in ids and name != "project_id":
            body[name] = ids[name]
        elif name in SAMPLE_FIELDS:
            body[name] = SAMPLE_FIELDS[name]
        elif field.is_required():
            body[name] = sample(field.annotation)
    return body


def call(client: TestClient, route: APIRoute, ids: dict[str, Any],
         headers: dict[str, str]) -> Any:
    method = sorted(route.methods)[0]
    query = {p.name: SAMPLE_QUERY.get(p.name, sample(p.field_info.annotation))
             for p in route.dependant.query_params if p.field_info.is_required()}
    # The change feed streams until the client goes; here it sends what there is and ends.
    query.update({p.name: 0 for p in route.dependant.query_params if p.name == "max_seconds"})
    return client.request(method, url_of(route, ids), json=sample_body(route, ids),
                          params=query, headers=headers)


def named_ids(route: APIRoute) -> set[str]:
    """The ids a request of the route names: in its path, and in its body's fields."""
    names = set(re.findall(r"\{(\w+)\}", route.path))
    if route.dependant.body_params:
        model = route.dependant.body_params[0].field_info.annotation
        names |= set(model.model_fields) & {"instance_id", "phase_id", "task_id"}
    return names


def test_every_route_but_healthz_needs_a_token(client: TestClient) -> None:
    scopes = [(route.path, needed_scope(route)) for route in routes(client)]
    assert {path for path, scope in scopes if scope is None} == {"/healthz"}
    assert len([path for path, _scope in scopes if path.startswith("/v1/")]) >= 35


def test_auth_matrix_refuses_every_route(db: Ctxdb, client: TestClient,
                                         world: dict[str, Any]) -> None:
    a, b = world["A"], world["B"]
    revoked = db.access_tokens.create(a["project_id"], "admin")
    db.access_tokens.revoke(revoked["token_id"])
    expired = token(db, a["project_id"], "admin", ttl_seconds=1)
    read_a, write_b = token(db, a["project_id"], "read"), token(db, b["project_id"], "admin")
    time.sleep(1.2)
    refusals = {
        "no token": ({}, 401),
        "not bearer": ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        "malformed": (auth("not-a-token"), 401),
        "wrong": (auth("ctxdb_" + "x" * 43), 401),
        "revoked": (auth(revoked["secret"]), 401),
        "expired": (auth(expired), 401),
    }
    checked = 0
    for route in routes(client):
        scope = needed_scope(route)
        if scope is None:
            continue
        for case, (headers, status) in refusals.items():
            answer = call(client, route, a, headers)
            assert answer.status_code == status, (route.path, case, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == "unauthenticated"
            checked += 1
        if scope != "read":
            answer = call(client, route, a, auth(read_a))
            assert answer.status_code == 403, (route.path, answer.text)
            assert answer.json()["code"] == "forbidden"
        if "{project_id}" in route.path:
            answer = call(client, route, a, auth(write_b))
            assert answer.status_code == 404, (route.path, answer.text)
            assert answer.json()["code"] == "project_not_found"
        elif route.path == "/v1/projects" and "POST" in route.methods:
            assert call(client, route, a, auth(write_b)).status_code == 403
    assert checked > 150
    for case, (headers, status) in refusals.items():
        answer = mcp_call(client, headers, "get_context")
        assert (answer.status_code, answer.json()["code"]) == (status, "unauthenticated"), case
    # /mcp: a read token is offered no writing tool; another project's token reaches nothing.
    refused = mcp_call(client, auth(read_a), "store_context", content="x")
    assert "Unknown tool" in refused.json()["result"]["content"][0]["text"]
    other = mcp_call(client, auth(write_b), "get_context", project_id=a["project_id"])
    assert other.json()["result"]["isError"] is True
    assert "[project_not_found]" in other.json()["result"]["content"][0]["text"]


def test_a_refused_token_answers_before_a_bad_body(db: Ctxdb, client: TestClient,
                                                  world: dict[str, Any]) -> None:
    """The token is checked before the request's body and parameters (in the endpoint's
    worker thread, or by the 400 handler when those are refused first: ctxdb.http.encoding),
    so a request both unauthorised and malformed gets the token's refusal."""
    a, b = world["A"], world["B"]
    read_a, fleet_admin = token(db, a["project_id"], "read"), token(db, None, "admin")
    admin_b = token(db, b["project_id"], "admin")
    checked = 0
    for route in routes(client):
        if not route.dependant.body_params or needed_scope(route) is None:
            continue
        method, url = sorted(route.methods)[0], url_of(route, a)
        cases = [({}, 401, "unauthenticated"), (auth(fleet_admin), 400, "invalid_input")]
        if needed_scope(route) != "read":
            cases.append((auth(read_a), 403, "forbidden"))
        if "{project_id}" in route.path:
            cases.append((auth(admin_b), 404, "project_not_found"))
        for headers, status, code in cases:
            answer = client.request(method, url, json={"not a field": 1}, headers=headers)
            assert (answer.status_code, answer.json()["code"]) == (status, code), (
                route.path, headers, answer.text)
            checked += 1
    assert checked > 60


MCP_HEADERS = {"Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}


def mcp_call(client: TestClient, headers: dict[str, str], tool: str, **arguments: Any) -> Any:
    """One stateless MCP tools/call at /mcp."""
    return client.post("/mcp", headers={**MCP_HEADERS, **headers}, json={
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments}})


def test_every_route_is_in_the_matrices(client: TestClient) -> None:
    # The matrices enumerate the API routes; the other routes have their own rows: /mcp, and
    # the dashboard at /ui (with / leading there) in tests/test_dashboard_security.py.
    others = {getattr(route, "path", None) for route in client.app.routes  # type: ignore[attr-defined]
              if not isinstance(route, APIRoute)}
    assert others - DOCUMENTATION_ROUTES == {"/mcp", "/ui", "/"}


def test_isolation_matrix_gives_nothing_of_another_project(
        db: Ctxdb, client: TestClient, world: dict[str, Any]) -> None:
    """A's token with B's ids on every route that names one: 404, as for an id that does not
    exist, and not one byte of B's records in the answer."""
    a, b = world["A"], world["B"]
    headers = auth(token(db, a["project_id"], "admin"))
    unknown = {"project_id": "proj_nope", "instance_id": "inst_nope", "item_id": 999_999,
               "namespace": "notes-of-nobody", "key": "plan-of-nobody", "task_id": 999_998,
               "message_id": 999_997, "phase_id": 999_996, "session_id": "sess_nope",
               "gate_id": 999_995, "run_id": 999_994, "checkpoint_id": 999_993}
    tried = 0
    for route in routes(client):
        names = named_ids(route)
        if not names:
            continue
        for foreign in ({**b}, {**b, "project_id": a["project_id"]}):
            if foreign["project_id"] == a["project_id"] and (
                    names == {"project_id"} or route.name == "put_memory"):
                continue  # nothing of B's is named (a memory key names A's own memory)
            answer = call(client, route, foreign, headers)
            text = answer.text
            assert SECRET_OF_B not in text, (route.path, text)
            if foreign["project_id"] == a["project_id"]:
                assert b["project_id"] not in text, (route.path, text)
            if route.name == "launch_instance" and foreign["project_id"] == a["project_id"]:
                # Instance ids are global and chosen by clients: that one is taken can be
                # said (409), not where.
                assert answer.status_code == 409, text
                continue
            ghost = {**unknown, "project_id": foreign["project_id"]} \
                if foreign["project_id"] == a["project_id"] else unknown
            expected = call(client, route, ghost, headers)
            assert answer.status_code == expected.status_code == 404, (route.path, foreign, text)
            assert same_shape(answer.json(), foreign, names) == \
                same_shape(expected.json(), ghost, names)
            tried += 1
    assert tried >= 40


def same_shape(body: dict[str, Any], ids: dict[str, Any], names: set[str]) -> str:
    """The body with the ids the request named replaced by placeholders."""
    text = json.dumps(body, sort_keys=True)
    for name, value in sorted(ids.items(), key=lambda pair: -len(str(pair[1]))):
        if name not in names:
            continue
        text = text.replace(repr(value), f"<{name}>").replace(json.dumps(value), f"<{name}>")
        text = text.replace(str(value), f"<{name}>")
    return text


def test_tokens_are_never_stored_in_clear(db: Ctxdb) -> None:
    project = db.projects.create("tokens")["project_id"]
    secrets_ = [token(db, project, "write"), token(db, None, "admin", name="operators")]
    dump = json.dumps([db.access_tokens.list(), db.audit_log(limit=1000)], default=str)
    rows = db.storage.read(lambda tx: tx.all("list_api_tokens", project_id=""))
    assert len(rows) == 2
    for secret in secrets_:
        assert secret not in dump and secret[6:] not in dump
    stored = bulk_text(db)
    assert all(secret not in stored and secret[6:] not in stored for secret in secrets_)
    assert {"api_token.create"} <= {e["action"] for e in db.audit_log(limit=10)}


def bulk_text(db: Ctxdb) -> str:
    """Every row of the api_tokens and audit_log tables, read directly, as text."""
    from ctxdb.storage.base import raw

    def unit(tx: Any) -> str:
        rows = raw(tx).all_raw("SELECT * FROM api_tokens", {})
        rows += raw(tx).all_raw("SELECT * FROM audit_log", {})
        return json.dumps(rows, default=str)

    return str(db.storage.read(unit))


def test_revocation_takes_effect_on_the_next_request(db: Ctxdb, client: TestClient,
                                                     world: dict[str, Any]) -> None:
    made = db.access_tokens.create(world["A"]["project_id"], "read")
    url = f"/v1/projects/{world['A']['project_id']}"
    assert client.get(url, headers=auth(made["secret"])).status_code == 200
    db.access_tokens.revoke(made["token_id"])
    answer = client.get(url, headers=auth(made["secret"]))
    assert answer.status_code == 401 and "revoked" in answer.json()["detail"]
    assert db.access_tokens.list()[0]["status"] == "revoked"


def test_a_write_through_the_api_is_stored_and_audited_as_the_token(
        db: Ctxdb, client: TestClient, world: dict[str, Any]) -> None:
    a = world["A"]
    made = db.access_tokens.create(a["project_id"], "write", name="ci")
    url = f"/v1/projects/{a['project_id']}/context"
    body = {"content": {"x": 1}, "priority": "CRITICAL", "content_type": "decision"}
    first = client.post(url, json=body, headers={**auth(made["secret"]),
                                                 "Idempotency-Key": "k-1"})
    again = client.post(url, json=body, headers={**auth(made["secret"]),
                                                 "Idempotency-Key": "k-1"})
    assert first.status_code == 201 and again.json()["item_id"] == first.json()["item_id"]
    assert db.context.get(first.json()["item_id"])["content"] == {"x": 1}
    other = client.post(url, json={**body, "content": {"x": 2}},
                        headers={**auth(made["secret"]), "Idempotency-Key": "k-1"})
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
    actors = {e["actor"] for e in db.audit_log(project_id=a["project_id"], limit=50)}
    assert f"token:{made['token_id']}" in actors


def test_memory_compare_and_set_and_task_lease(db: Ctxdb, client: TestClient,
                                               world: dict[str, Any]) -> None:
    a = world["A"]
    h = auth(token(db, a["project_id"], "write"))
    base = f"/v1/projects/{a['project_id']}"
    put = client.put(f"{base}/memories/team/plan", json={"value": 1, "expected_version": 0},
                     headers=h)
    assert put.status_code == 200 and put.json()["version"] == 1
    stale = client.put(f"{base}/memories/team/plan", json={"value": 2, "expected_version": 0},
                       headers=h)
    assert stale.status_code == 409 and stale.json()["code"] == "version_conflict"
    assert stale.json()["current_version"] == 1
    assert len(client.get(f"{base}/memories/team/plan/history", headers=h).json()) == 1
    claim = client.post(f"{base}/tasks/claim", json={"instance_id": a["instance_id"],
                                                     "lease_seconds": 60}, headers=h)
    task = claim.json()["task"]
    assert task["task_id"] == a["task_id"]
    done = client.post(f"{base}/tasks/{task['task_id']}/complete",
                       json={"epoch": task["epoch"], "result": {"ok": True}}, headers=h)
    assert done.status_code == 200 and done.json()["status"] == "done"
    pack = client.get(f"{base}/pack", params={"budget_tokens": 5000}, headers=h).json()
    assert pack["manifest"] and pack["items"][0]["item_id"] == a["item_id"]


def test_every_error_category_has_a_status() -> None:
    for cls in all_error_classes():
        assert cls.category in STATUS_BY_CATEGORY, cls
    assert issubclass(all_error_classes()[0], CtxdbError)


def test_bad_input_is_a_problem_and_big_bodies_are_refused_unread(
        db: Ctxdb, client: TestClient, world: dict[str, Any]) -> None:
    a = world["A"]
    h = auth(token(db, a["project_id"], "write"))
    url = f"/v1/projects/{a['project_id']}/context"
    bad = client.post(url, json={"content": "x", "priority": "URGENT"}, headers=h)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_priority"
    shape = client.post(url, json={"nothing": 1}, headers=h)
    assert shape.status_code == 400 and shape.json()["code"] == "invalid_input"
    big = client.post(url, content=b"{" + b" " * (70 * 1024) + b"}",
                      headers={**h, "content-type": "application/json"})
    assert big.status_code == 413 and big.json()["code"] == "content_too_large"

    def chunks() -> Iterator[bytes]:
        yield b'{"content": "'
        for _ in range(80):
            yield b"y" * 1024
        yield b'"}'

    streamed = client.post(url, content=chunks(), headers={**h, "content-type":
                                                           "application/json"})
    assert streamed.status_code == 413
    assert db.context.full(a["project_id"]) == db.context.full(a["project_id"])
    assert len([i for items in db.context.full(a["project_id"]).values() for i in items]) == 1


def test_openapi_document_is_current(client: TestClient) -> None:
    assert OPENAPI_DOC.read_text("utf-8") == openapi_text(client), \
        "docs/openapi.json is out of date: run python scripts/gen_openapi.py"


def openapi_text(client: TestClient) -> str:
    return json.dumps(client.get("/openapi.json").json(), indent=2, sort_keys=True) + "\n"


def test_readyz_says_when_the_schema_is_not_this_ctxdbs(db: Ctxdb, client: TestClient,
                                                        world: dict[str, Any]) -> None:
    from ctxdb.storage.base import raw

    h = auth(token(db, world["A"]["project_id"], "read"))
    assert client.get("/readyz", headers=h).json()["status"] == "ready"
    db.storage.write(lambda tx: raw(tx).execute_raw(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
        "VALUES (9999, 'from_a_newer_ctxdb', 'x', '2030-01-01')", {}))
    try:
        answer = client.get("/readyz", headers=h)
    finally:  # the PostgreSQL database is shared by the whole test run
        db.storage.write(lambda tx: raw(tx).execute_raw(
            "DELETE FROM schema_migrations WHERE version = 9999", {}))
    assert answer.status_code == 503 and answer.json()["status"] == "unavailable"
    assert "schema version 9999" in answer.json()["detail"]
    assert client.get("/readyz", headers=h).status_code == 200
    assert client.get("/healthz").status_code == 200  # alive all the same


def test_every_route_answers_its_own_project_without_a_server_error(
        db: Ctxdb, client: TestClient, world: dict[str, Any]) -> None:
    """Each route called with A's own ids and a body of the declared shape: a success whose
    body matches the route's response model (FastAPI checks it), or a typed refusal; never
    a 5xx."""
    a = world["A"]
    for secret in (token(db, None, "admin"), token(db, a["project_id"], "write")):
        statuses = {}
        for route in routes(client):
            answer = call(client, route, a, auth(secret))
            assert answer.status_code < 500, (route.path, answer.text)
            if answer.status_code >= 400:
                assert answer.headers["content-type"] == "application/problem+json"
            statuses[(route.name, answer.status_code < 300)] = answer.status_code
        succeeded = {name for name, ok in statuses if ok}
        assert len(succeeded) >= 30, statuses


def test_a_bug_is_a_problem_without_internals(db: Ctxdb, world: dict[str, Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(type(db.projects), "get", broken)
    with TestClient(create_app(db), raise_server_exceptions=False) as quiet:
        answer = quiet.get(f"/v1/projects/{world['A']['project_id']}",
                           headers=auth(token(db, None, "read")))
    assert answer.status_code == 500 and answer.json()["code"] == "internal_error"
    assert "secret internals" not in answer.text


def test_unknown_routes_and_methods_are_problems_too(client: TestClient) -> None:
    missing = client.get("/v2/anything")
    assert missing.status_code == 404 and missing.json()["code"] == "route_not_found"
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = client.delete("/healthz")
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"


def test_the_audit_route_shows_the_projects_entries_only(
        db: Ctxdb, client: TestClient, world: dict[str, Any]) -> None:
    a, b = world["A"], world["B"]
    entries = client.get(f"/v1/projects/{a['project_id']}/audit",
                         headers=auth(token(db, a["project_id"], "read"))).json()
    assert entries and {e["project_id"] for e in entries} == {a["project_id"]}
    assert b["project_id"] not in json.dumps(entries)
