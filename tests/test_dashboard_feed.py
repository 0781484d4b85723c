"""``GET /ui/events``, the change feed of the dashboard's pages, against a real uvicorn server
on both backends: signed in by the session cookie, the signed-in token's projects only,
refused without a session (401) and to other sites (403), and ended by a revocation."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from ctxdb.http import event_routes
from ctxdb.service import Ctxdb
from remote_server import served


@pytest.fixture
def base(db: Ctxdb) -> Iterator[str]:
    with served(db) as url:
        yield url


@pytest.fixture
def two(db: Ctxdb) -> dict[str, str]:
    a, b = (db.projects.create(name)["project_id"] for name in ("A", "B"))
    return {"a": a, "b": b}


@contextmanager
def signed_in(base: str, secret: str) -> Iterator[httpx.Client]:
    """A client holding the session cookie of ``secret``."""
    with httpx.Client(base_url=base, timeout=20) as client:
        form = client.get("/ui/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None
        answer = client.post("/ui/login", data={"csrf": csrf[1], "token": secret})
        assert answer.status_code == 303, answer.text
        yield client


def data_of(lines: Iterator[str]) -> dict[str, Any]:
    """The next event's data; an event of this stream has no ``event`` field (a page hears
    every event with one ``message`` listener)."""
    for line in lines:
        assert not line.startswith("event:"), line
        if line.startswith("data: "):
            return dict(json.loads(line.removeprefix("data: ")))
    raise EOFError("the stream ended")


SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def test_a_signed_in_page_follows_its_projects_changes(
        db: Ctxdb, base: str, two: dict[str, str]) -> None:
    secret = db.access_tokens.create(two["a"], "read")["secret"]
    with signed_in(base, secret) as client, \
            client.stream("GET", "/ui/events", headers=SAME_ORIGIN) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert "connect-src 'self'" in stream.headers["content-security-policy"]
        lines = stream.iter_lines()
        db.context.store(two["b"], {"note": "of b"}, "HIGH", "note")
        db.context.store(two["a"], {"note": "of a"}, "HIGH", "note")
        change = data_of(lines)
    assert (change["project_id"], change["action"]) == (two["a"], "context.store")
    # A fleet-wide token follows every project, or the one its page names.
    fleet = db.access_tokens.create(None, "read")["secret"]
    with signed_in(base, fleet) as client, client.stream(
            "GET", "/ui/events", params={"project_id": two["b"]}) as stream:
        lines = stream.iter_lines()
        db.memories.put(two["a"], "n", "k", {"v": 1})
        db.memories.put(two["b"], "n", "k", {"v": 2})
        assert data_of(lines)["project_id"] == two["b"]


def test_no_session_another_sites_page_and_another_project_are_refused(
        db: Ctxdb, base: str, two: dict[str, str]) -> None:
    assert httpx.get(f"{base}/ui/events", timeout=10).status_code == 401
    wrong = httpx.get(f"{base}/ui/events", cookies={"ctxdb_session": "ctxdb_nope"}, timeout=10)
    assert wrong.status_code == 401
    secret = db.access_tokens.create(two["a"], "read")["secret"]
    with signed_in(base, secret) as client:
        here = {"Origin": base, "Sec-Fetch-Site": "same-origin"}
        with client.stream("GET", "/ui/events", headers=here) as stream:
            assert stream.status_code == 200
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                        {"Origin": "https://attacker.example"}):
            assert client.get("/ui/events", headers=headers).status_code == 403, headers
        other = client.get("/ui/events", params={"project_id": two["b"]})
        unknown = client.get("/ui/events", params={"project_id": "proj_nope"})
        assert other.status_code == unknown.status_code == 404


def test_revoking_the_token_ends_the_stream_and_refuses_the_next(
        db: Ctxdb, base: str, two: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_routes, "HEARTBEAT_SECONDS", 0.3)
    made = db.access_tokens.create(two["a"], "read")
    with signed_in(base, made["secret"]) as client:
        with client.stream("GET", "/ui/events") as stream:
            lines = stream.iter_lines()
            db.access_tokens.revoke(made["token_id"])
            started = time.monotonic()
            with pytest.raises(EOFError):
                while True:
                    data_of(lines)
            assert time.monotonic() - started < 5
        assert client.get("/ui/events").status_code == 401
