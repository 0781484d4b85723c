"""``ctxdb hook`` through a ctxdb server on loopback, as the clients run it: a whole process
per event, timed from the outside.

Starts ``ctxdb serve`` (one worker) on a free loopback port over a temporary SQLite database
(or ``--url``), creates a fleet-wide write token, and measures in the same run, interleaved:
the bare interpreter (``python -c pass``); ``ctxdb hook`` with ``CTXDB_URL=http://…`` for
SessionStart (startup, with ``--items`` context items in the project: the server reads and
renders the pack), UserPromptSubmit and SessionEnd; and, for comparison, UserPromptSubmit of
the local hook on the same database. Prints p50 and p95 of each and its p50 as a multiple of
the bare interpreter's, against the goal of issue 12: p50 <= 2.5x ``python -c pass``, the
p50 of each process's own CPU time (user + system, its git children included: less moved
by the machine's load than the elapsed time), and how many hooks failed open (logged a
failure and printed nothing: a server slower than the hook's one second counts there).
A report, not a test: timings on a shared machine are evidence, and the load average is
printed before and after.

Usage:
    python bench/remote_hook.py [--runs N] [--items N] [--url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import ctxdb
from hooks import CPU_MS, CTXDB, fill_project, load_average, make_repo, timed

GOAL_RATIO = 2.5
BARE = "python -c pass"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(url: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen([str(CTXDB), "--url", url, "serve", "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return process, base
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server did not start: {(folder / 'server.log').read_text()}")


def payload(event: str, session_id: str, repo: Path, **fields: str) -> str:
    return json.dumps({"session_id": session_id, "transcript_path": None, "cwd": str(repo),
                       "hook_event_name": event, **fields})


class Timer:
    """Times hook processes and counts those that logged a failure (a hook fails open: it
    exits 0 without output, and only its log tells)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.times: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.failed: dict[str, int] = {}

    def __call__(self, name: str, command: list[str], stdin: str, env: dict[str, str]) -> None:
        before = self.log.stat().st_size if self.log.exists() else 0
        self.times.setdefault(name, []).append(timed(command, stdin, env))
        self.cpu.setdefault(name, []).append(CPU_MS[-1])
        after = self.log.stat().st_size if self.log.exists() else 0
        self.failed[name] = self.failed.get(name, 0) + (after > before)


def measure(runs: int, url: str, base: str, token: str, repo: Path, folder: Path) -> Timer:
    timer = Timer(folder / "hook.log")
    remote = {**os.environ, "CTXDB_URL": base, "CTXDB_TOKEN": token,
              "CTXDB_HOOK_LOG": str(timer.log)}
    # As installed: each module compiled once, then read from its bytecode (with
    # PYTHONDONTWRITEBYTECODE every process would compile the modules changed since the
    # install again, as bench/hooks.py says).
    remote.pop("PYTHONDONTWRITEBYTECODE", None)
    local = {**remote, "CTXDB_URL": url, "CTXDB_TOKEN": ""}
    hook = [str(CTXDB), "hook", "--client", "claude-code"]
    run_id = os.urandom(4).hex()
    for n in range(runs):
        session = f"bench-{run_id}-{n}"
        timer(BARE, [sys.executable, "-c", "pass"], "", remote)
        timer("remote SessionStart (startup)", hook,
              payload("SessionStart", session, repo, source="startup"), remote)
        timer("remote UserPromptSubmit", hook,
              payload("UserPromptSubmit", session, repo, prompt="go"), remote)
        timer("local UserPromptSubmit", hook,
              payload("UserPromptSubmit", session, repo, prompt="go"), local)
        timer("remote SessionEnd", hook,
              payload("SessionEnd", session, repo, reason="other"), remote)
    return timer


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def report(timer: Timer, items: int, backend: str, load: str) -> None:
    times = timer.times
    print(f"ctxdb hook through ctxdb serve on loopback, whole process: {backend} behind the "
          f"server, {items} items in the project, {len(times[BARE])} runs each")
    print(f"load average (1, 5, 15 min) before and after: {load}")
    bare = statistics.median(times[BARE])
    print(f"{'measurement':<32}{'p50 ms':>9}{'p95 ms':>9}{'p50 / bare':>12}{'goal':>8}"
          f"{'CPU p50 ms':>12}{'failed':>8}  result")
    for name, values in times.items():
        ordered = sorted(values)
        p50 = statistics.median(ordered)
        ratio = p50 / bare
        judged = name.startswith("remote")
        verdict = ("PASS" if ratio <= GOAL_RATIO else "MISS") if judged else ""
        goal = f"{GOAL_RATIO:.1f}x" if judged else ""
        cpu = statistics.median(timer.cpu[name])
        print(f"{name:<32}{p50:>9.1f}{percentile(ordered, 0.95):>9.1f}{ratio:>11.2f}x"
              f"{goal:>8}{cpu:>12.1f}{timer.failed[name]:>8}  {verdict}")
    if timer.log.exists():
        print(f"\nfailures logged by the hooks (the last lines):\n"
              f"{timer.log.read_text()[-1500:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--items", type=int, default=1_000)
    parser.add_argument("--url", help="database behind the server (default: a temporary "
                                      "SQLite file)")
    args = parser.parse_args()
    load = load_average()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        url = args.url or str(folder / "bench.db")
        repo = make_repo(folder)
        fill_project(url, repo, args.items)
        with ctxdb.open(url=url) as db:
            token = str(db.access_tokens.create(None, "write", name="bench")["secret"])
        process, base = start_server(url, folder)
        try:
            timer = measure(args.runs, url, base, token, repo, folder)
            backend = "postgres" if url.startswith("postgres") else "sqlite"
            report(timer, args.items, backend, f"{load} / {load_average()}")
        finally:
            process.terminate()
            process.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
