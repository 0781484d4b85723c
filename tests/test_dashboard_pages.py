"""What each dashboard page shows, through the ASGI app in process, on both backends: the
fleet's alerts and what each token may see, the task board's leases, command output, an
instance's injections with their items and its usage over time, a project's history,
paging, memory versions; and the usage chart's geometry."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from ctxdb.domain.agents import AgentSession, RepoIdentity
from ctxdb.errors import ValidationError
from ctxdb.service import Ctxdb
from ctxdb.web.charts import Point, audit_points, chart
from test_dashboard_security import sign_in

REPO = RepoIdentity("git:example.com/acme/shop@0123456789ab", "shop", "/src/shop", "main")


@pytest.fixture
def client(db: Ctxdb) -> Iterator[TestClient]:
    from ctxdb.http.app import create_app

    with TestClient(create_app(db), follow_redirects=False) as test_client:
        yield test_client


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_fleet_shows_every_kind_of_alert(db: Ctxdb, client: TestClient, pid: str) -> None:
    crashed = db.instances.launch(pid, client="codex")["instance_id"]
    db.instances.set_status(crashed, "crashed")
    full = db.instances.launch(pid, client="claude-code", context_window=100_000)["instance_id"]
    db.tokens.update_usage(full, 90_000)
    db.approvals.request(pid, "plan", {"steps": 3}, title="migrate orders")
    worker = db.instances.launch(pid)["instance_id"]
    db.tasks.create(pid, "flaky import")
    task = db.tasks.claim(pid, worker, 60)
    assert task is not None
    db.tasks.fail(task["task_id"], task["epoch"], "timed out")
    sign_in(client, db.access_tokens.create(pid, "read")["secret"])
    page = text_of(client.get("/ui/").text)
    assert f"{crashed} crashed" in page
    assert f"{full} is near its clear threshold" in page
    assert "waits: migrate orders" in page
    assert f"task {task['task_id']} failed: flaky import" in page
    assert "90.0% · 90000 / 100000" in page


def test_a_fleet_token_sees_every_project_and_a_project_token_its_own(
        db: Ctxdb, client: TestClient) -> None:
    a = db.projects.create("alpha")["project_id"]
    b = db.projects.create("beta")["project_id"]
    sign_in(client, db.access_tokens.create(None, "read")["secret"])
    page = client.get("/ui/").text
    assert a in page and b in page
    client.cookies.clear()
    sign_in(client, db.access_tokens.create(a, "read")["secret"])
    page = client.get("/ui/").text
    assert a in page and b not in page


def test_work_shows_leases_messages_and_command_output(
        db: Ctxdb, client: TestClient, pid: str) -> None:
    worker = db.instances.launch(pid)["instance_id"]
    db.tasks.create(pid, "write the checkout")
    task = db.tasks.claim(pid, worker, 300)
    assert task is not None
    run = db.commands.record(pid, "pytest", ["-q"], exit_code=1, output="1 failed, 9 passed")
    db.messages.send(pid, "instance", worker, {"hint": "use the cart api"}, subject="tip")
    sign_in(client, db.access_tokens.create(pid, "read")["secret"])
    page = client.get(f"/ui/projects/{pid}/work").text
    assert "write the checkout" in page and f"held by <span class=\"mono\">{worker}" in page
    assert "1 failed, 9 passed" not in page  # the output shows when the run is chosen
    assert "use the cart api" in page and "<strong>tip</strong>" in page
    chosen = client.get(f"/ui/projects/{pid}/work?run={run['run_id']}").text
    assert "1 failed, 9 passed" in chosen
    assert "deciding needs a write token" not in chosen  # no gate pending: nothing to decide


def test_an_instance_shows_its_injections_usage_and_handoff(
        db: Ctxdb, client: TestClient) -> None:
    started = db.sessions.start(AgentSession("claude-code", "s-1", None, "/src/shop"),
                                "startup", REPO)
    instance = db.instances.get(started["instance_id"])
    pid = instance["project_id"]
    db.context.store(pid, {"decision": "stripe for payments"}, "CRITICAL")
    db.sessions.start(AgentSession("claude-code", "s-1", None, "/src/shop"), "clear", REPO)
    db.tokens.update_usage(instance["instance_id"], 40_000)
    db.tokens.clear_and_reload(instance["instance_id"], summary="cart done; next: checkout")
    sign_in(client, db.access_tokens.create(pid, "read")["secret"])
    page = client.get(f"/ui/projects/{pid}/instances/{instance['instance_id']}").text
    assert "stripe for payments" in page  # an injected item, shown with its content
    assert page.count('class="injection"') == len(db.sessions.injections(
        instance["instance_id"]))
    assert "<polyline" in page and "cart done; next: checkout" in page
    assert "tokens.clear_and_reload" in page


def test_an_instance_lists_every_handoff_newest_first_a_page_at_a_time(
        db: Ctxdb, client: TestClient, pid: str) -> None:
    agent = db.instances.launch(pid)["instance_id"]
    other = db.instances.launch(pid)["instance_id"]
    made = [db.tokens.record_handoff(agent, summary=f"step {n} done")["handoff_id"]
            for n in range(12)]
    db.tokens.record_handoff(other, summary="the other agent's")
    sign_in(client, db.access_tokens.create(pid, "read")["secret"])
    url = f"/ui/projects/{pid}/instances/{agent}"
    first = client.get(url).text
    shown = [int(n) for n in re.findall(r'data-handoff="(\d+)"', first)]
    assert shown == made[::-1][:10]
    assert "step 11 done" in first and "the other agent's" not in first
    older = re.search(r'href="(\?handoffs_before=\d+)#handoffs-h">Older handoffs', first)
    assert older is not None
    second = client.get(url + older[1]).text
    assert [int(n) for n in re.findall(r'data-handoff="(\d+)"', second)] == made[1::-1]
    assert "Older handoffs" not in second and "Newest handoffs" in second
    # The library call under the page: an instance of another project is refused.
    assert db.tokens.handoffs(agent, pid, before_id=made[1], limit=5) == [
        db.tokens.handoffs(agent, limit=12)[-1]]
    with pytest.raises(ValidationError):
        db.tokens.handoffs(agent, db.projects.create("elsewhere")["project_id"])
    assert client.get(url + "?handoffs_before=0").status_code == 400


def test_a_project_shows_history_pages_and_memory_versions(
        db: Ctxdb, client: TestClient, pid: str) -> None:
    first = db.context.store(pid, {"decision": "stripe"}, "HIGH")
    db.context.supersede(first["item_id"], {"decision": "adyen"})
    gone = db.context.store(pid, {"note": "scratch"}, "LOW")
    db.context.delete(gone["item_id"])
    for n in range(12):
        db.context.store(pid, {"n": n}, "MEDIUM")
    db.memories.put(pid, "user:prefs", "theme", {"dark": True})
    db.memories.put(pid, "user:prefs", "theme", {"dark": False})
    sign_in(client, db.access_tokens.create(pid, "read")["secret"])
    page = text_of(client.get(f"/ui/projects/{pid}").text)
    assert f"item #{first['item_id']} superseded by #" in page
    assert f"item #{gone['item_id']} deleted" in page
    assert "More MEDIUM items" in page
    paged = client.get(f"/ui/projects/{pid}?priority=MEDIUM&after=0").text
    assert paged.count('class="item"') == 12 and "More MEDIUM items" not in paged
    versions = text_of(client.get(f"/ui/projects/{pid}/memories?ns=user:prefs&key=theme").text)
    assert "version 1" in versions and "version 2" in versions
    searched = client.get(f"/ui/projects/{pid}?q=adyen").text
    assert searched.count('class="item"') == 1


def test_the_pack_preview_names_what_was_left_out(db: Ctxdb, client: TestClient,
                                                  pid: str) -> None:
    db.context.store(pid, {"decision": "keep"}, "CRITICAL")
    big = db.context.store(pid, {"notes": "x" * 4_000}, "LOW")
    sign_in(client, db.access_tokens.create(pid, "read")["secret"])
    page = text_of(client.get(f"/ui/projects/{pid}/pack?budget=200").text)
    assert f"#{big['item_id']} LOW {big['token_count']} exceeds_remaining_budget" in page
    assert "Left out (1)" in page
    refused = client.get(f"/ui/projects/{pid}/pack?budget=1")
    assert refused.status_code == 200 and 'role="alert"' in refused.text
    assert "CRITICAL" in text_of(refused.text)  # CRITICAL alone over the budget: said, not cut


def test_the_chart_scales_usage_and_marks_clears() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    points = [Point(start, 0), Point(start + timedelta(seconds=50), 50_000),
              Point(start + timedelta(seconds=100), 0, clear=True)]
    drawn = chart(points, 100_000, 0.5)
    assert drawn["line"] == "4.0,176.0 320.0,90.0 636.0,176.0"
    assert drawn["clears"] == [636.0] and drawn["threshold_y"] == 90.0
    assert chart([], 100_000, 0.5) == {"empty": True}
    entries = [{"occurred_at": "2026-01-01T00:00:02.000Z", "action": "tokens.clear_and_reload",
                "details": {}},
               {"occurred_at": "2026-01-01T00:00:01.000Z", "action": "tokens.update",
                "details": {"current": 7}}]
    assert [(p.tokens, p.clear) for p in audit_points(entries)] == [(7, False), (0, True)]


def test_a_poll_builds_the_region_only_when_the_viewers_data_moved(
        db: Ctxdb, client: TestClient, pid: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from ctxdb.web import render, work

    monkeypatch.setattr(render, "TICK_SECONDS", 10**9)  # no tick during the test
    builds: list[str] = []
    board = work.task_board
    monkeypatch.setattr(work, "task_board", lambda *a: builds.append("built") or board(*a))
    other = db.projects.create("other")["project_id"]
    sign_in(client, db.access_tokens.create(pid, "read")["secret"])
    path, region = f"/ui/projects/{pid}/work", {"X-Ctxdb-Region": "1"}
    # The whole page carries its region's tag, so the script's first refresh is a 304.
    shown_tag = re.search(r'data-etag="([^"]+)"', client.get(path).text)
    assert shown_tag is not None
    first = client.get(path, headers={**region, "If-None-Match": html.unescape(shown_tag[1])})
    assert first.status_code == 304
    builds.clear()
    tag = client.get(path, headers=region).headers["etag"]
    assert tag == first.headers["etag"]
    db.messages.send(other, "broadcast", None, "elsewhere")  # another project: not a change
    same = client.get(path, headers={**region, "If-None-Match": tag})
    assert (same.status_code, same.headers["etag"], len(builds)) == (304, tag, 1)
    db.memories.put(pid, "notes", "k", 1)  # a change of the project this page does not show
    moved = client.get(path, headers={**region, "If-None-Match": tag})
    assert moved.status_code == 304 and len(builds) == 2
    assert moved.headers["etag"] != tag and moved.headers["etag"][-34:] == tag[-34:]
    db.messages.send(pid, "broadcast", None, "hello team")
    shown = client.get(path, headers={**region, "If-None-Match": moved.headers["etag"]})
    assert shown.status_code == 200 and "hello team" in shown.text
