"""The app's hot routes go first (ctxdb.http.route_order) and every request still gets the
route it got in the declared order: checked on the real app against one built without the
move, for paths made from every route's template and every method."""

from __future__ import annotations

import itertools

import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Match, Route

from ctxdb.http import app as app_module
from ctxdb.http.app import create_app
from ctxdb.http.route_order import HOT_PATHS, hot_first, may_overlap
from ctxdb.service import Ctxdb

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def resolved(routes: list[BaseRoute], path: str, method: str) -> BaseRoute | None:
    """The route Starlette's router hands the request to: the first full match, else the
    first whose path matches (a 405)."""
    scope = {"type": "http", "path": path, "method": method, "root_path": "", "headers": []}
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route
        if match == Match.PARTIAL and partial is None:
            partial = route
    return partial


def sample_paths(routes: list[BaseRoute]) -> set[str]:
    """Each plain route's template with its parameters replaced by ids and by every word
    another route of as many segments has at that place (the values that could make two
    routes compete), plus paths no route declares."""
    templates = [route.path for route in routes if isinstance(route, Route)]
    paths = {"/", "/ui/", "/ui/tasks", "/mcp", "/nowhere", "/v1/hooks/", "/v1/projects/"}
    for template in templates:
        segments = template.split("/")
        words = [{"p_0123abcd", "17"} | {other.split("/")[i] for other in templates
                                         if len(other.split("/")) == len(segments)
                                         and "{" not in other.split("/")[i]}
                 if "{" in segment else {segment} for i, segment in enumerate(segments)]
        paths |= {"/".join(choice) for choice in itertools.product(*words)}
    return paths


def test_the_hot_routes_come_first_and_every_request_keeps_its_route(
        db: Ctxdb, monkeypatch: pytest.MonkeyPatch) -> None:
    served = create_app(db).router.routes
    monkeypatch.setattr(app_module, "hot_first", list)  # the routes as declared
    declared = create_app(db).router.routes
    hot = [route for route in served if getattr(route, "path", None) in HOT_PATHS]
    assert len(hot) >= len(HOT_PATHS)
    assert served[:len(hot)] == hot  # all of them moved: none blocked by another route
    assert served != declared

    def key(route: BaseRoute | None) -> tuple[str, str] | None:
        if route is None:
            return None
        return getattr(route, "path", ""), ",".join(sorted(getattr(route, "methods", None)
                                                          or ()))

    paths = sample_paths(declared)
    assert len(paths) > 200
    for path, method in itertools.product(paths, METHODS):
        assert key(resolved(served, path, method)) == key(resolved(declared, path, method)), \
            (method, path)


def answer(request: object) -> PlainTextResponse:
    return PlainTextResponse("")


def test_a_hot_route_stays_behind_an_earlier_route_that_could_match_its_paths() -> None:
    first, any_task, claim, other = (Route("/x/{a}", answer), Route("/t/{task_id}", answer),
                                     Route("/t/claim", answer, methods=["POST"]),
                                     Route("/y", answer))
    assert may_overlap(any_task, claim) and not may_overlap(first, claim)
    assert hot_first([first, any_task, claim, other], ["/t/claim", "/y"]) == [
        other, first, any_task, claim]
    # Moved with it, the earlier route keeps its place before it.
    assert hot_first([first, any_task, claim, other], ["/t/claim", "/t/{task_id}"]) == [
        any_task, claim, first, other]


def test_the_openapi_document_lists_the_paths_as_declared(
        db: Ctxdb, monkeypatch: pytest.MonkeyPatch) -> None:
    served = create_app(db).openapi()
    monkeypatch.setattr(app_module, "hot_first", list)
    declared = create_app(db).openapi()
    assert list(served["paths"]) == list(declared["paths"]) and served == declared
