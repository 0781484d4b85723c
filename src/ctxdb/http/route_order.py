"""The app's routes with the ones every agent event takes first, each request resolved as before.

Starlette finds a request's route by trying the app's routes in order, one regular
expression each, until one matches: ``/v1/hooks``, declared last of about a hundred, cost
about a hundred tries on every hook event (several percent of a worker's CPU). :func:`hot_first`
moves the routes of :data:`HOT_PATHS` to the front, but only where that cannot change which
route any request gets: a route moves only if every route declared before it that could match
one of the same paths moves too (and stays before it). The router takes the first route whose
path matches (with the method, else the first whose path alone matches, for a 405), and two
routes that can never match the same path never compete, so their order does not matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Route

# The routes of the agents' every event (the fleet's mix, docs/server.md): hook events, usage
# reports, stores, task claims and completions, messages.
HOT_PATHS = (
    "/v1/hooks",
    "/v1/projects/{project_id}/instances/{instance_id}/usage",
    "/v1/projects/{project_id}/context",
    "/v1/projects/{project_id}/tasks/claim",
    "/v1/projects/{project_id}/tasks/{task_id}/complete",
    "/v1/projects/{project_id}/messages",
)


def hot_first(routes: Sequence[BaseRoute], hot: Sequence[str] = HOT_PATHS) -> list[BaseRoute]:
    """``routes`` with the hot ones that may move first (see the module docstring)."""
    moved: list[BaseRoute] = []
    for index, route in enumerate(routes):
        if _path(route) in hot and all(
                any(earlier is other for other in moved)
                for earlier in routes[:index] if may_overlap(earlier, route)):
            moved.append(route)
    return moved + [route for route in routes if not any(route is m for m in moved)]


def paths_in_order(document: dict[str, Any], routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """``document`` (an OpenAPI document) with its paths in the order ``routes`` declared
    them, as before any route moved: the document served stays the same to the byte."""
    order: dict[str, int] = {}
    for route in routes:
        order.setdefault(getattr(route, "path_format", ""), len(order))
    paths = document.get("paths", {})
    document["paths"] = dict(sorted(paths.items(), key=lambda item: order.get(item[0], len(order))))
    return document


def may_overlap(first: BaseRoute, second: BaseRoute) -> bool:
    """Whether some path could match both routes. ``True`` when unsure: a mount, a route
    whose parameter may span segments (``{name:path}``), a segment mixing text and a
    parameter; otherwise two paths overlap when they have as many segments and agree on
    every segment that is plain text in both (a parameter matches text without ``/``)."""
    a, b = _path(first), _path(second)
    if a is None or b is None or ":path}" in a or ":path}" in b:
        return True
    left, right = a.split("/"), b.split("/")
    if len(left) != len(right):
        return False
    return all(x == y or _parameter(x) or _parameter(y) for x, y in zip(left, right, strict=True))


def _parameter(segment: str) -> bool:
    return "{" in segment


def _path(route: BaseRoute) -> str | None:
    """The path template of a plain route (not a mount)."""
    return route.path if isinstance(route, Route) else None
