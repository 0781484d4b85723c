"""The dashboard's first view of a large fleet: server time per page.

One project holds ``--items`` context items (default 100,000, bulk-loaded as in the other
benchmarks) and ``--instances`` agent instances (default 1,000, registered through ctxdb:
most live with some token usage, a tenth crashed, a quarter completed), with a few pending
approvals, failed tasks, messages and command runs. A fleet-wide token signs in, and each
page of the dashboard is requested through the ASGI application in process (no network, no
browser: the time is the server's, from the request to the last byte of its answer).

For each page: the first request (cold: the first view of it after sign-in) and the median
of ``--repeat`` more; and the poll of its live region that finds nothing new (answered 304
by the ETag). The goal is a first view in at most 500 ms. This is a benchmark, not a test:
the figures are printed as measured, misses included.

Usage:
    python bench/dashboard.py [--items N] [--instances N] [--repeat N]
                              [--backend sqlite|postgres|all] [--pg-url URL] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

from fastapi.testclient import TestClient

from ctxdb.http.app import create_app
from ctxdb.service import Ctxdb
from data import Mix, bench_settings, seeded_project
from run import DEFAULT_PG_URL, machine, scratch_database

TARGET_MS = 500.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--instances", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed_fleet(db: Ctxdb, items: int, instances: int) -> dict[str, Any]:
    """The project, its items and instances, and a little of everything the pages show."""
    quarter = items // 4
    pid = seeded_project(db, "large fleet", Mix(20, quarter, quarter, items - 2 * quarter - 20))
    launched = []
    for number in range(instances):
        instance = db.instances.launch(pid, client="claude-code", context_window=200_000)
        db.tokens.update_usage(instance["instance_id"], (number * 997) % 200_000)
        launched.append(instance["instance_id"])
    for number, instance_id in enumerate(launched):
        if number % 10 == 0:
            db.instances.set_status(instance_id, "crashed")
        elif number % 4 == 1:
            db.instances.end(instance_id)
    for number in range(20):
        db.approvals.request(pid, "deploy", {"n": number}, title=f"release {number}")
        db.messages.send(pid, "broadcast", None, {"note": number})
        db.commands.record(pid, "pytest", exit_code=number % 2, output="." * 2_000)
        db.tasks.create(pid, f"task {number}")
    for _ in range(5):
        task = db.tasks.claim(pid, launched[2], 600)
        if task is not None:
            db.tasks.fail(task["task_id"], task["epoch"], "timed out")
    return {"project_id": pid, "instance_id": launched[2]}


def analyze(url: str) -> None:
    """Gather the planner's statistics after the bulk load, as autovacuum does within a
    minute of a large change: the items went in by COPY, past ctxdb, and a plan made without
    statistics can be a different one (seconds instead of milliseconds, for ctxdb's searches
    of context items as for the list of live items)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("ANALYZE")


def signed_in(client: TestClient, secret: str) -> None:
    form = client.get("/ui/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    answer = client.post("/ui/login", data={"csrf": csrf[1], "token": secret})
    assert answer.status_code == 303, answer.text


def timed_get(client: TestClient, path: str, headers: dict[str, str] | None = None
              ) -> tuple[float, Any]:
    start = time.perf_counter()
    answer = client.get(path, headers=headers or {})
    return (time.perf_counter() - start) * 1000, answer


def measure_page(client: TestClient, name: str, path: str, repeat: int) -> dict[str, Any]:
    first, answer = timed_get(client, path)
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
    again = [timed_get(client, path)[0] for _ in range(repeat)]
    region = {"X-Ctxdb-Region": "1"}
    etag = client.get(path, headers=region).headers["etag"]
    polls = [timed_get(client, path, {**region, "If-None-Match": etag})
             for _ in range(repeat)]
    assert all(answer.status_code == 304 for _, answer in polls)
    return {"page": name, "path": path, "first_ms": first,
            "median_ms": statistics.median(again), "poll_304_ms":
            statistics.median(ms for ms, _ in polls), "bytes": len(answer.content),
            "passed": first <= TARGET_MS}


def pages(ids: dict[str, Any]) -> list[tuple[str, str]]:
    project = f"/ui/projects/{ids['project_id']}"
    return [("fleet", "/ui/"), ("work", f"{project}/work"),
            ("instance", f"{project}/instances/{ids['instance_id']}"),
            ("project (items by priority)", project),
            ("search, a word in ~1% of items", f"{project}?q=42"),
            ("search, a word in every item", f"{project}?q=cache"),
            ("pack preview, 20,000 tokens", f"{project}/pack?budget=20000"),
            ("memories", f"{project}/memories"), ("audit log", f"{project}/audit")]


def run_backend(backend: str, url: str, workdir: Path, args: argparse.Namespace
                ) -> list[dict[str, Any]]:
    settings = bench_settings(url, workdir / "config").replace(
        max_instances_per_project=args.instances + 10)
    with Ctxdb.open(settings) as db:
        log(f"{backend}: seeding {args.items:,} items and {args.instances:,} instances …")
        started = time.perf_counter()
        ids = seed_fleet(db, args.items, args.instances)
        if backend == "postgres":
            analyze(url)
        log(f"{backend}: seeded in {time.perf_counter() - started:.1f} s")
        secret = db.access_tokens.create(None, "read", name="bench")["secret"]
        with TestClient(create_app(db), follow_redirects=False) as client:
            signed_in(client, secret)
            return [{"backend": backend, **measure_page(client, name, path, args.repeat)}
                    for name, path in pages(ids)]


def table(results: list[dict[str, Any]]) -> str:
    lines = [f"{'page':30} {'backend':9} {'first':>9} {'median':>9} {'poll 304':>9} "
             f"{'KiB':>6}  goal first <= {TARGET_MS:.0f} ms"]
    for row in results:
        lines.append(f"{row['page']:30} {row['backend']:9} {row['first_ms']:7.1f}ms "
                     f"{row['median_ms']:7.1f}ms {row['poll_304_ms']:7.1f}ms "
                     f"{row['bytes'] / 1024:6.0f}  {'PASS' if row['passed'] else 'MISS'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ctxdb-bench-dashboard-") as scratch:
        workdir = Path(scratch)
        if args.backend in ("sqlite", "all"):
            results += run_backend("sqlite", str(workdir / "dashboard.db"), workdir, args)
        if args.backend in ("postgres", "all"):
            with scratch_database(args.pg_url) as url:
                results += run_backend("postgres", url, workdir, args)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "items": args.items,
                                         "instances": args.instances, "results": results},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
