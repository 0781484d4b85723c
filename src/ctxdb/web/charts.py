"""An instance's token usage over time, as the points of an SVG chart drawn on the server
(no script, no library): from the audit log's usage reports and clears, and from the API
usage its transcripts recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ctxdb.web.render import parse_time

WIDTH, HEIGHT, PAD = 640, 180, 4
CLEARS = ("tokens.clear_and_reload", "tokens.clear", "tokens.auto_manage")


@dataclass(frozen=True)
class Point:
    at: datetime
    tokens: int
    clear: bool = False


def audit_points(entries: list[dict[str, Any]]) -> list[Point]:
    """Usage reported (``tokens.update``) and reset by a clear, oldest first."""
    points = []
    for entry in reversed(entries):  # the audit log is read newest first
        at, details = parse_time(entry["occurred_at"]), entry.get("details") or {}
        if at is None:
            continue
        if entry["action"] == "tokens.update" and isinstance(details.get("current"), int):
            points.append(Point(at, details["current"]))
        elif entry["action"] in CLEARS or entry["action"].startswith("tokens.clear"):
            points.append(Point(at, 0, clear=True))
    return points


def api_points(responses: list[dict[str, Any]]) -> list[Point]:
    """The context each API response carried: its input, cache reads and cache writes."""
    points = []
    for row in responses:
        at = parse_time(row.get("occurred_at"))
        if at is not None and not row.get("sidechain"):
            size = sum(int(row.get(name) or 0) for name in
                       ("input_tokens", "cache_read_tokens", "cache_creation_tokens"))
            points.append(Point(at, size))
    return points


def chart(points: list[Point], window: int, threshold: float) -> dict[str, Any]:
    """The polyline of ``points`` scaled to the chart, with the clears as marks and the
    threshold as a line; empty when there is nothing to draw."""
    points = sorted(points, key=lambda point: point.at)
    if not points or window <= 0:
        return {"empty": True}
    first, last = points[0].at, points[-1].at
    span = max((last - first).total_seconds(), 1.0)

    def x(point: Point) -> float:
        return PAD + (point.at - first).total_seconds() / span * (WIDTH - 2 * PAD)

    def y(tokens: float) -> float:
        return HEIGHT - PAD - min(tokens / window, 1.0) * (HEIGHT - 2 * PAD)

    return {
        "empty": False, "width": WIDTH, "height": HEIGHT,
        "line": " ".join(f"{x(p):.1f},{y(p.tokens):.1f}" for p in points),
        "clears": [round(x(p), 1) for p in points if p.clear],
        "threshold_y": round(y(threshold * window), 1),
        "first": points[0].at.isoformat(), "last": points[-1].at.isoformat(),
        "peak": max(p.tokens for p in points), "count": len(points),
    }
