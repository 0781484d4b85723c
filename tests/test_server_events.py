"""``GET /v1/events`` against a real uvicorn server in a thread, on both backends: the SSE wire
format, a project token sees its project only, resuming with Last-Event-ID (and ``?after=``)
gives exactly what was missed, heartbeats, and a revoked token ends the stream."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ctxdb.http import event_routes
from ctxdb.service import Ctxdb
from remote_server import served as serving

EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")
DATA_FIELDS = {"id", "project_id", "entity_type", "entity_id", "action", "actor",
               "occurred_at"}


@pytest.fixture
def served(db: Ctxdb) -> Iterator[str]:
    with serving(db) as url:
        yield url


@pytest.fixture
def two(db: Ctxdb) -> dict[str, str]:
    a, b = (db.projects.create(name)["project_id"] for name in ("A", "B"))
    return {"a": a, "b": b, "read_a": secret(db, a, "read"), "fleet": secret(db, None, "read")}


def secret(db: Ctxdb, project_id: str | None, scope: str) -> str:
    return str(db.access_tokens.create(project_id, scope)["secret"])


class Events:
    """The events of one open stream, parsed from the SSE wire format as a browser does."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        self.lines = response.iter_lines()
        self.comments: list[str] = []
        self.raw: list[str] = []

    def next(self) -> dict[str, Any]:
        """The next event (comments and the retry field are collected on the way)."""
        fields: dict[str, str] = {}
        for line in self.lines:
            self.raw.append(line)
            if line == "":
                if "data" in fields:
                    return {**fields, "data": json.loads(fields["data"])}
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        raise EOFError("the stream ended")

    def take(self, n: int) -> list[dict[str, Any]]:
        return [self.next() for _ in range(n)]


def stream(base: str, token: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return httpx.stream("GET", f"{base}/v1/events", headers=headers, timeout=20, **kwargs)


def test_a_project_token_gets_its_projects_changes_as_server_sent_events(
        db: Ctxdb, served: str, two: dict[str, str]) -> None:
    with stream(served, two["read_a"]) as response:
        events = Events(response)
        db.context.store(two["b"], {"secret": "of b"}, "HIGH", "note")
        item = db.context.store(two["a"], {"note": "of a"}, "HIGH", "note")
        db.memories.put(two["b"], "team", "plan", {"secret": "of b"})
        task = db.tasks.create(two["a"], "a task")
        first, second = events.take(2)
    assert first["event"] == "context_item" and second["event"] == "task"
    assert EVENT_ID.match(first["id"]) and first["id"] != second["id"]
    assert set(first["data"]) == DATA_FIELDS and first["data"]["id"] == first["id"]
    assert first["data"]["entity_id"] == str(item["item_id"])
    assert first["data"]["action"] == "context.store"
    assert second["data"]["entity_id"] == str(task["task_id"])
    assert {e["data"]["project_id"] for e in (first, second)} == {two["a"]}
    assert "ctxdb change feed" in events.comments
    assert "retry: 2000" in events.raw
    assert two["b"] not in "\n".join(events.raw) and "of b" not in "\n".join(events.raw)


def test_last_event_id_and_after_resume_with_exactly_the_missed_events(
        db: Ctxdb, served: str, two: dict[str, str]) -> None:
    with stream(served, two["read_a"]) as response:
        events = Events(response)
        db.context.store(two["a"], {"n": 0}, "HIGH", "note")
        seen = events.next()
    missed = [db.context.store(two["a"], {"n": n}, "LOW", "note")["item_id"]
              for n in range(1, 4)]
    db.context.store(two["b"], {"n": "b"}, "LOW", "note")
    expected = [str(item) for item in missed]
    with stream(served, two["read_a"], headers={"Last-Event-ID": seen["id"]}) as response:
        resumed = Events(response).take(3)
    assert [e["data"]["entity_id"] for e in resumed] == expected
    with stream(served, two["read_a"], params={"after": seen["id"], "max_seconds": 3}) \
            as response:
        again = Events(response)
        replay = again.take(3)
        with pytest.raises(EOFError):  # nothing more, then the stream ends at max_seconds
            again.next()
    assert replay == resumed


def test_a_fleet_token_follows_every_project_or_the_one_it_names(
        db: Ctxdb, served: str, two: dict[str, str]) -> None:
    with stream(served, two["fleet"]) as every, \
            stream(served, two["fleet"], params={"project_id": two["b"]}) as only_b:
        all_events, b_events = Events(every), Events(only_b)
        db.context.store(two["a"], {"n": 1}, "HIGH", "note")
        db.context.store(two["b"], {"n": 2}, "HIGH", "note")
        assert [e["data"]["project_id"] for e in all_events.take(2)] == [two["a"], two["b"]]
        assert b_events.next()["data"]["project_id"] == two["b"]


def test_another_or_an_unknown_project_and_a_bad_cursor_are_refused(
        db: Ctxdb, served: str, two: dict[str, str]) -> None:
    for token, params, status, code in (
            (two["read_a"], {"project_id": two["b"]}, 404, "project_not_found"),
            (two["fleet"], {"project_id": "proj_nope"}, 404, "project_not_found"),
            (two["read_a"], {"after": "not-a-cursor"}, 400, "invalid_input")):
        with stream(served, token, params=params) as response:
            assert response.status_code == status
            assert response.headers["content-type"] == "application/problem+json"
            assert json.loads(response.read())["code"] == code
    answer = httpx.get(f"{served}/v1/events", params={"project_id": two["b"]},
                       headers={"Authorization": f"Bearer {two['read_a']}"})
    unknown = httpx.get(f"{served}/v1/events", params={"project_id": "proj_nope"},
                        headers={"Authorization": f"Bearer {two['read_a']}"})
    assert answer.json()["detail"].replace(two["b"], "X") == \
        unknown.json()["detail"].replace("proj_nope", "X")


def test_heartbeats_keep_the_stream_open_and_a_revoked_token_ends_it(
        db: Ctxdb, served: str, two: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_routes, "HEARTBEAT_SECONDS", 0.3)
    made = db.access_tokens.create(two["a"], "read")
    with stream(served, made["secret"]) as response:
        events = Events(response)
        time.sleep(1)
        db.context.store(two["a"], {"n": 1}, "HIGH", "note")
        events.next()
        assert events.comments.count("heartbeat") >= 2
        db.access_tokens.revoke(made["token_id"])
        started, after = time.monotonic(), []
        with pytest.raises(EOFError):
            while True:
                after.append(events.next()["data"]["action"])
        assert time.monotonic() - started < 5
        assert after == ["api_token.revoke"]  # the revocation itself, then the end
    with stream(served, made["secret"]) as response:
        assert response.status_code == 401
