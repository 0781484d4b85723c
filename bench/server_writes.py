"""Write throughput of ``ctxdb serve`` on SQLite against the in-process library, same database,
same run (issue 12: the server's goal is >= 2x the library's).

Three sides, each storing context items (one item per write, every write acknowledged only
after its COMMIT), interleaved repetitions with the order rotating (bench/harness.py):

* ``serve, group commit``: ``--clients`` concurrent HTTP clients (threads with a keep-alive
  connection each, spread over a few processes) posting to one ``ctxdb serve`` whose store
  commits concurrent writes together (``sqlite_group_commit``, its default on SQLite);
* ``serve, one commit per write``: the same clients against a second server with
  ``CTXDB_SQLITE_GROUP_COMMIT=false``;
  (each server runs ``--server-workers`` uvicorn workers, one by default);
* ``library``: ``--clients`` processes each opening the store with ``ctxdb.Ctxdb.open`` and
  storing its items one per transaction (bench/writers.py).

Throughput is all items stored divided by the time from the first client passing the start
barrier to the last one finishing (start-up not measured). Prints each side's median and the
ratios. A report, not a test: the machine may be shared, so the load average is printed
before and after and the figures are evidence, not a verdict.

Usage:
    python bench/server_writes.py [--clients 64] [--items 10] [--repetitions 3]
                                  [--server-workers 1]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ctxdb.service import Ctxdb
from data import bench_settings
from harness import measure_sides
from hooks import CTXDB, load_average
from remote_hook import free_port
from writers import _collect, run_writers

GOAL_RATIO = 2.0
THREADS_PER_CLIENT_PROCESS = 8


def start_server(url: str, folder: Path, group_commit: bool,
                 workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log_path = folder / f"server-{port}.log"
    env = {**os.environ, "CTXDB_SQLITE_GROUP_COMMIT": "true" if group_commit else "false",
           "XDG_CONFIG_HOME": str(folder), "HOME": str(folder)}
    process = subprocess.Popen([str(CTXDB), "--url", url, "serve", "--port", str(port),
                                "--workers", str(workers)],
                               stdout=log_path.open("wb"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server did not start: {log_path.read_text()[-2000:]}")


def _post_items(port: int, token: str, project_id: str, items: int, thread: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        for number in range(items):
            body = json.dumps({"content": {"thread": thread, "item": number,
                                           "text": "a decision worth keeping " * 4},
                               "priority": "HIGH"})
            connection.request("POST", f"/v1/projects/{project_id}/context", body, headers)
            answer = connection.getresponse()
            text = answer.read()
            if answer.status != 201:
                raise RuntimeError(f"the server answered {answer.status}: {text[:300]!r}")
    finally:
        connection.close()
    return items


def _http_client_process(port: int, token: str, project_id: str, items: int, threads: int,
                         barrier: Any, results: Any) -> None:
    failures: list[BaseException] = []

    def run(thread: int) -> None:
        try:
            _post_items(port, token, project_id, items, thread)
        except BaseException as exc:  # reported through the exit code below
            failures.append(exc)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    barrier.wait()
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise SystemExit(f"HTTP client failed: {failures[0]}")
    results.put((started, time.monotonic(), items * threads))


def run_http_clients(port: int, token: str, project_id: str, clients: int,
                     items: int) -> tuple[float, int]:
    """``clients`` concurrent HTTP clients storing ``items`` each; returns (seconds, items)."""
    context = multiprocessing.get_context("spawn")
    processes = max(1, clients // THREADS_PER_CLIENT_PROCESS)
    barrier, results = context.Barrier(processes), context.Queue()
    shares = [clients // processes + (1 if n < clients % processes else 0)
              for n in range(processes)]
    workers = [context.Process(target=_http_client_process,
                               args=(port, token, project_id, items, share, barrier, results))
               for share in shares]
    for worker in workers:
        worker.start()
    reports = _collect(results, workers)
    for worker in workers:
        worker.join()
    started = min(report[0] for report in reports)
    finished = max(report[1] for report in reports)
    return finished - started, sum(report[2] for report in reports)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--items", type=int, default=10, help="items each client stores")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--server-workers", type=int, default=1,
                        help="worker processes of each ctxdb serve")
    args = parser.parse_args()
    load_before = load_average()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        url = str(folder / "bench.db")
        with Ctxdb.open(bench_settings(url, folder)) as db:
            project_id = str(db.projects.create("server writes")["project_id"])
            token = str(db.access_tokens.create(None, "write", name="bench")["secret"])
        grouped, grouped_port = start_server(url, folder, True, args.server_workers)
        single, single_port = start_server(url, folder, False, args.server_workers)
        contents = [{"item": n, "text": "a decision worth keeping " * 4}
                    for n in range(args.items)]
        try:
            samples = measure_sides([
                lambda: run_http_clients(grouped_port, token, project_id, args.clients,
                                         args.items),
                lambda: run_http_clients(single_port, token, project_id, args.clients,
                                         args.items),
                lambda: run_writers("ctxdb", args.clients, url, project_id, contents, folder),
            ], args.repetitions)
        finally:
            for server in (grouped, single):
                server.terminate()
                server.wait(60)
        report(args, samples, f"{load_before} / {load_average()}")
    return 0


def report(args: argparse.Namespace, samples: list[list[float]], load: str) -> None:
    grouped, single, library = (1 / statistics.median(side) for side in samples)
    print(f"{args.clients} concurrent writers, {args.items} items each, "
          f"{args.server_workers} server worker(s), SQLite "
          f"(synchronous=FULL), median of {args.repetitions} interleaved repetitions; "
          f"load average before / after: {load}")
    for label, value in (("serve, group commit", grouped),
                         ("serve, one commit per write", single),
                         (f"library, {args.clients} processes", library)):
        print(f"  {label:<32} {value:9.1f} writes/s")
    ratio = grouped / library
    print(f"  serve (group commit) / library:      {ratio:5.2f}x  (goal >= {GOAL_RATIO:.1f}x: "
          f"{'met' if ratio >= GOAL_RATIO else 'NOT met'})")
    print(f"  serve (one commit per write) / library: {single / library:5.2f}x")
    print(f"  group commit / one commit per write:    {grouped / single:5.2f}x")


if __name__ == "__main__":
    sys.exit(main())
