"""The dashboard's walls, through a plain HTTP client (the ASGI app in process), on both
backends: sign-in and its cookie, tokens refused on every page and region, another project's
ids answered like unknown ones, the CSRF token on every form, the security headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ctxdb.service import Ctxdb
from ctxdb.web.render import CSP

SECRET_OF_B = "the-secret-of-project-b"
REGION = {"X-Ctxdb-Region": "1"}


@pytest.fixture
def client(db: Ctxdb) -> Iterator[TestClient]:
    from ctxdb.http.app import create_app

    with TestClient(create_app(db), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def world(db: Ctxdb) -> dict[str, Any]:
    """Projects A and B, each with an instance, a context item, a memory and a pending gate."""
    found: dict[str, Any] = {}
    for name in ("A", "B"):
        project = db.projects.create(f"project {name}", total_story_points=10)["project_id"]
        secret = SECRET_OF_B if name == "B" else "a's own"
        instance = db.instances.launch(project)["instance_id"]
        db.context.store(project, {"note": secret}, "HIGH", "note")
        db.memories.put(project, "notes", "plan", {"v": secret})
        gate = db.approvals.request(project, "deploy", {"what": secret}, title=secret)
        found[name] = {"project_id": project, "instance_id": instance,
                       "gate_id": gate["gate_id"]}
    return found


def pages_of(ids: dict[str, Any]) -> list[str]:
    project = f"/ui/projects/{ids['project_id']}"
    return ["/ui/", f"{project}/work", f"{project}/instances/{ids['instance_id']}", project,
            f"{project}?q=secret", f"{project}/pack?budget=5000", f"{project}/memories",
            f"{project}/memories?ns=notes&key=plan", f"{project}/audit?verify=1"]


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found[1]


def sign_in(client: TestClient, secret: str) -> str:
    """Signs in through the form; returns the CSRF token of the new session's pages."""
    form = client.get("/ui/login")
    answer = client.post("/ui/login", data={"csrf": csrf_in(form.text), "token": secret})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/ui/"
    return csrf_in(client.get("/ui/").text)


def test_the_root_leads_to_the_dashboard_and_sign_in(client: TestClient) -> None:
    assert client.get("/").headers["location"] == "/ui/"
    answer = client.get("/ui/")
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"


def test_sign_in_sets_a_strict_http_only_cookie(db: Ctxdb, client: TestClient,
                                                world: dict[str, Any]) -> None:
    secret = db.access_tokens.create(world["A"]["project_id"], "read")["secret"]
    form = client.get("/ui/login")
    answer = client.post("/ui/login", data={"csrf": csrf_in(form.text), "token": secret})
    cookie = next(v for k, v in answer.headers.multi_items()
                  if k == "set-cookie" and v.startswith("ctxdb_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    form = client.get("/ui/login")
    tls = client.post("/ui/login", headers={"X-Forwarded-Proto": "https"},
                      data={"csrf": csrf_in(form.text), "token": secret})
    assert "Secure" in tls.headers["set-cookie"]


def test_sign_in_refuses_a_wrong_token_and_a_missing_csrf(db: Ctxdb, client: TestClient) -> None:
    form = client.get("/ui/login?error=paste+your+token+elsewhere&status_code=500")
    assert form.status_code == 200 and "elsewhere" not in form.text
    wrong = client.post("/ui/login", data={"csrf": csrf_in(form.text),
                                            "token": "ctxdb_" + "x" * 43})
    assert wrong.status_code == 401 and "ctxdb_session" not in wrong.headers.get("set-cookie", "")
    secret = db.access_tokens.create(None, "read")["secret"]
    for data in ({"token": secret}, {"token": secret, "csrf": "forged"}):
        answer = client.post("/ui/login", data=data)
        assert answer.status_code == 403, answer.text
        assert "ctxdb_session" not in answer.headers.get("set-cookie", "")


def test_pages_and_regions_refuse_a_missing_wrong_or_revoked_token(
        db: Ctxdb, client: TestClient, world: dict[str, Any]) -> None:
    token = db.access_tokens.create(world["A"]["project_id"], "write")
    for cookie in (None, "ctxdb_" + "y" * 43, "not-a-token", token["secret"]):
        if cookie == token["secret"]:
            db.access_tokens.revoke(token["token_id"])
        client.cookies.clear()
        if cookie:
            client.cookies.set("ctxdb_session", cookie)
        for path in pages_of(world["A"]):
            answer = client.get(path)
            assert answer.status_code == 303, (path, cookie)
            assert answer.headers["location"] == "/ui/login"
            assert client.get(path, headers=REGION).status_code == 401
            assert "a's own" not in answer.text
        decide = f"/ui/projects/{world['A']['project_id']}/approvals/{world['A']['gate_id']}"
        answer = client.post(decide, data={"csrf": "x", "decision": "approve"})
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"
        assert db.approvals.get(world["A"]["gate_id"])["status"] == "pending"


def test_every_page_renders_for_its_own_project(db: Ctxdb, client: TestClient,
                                                world: dict[str, Any]) -> None:
    sign_in(client, db.access_tokens.create(world["A"]["project_id"], "read")["secret"])
    for path in pages_of(world["A"]):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert SECRET_OF_B not in answer.text, path
        assert world["B"]["project_id"] not in answer.text, path
        region = client.get(path, headers=REGION)
        assert region.status_code == 200 and "<html" not in region.text
        again = client.get(path, headers={**REGION, "If-None-Match": region.headers["etag"]})
        assert again.status_code == 304, path


def test_another_projects_ids_are_answered_like_unknown_ones(
        db: Ctxdb, client: TestClient, world: dict[str, Any]) -> None:
    a, b = world["A"], world["B"]
    csrf = sign_in(client, db.access_tokens.create(a["project_id"], "write")["secret"])
    foreign = {**b, "project_id": a["project_id"]}  # A's project, B's records
    unknown = {"project_id": "proj_nope", "instance_id": "inst_nope", "gate_id": 999_999}
    for ids in (b, foreign):
        for path in pages_of(ids)[1:]:
            answer = client.get(path)
            if ids is foreign and answer.status_code == 200:
                continue  # a page naming only A's project: A's own
            assert answer.status_code == 404, (path, answer.text)
            assert SECRET_OF_B not in answer.text
            if ids is b:  # the same answer, word for word, as for a project that does not exist
                ghost = client.get(path.replace(b["project_id"], unknown["project_id"]))
                assert answer.text.replace(b["project_id"], unknown["project_id"]) == ghost.text
            else:
                assert b["project_id"] not in answer.text
    for ids in (b, foreign, {**unknown, "project_id": a["project_id"]}):
        answer = client.post(f"/ui/projects/{ids['project_id']}/approvals/{ids['gate_id']}",
                             data={"csrf": csrf, "decision": "approve", "reason": "x"})
        assert answer.status_code == 404, answer.text
        assert SECRET_OF_B not in answer.text
    assert db.approvals.get(b["gate_id"])["status"] == "pending"


def test_every_form_needs_the_sessions_csrf_token(db: Ctxdb, client: TestClient,
                                                  world: dict[str, Any]) -> None:
    a = world["A"]
    csrf = sign_in(client, db.access_tokens.create(a["project_id"], "write")["secret"])
    other = sign_in(TestClient(client.app, follow_redirects=False),
                    db.access_tokens.create(None, "admin")["secret"])
    decide = f"/ui/projects/{a['project_id']}/approvals/{a['gate_id']}"
    forms = re.findall(r'<form[^>]*method="post"[^>]*action="([^"]+)"',
                       client.get(f"/ui/projects/{a['project_id']}/work").text)
    assert sorted(set(forms)) == sorted({"/ui/logout", decide})
    for wrong in ({}, {"csrf": ""}, {"csrf": "forged"}, {"csrf": other}):
        assert client.post(decide, data={**wrong, "decision": "approve"}).status_code == 403
        assert client.post("/ui/logout", data=wrong).status_code == 403
    assert db.approvals.get(a["gate_id"])["status"] == "pending"
    answer = client.post(decide, data={"csrf": csrf, "decision": "reject", "reason": "no"})
    assert answer.status_code == 303
    gate = db.approvals.get(a["gate_id"])
    assert gate["status"] == "rejected" and gate["response"]["reason"] == "no"
    assert gate["decided_by"].startswith("token:tok_")
    assert client.post("/ui/logout", data={"csrf": csrf}).status_code == 303


def test_a_read_token_cannot_decide(db: Ctxdb, client: TestClient,
                                    world: dict[str, Any]) -> None:
    a = world["A"]
    csrf = sign_in(client, db.access_tokens.create(a["project_id"], "read")["secret"])
    answer = client.post(f"/ui/projects/{a['project_id']}/approvals/{a['gate_id']}",
                         data={"csrf": csrf, "decision": "approve"})
    assert answer.status_code == 403
    assert db.approvals.get(a["gate_id"])["status"] == "pending"


def test_security_headers_on_pages_errors_and_static_files(
        db: Ctxdb, client: TestClient, world: dict[str, Any]) -> None:
    sign_in(client, db.access_tokens.create(None, "read")["secret"])
    for path in ("/ui/login", "/ui/", f"/ui/projects/{world['A']['project_id']}",
                 "/ui/projects/proj_nope", "/ui/static/dashboard.css", "/ui/static/dashboard.js",
                 "/ui/static/missing.js", "/ui/no/such/page"):
        headers = client.get(path).headers
        assert headers["content-security-policy"] == CSP, path
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
    assert "'unsafe-inline'" not in CSP and "default-src 'self'" in CSP
    assert "frame-ancestors 'none'" in CSP
