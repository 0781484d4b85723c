"""The dashboard end to end, in a real headless Chromium against a real uvicorn server, on
both backends: signing in and out, an instance appearing and its gauge moving while an agent
reports, approving a gate from the inbox while ``ctxdb approval wait`` waits for it, search,
the pack preview, and no console error on any page (a CSP violation is one)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctxdb.service import Ctxdb
from dashboard_browser import ConsoleWatch, chromium_path, screenshot
from remote_server import served

CTXDB = Path(sys.executable).with_name("ctxdb")
# An agent's change must show within 2 s (the change feed triggers a refresh; without it, the
# region is polled every second).
LIVE_MS = 2_000
# Run before the page's own script: no timer repeats, so no poll can refresh the page.
NO_POLLING = "window.setInterval = function () { return 0; };"
WIDE, NARROW = {"width": 1280, "height": 900}, {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def site(db: Ctxdb) -> Iterator[dict[str, Any]]:
    project = db.projects.create("Shop", "e-commerce rewrite", total_story_points=40)
    pid = project["project_id"]
    db.phases.start(db.phases.create(pid, 1, "checkout")["phase_id"])
    token = db.access_tokens.create(pid, "write", name="operator")
    with served(db) as base:
        yield {"base": base, "pid": pid, "secret": token["secret"],
               "token_id": token["token_id"]}


@pytest.fixture
def page(browser: Any, site: dict[str, Any]) -> Iterator[Any]:
    # A viewer far from UTC: the page must show times in the viewer's zone.
    context = browser.new_context(viewport=WIDE, locale="en-US", timezone_id="Asia/Kolkata")
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    opened.console_watch = ConsoleWatch(opened)
    yield opened
    context.close()


def sign_in(page: Any, site: dict[str, Any]) -> None:
    page.goto(site["base"] + "/")
    assert page.url.endswith("/ui/login")
    page.get_by_label("API token").fill(site["secret"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(site["base"] + "/ui/")


def no_console_errors(page: Any) -> None:
    assert page.console_watch.errors == []


def test_an_instance_appears_and_its_gauge_moves_while_the_agent_reports(
        db: Ctxdb, page: Any, site: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    sign_in(page, site)
    pid = site["pid"]
    expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
    agent = db.instances.launch(pid, client="claude-code", context_window=200_000)
    row = page.locator(f"tr[data-instance='{agent['instance_id']}']")
    expect(row).to_be_visible(timeout=LIVE_MS)
    expect(row.get_by_test_id("gauge-text")).to_contain_text("0.0%")
    db.tokens.update_usage(agent["instance_id"], 50_000)
    expect(row.get_by_test_id("gauge-text")).to_contain_text("25.0%", timeout=LIVE_MS)
    screenshot(page, "fleet")

    row.get_by_role("link", name=agent["instance_id"]).click()
    expect(page.get_by_role("heading", name=f"Instance {agent['instance_id']}")).to_be_visible()
    gauge = page.get_by_test_id("gauge-text")
    expect(gauge).to_contain_text("25.0%")
    db.instances.heartbeat(agent["instance_id"])
    db.tokens.update_usage(agent["instance_id"], 180_000)
    expect(gauge).to_contain_text("90.0%", timeout=LIVE_MS)
    expect(page.locator("svg.gauge.hot")).to_be_visible()  # past the clear threshold
    expect(page.locator("svg.chart polyline")).to_be_visible()
    # The viewer's zone: the <time> elements were rewritten by the page's script.
    started = page.locator("dd time")
    expect(started).to_contain_text("GMT+5:30")
    expect(page.locator("time[data-age]")).to_have_text(re.compile(r"^\d+ s ago$"))
    screenshot(page, "instance")
    no_console_errors(page)


def test_a_change_shows_through_the_change_feed_with_polling_disabled(
        db: Ctxdb, page: Any, site: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    page.add_init_script(NO_POLLING)
    opened: list[str] = []
    page.on("request", lambda request: opened.append(request.url)
            if "/ui/events" in request.url else None)
    sign_in(page, site)
    pid = site["pid"]
    page.goto(f"{site['base']}/ui/projects/{pid}/work")
    expect(page.locator("[data-live]")).to_have_attribute("data-following", "feed")
    assert opened[-1] == f"{site['base']}/ui/events?project_id={pid}"
    # An agent's write through HTTP, as a remote agent makes it.
    gate = httpx.post(f"{site['base']}/v1/projects/{pid}/approvals",
                      headers={"Authorization": f"Bearer {site['secret']}"},
                      json={"gate_type": "deploy", "request": {"to": "staging"}, "title": "ship"},
                      timeout=10)
    assert gate.status_code == 201, gate.text
    card = page.locator(f"[data-gate='{gate.json()['gate_id']}']")
    expect(card).to_be_visible(timeout=LIVE_MS)
    # And one through the library, on the fleet page.
    page.get_by_role("link", name="Fleet").click()
    expect(page.locator("[data-live]")).to_have_attribute("data-following", "feed")
    agent = db.instances.launch(pid, client="claude-code")
    expect(page.locator(f"tr[data-instance='{agent['instance_id']}']")).to_be_visible(
        timeout=LIVE_MS)
    no_console_errors(page)


def test_without_the_feed_the_page_polls(db: Ctxdb, page: Any, site: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    page.route("**/ui/events*", lambda route: route.fulfill(status=503, body="gone"))
    sign_in(page, site)
    expect(page.locator("[data-live]")).to_have_attribute("data-following", "poll")
    agent = db.instances.launch(site["pid"], client="gemini")
    expect(page.locator(f"tr[data-instance='{agent['instance_id']}']")).to_be_visible(
        timeout=LIVE_MS)


def test_approving_a_gate_from_the_inbox_ends_the_agents_wait(
        db: Ctxdb, page: Any, site: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    sign_in(page, site)
    pid = site["pid"]
    page.goto(f"{site['base']}/ui/projects/{pid}/work")
    gate = db.approvals.request(pid, "deploy", {"target": "production"}, title="ship v2")
    waiting = subprocess.Popen(
        [str(CTXDB), "--url", db.settings.url, "approval", "wait", str(gate["gate_id"]),
         "--timeout", "60", "--interval", "0.2", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        card = page.locator(f"[data-gate='{gate['gate_id']}']")
        expect(card).to_be_visible(timeout=LIVE_MS)
        screenshot(page, "work")
        card.get_by_label("Reason").fill("checked the migration plan")
        card.get_by_role("button", name="Approve").click()
        out, err = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, err
    decided = json.loads(out)
    assert decided["status"] == "approved"
    assert decided["decided_by"] == f"token:{site['token_id']}"
    assert decided["response"]["reason"] == "checked the migration plan"
    expect(page.locator(f"[data-decided='{gate['gate_id']}']")).to_contain_text("approved")
    expect(card).to_have_count(0)
    no_console_errors(page)


def test_search_pack_preview_every_page_and_sign_out(
        db: Ctxdb, page: Any, site: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    pid = site["pid"]
    db.context.store(pid, {"decision": "payments via Stripe webhooks"}, "CRITICAL", "decision")
    for n in range(12):
        db.context.store(pid, {"note": f"cart refactor step {n}", "pad": "x" * 400}, "LOW")
    db.memories.put(pid, "user:prefs", "style", {"tabs": False})
    db.memories.put(pid, "user:prefs", "style", {"tabs": True})
    agent = db.instances.launch(pid, client="codex")
    db.commands.record(pid, "pytest", exit_code=0, output="12 passed",
                       instance_id=agent["instance_id"])
    sign_in(page, site)

    page.get_by_role("link", name="Project").click()
    page.get_by_label("Search context").fill("stripe")
    page.get_by_label("Search context").press("Enter")
    results = page.get_by_test_id("results")
    expect(results).to_contain_text("payments via Stripe webhooks")
    expect(results.locator("li.item")).to_have_count(1)
    screenshot(page, "project")

    page.get_by_role("link", name="Pack preview").click()
    page.get_by_label("Budget (tokens)").fill("300")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("pack")).to_contain_text("payments via Stripe webhooks")
    expect(page.get_by_test_id("omitted").locator("tbody tr")).not_to_have_count(0)
    screenshot(page, "pack")

    for name in ("Memories", "Audit", "Work", "Fleet"):
        page.get_by_role("link", name=name, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.goto(f"{site['base']}/ui/projects/{pid}/audit?verify=1")
    expect(page.get_by_test_id("chain")).to_contain_text("no change found")
    page.goto(f"{site['base']}/ui/projects/{pid}/memories?ns=user:prefs&key=style")
    expect(page.get_by_text("version 2")).to_be_visible()
    no_console_errors(page)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(site["base"] + "/ui/login")
    page.goto(site["base"] + "/ui/")
    assert page.url.endswith("/ui/login")
    no_console_errors(page)


def test_keyboard_and_a_narrow_screen(db: Ctxdb, browser: Any, site: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=NARROW)
    page = context.new_page()
    watch = ConsoleWatch(page)
    try:
        page.goto(site["base"] + "/ui/login")
        expect(page.get_by_label("API token")).to_be_focused()
        page.keyboard.type(site["secret"])
        page.keyboard.press("Enter")  # the form submits from the keyboard
        page.wait_for_url(site["base"] + "/ui/")
        page.keyboard.press("Tab")
        expect(page.locator(".skip")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
        db.instances.launch(site["pid"], client="gemini")
        page.reload()
        width = page.evaluate("document.documentElement.scrollWidth")
        # Nothing is wider than the screen (wide tables scroll inside their own box).
        assert width <= NARROW["width"], width
        screenshot(page, "fleet-narrow")
        assert watch.errors == []
    finally:
        context.close()
