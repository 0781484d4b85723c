"""A worker process for the concurrency and durability tests (run as a script).

Each worker opens its own store with ``ctxdb.open`` and reports every acknowledged write as
one JSON line in its own result file, written only *after* the call returned, flushed (and
optionally fsynced) before the next call starts. A line in that file is therefore a promise
ctxdb made to a caller; the tests check that every promise is kept, also after SIGKILL.
Exceptions are never swallowed silently: each becomes an ``{"error": ...}`` line.

Barrier: with ``--ready FILE`` the worker creates FILE once its imports are done; with
``--go FILE`` it then waits for FILE to appear before opening the store, so that many
processes really start together. Every loop is bounded (``--count``, ``--seconds``).

Commands:
  store  --project P --worker W --count N   store N items with keys "W-<i>"
  clear  --instance I --count N             update usage then clear-and-reload, N times
  open                                      open (creating and migrating), create a project,
                                            store one item
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

import ctxdb
from ctxdb.service import Ctxdb

BARRIER_TIMEOUT = 60.0


class Reporter:
    """Appends one JSON line per event to the worker's own result file."""

    def __init__(self, path: Path, durable: bool) -> None:
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._durable = durable

    def report(self, **record: Any) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._durable:
            os.fsync(self._file.fileno())

    def error(self, exc: BaseException, **context: Any) -> None:
        self.report(error=type(exc).__name__, message=str(exc), **context)


def wait_for_barrier(args: argparse.Namespace) -> None:
    if args.ready:
        Path(args.ready).touch()
    if not args.go:
        return
    deadline = time.monotonic() + BARRIER_TIMEOUT
    while not Path(args.go).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the start signal {args.go} never came")
        time.sleep(0.002)


def run_store(db: Ctxdb, args: argparse.Namespace, out: Reporter) -> None:
    deadline = time.monotonic() + args.seconds
    for i in range(args.count):
        if time.monotonic() > deadline:
            return
        key = f"{args.worker}-{i}"
        try:
            item = db.context.store(args.project, {"worker": args.worker, "i": i},
                                    priority=("HIGH", "MEDIUM", "LOW", "CRITICAL")[i % 4],
                                    content_type="note", idempotency_key=key)
        except Exception as exc:
            out.error(exc, key=key)
            continue
        out.report(key=key, worker=args.worker, i=i, item_id=item["item_id"],
                   sequence_number=item["sequence_number"])


def run_clear(db: Ctxdb, args: argparse.Namespace, out: Reporter) -> None:
    deadline = time.monotonic() + args.seconds
    for i in range(args.count):
        if time.monotonic() > deadline:
            return
        try:
            db.tokens.update_usage(args.instance, 1_000 + i)
            result = db.tokens.clear_and_reload(args.instance, summary=f"round {i}",
                                                next_steps=[f"step {i}"])
        except Exception as exc:
            out.error(exc, i=i)
            continue
        out.report(i=i, generation=result["generation"],
                   handoff_id=result["handoff"]["handoff_id"],
                   handoff_generation=result["handoff"]["generation"],
                   tokens_before=result["tokens_before"])


def run_open(db: Ctxdb, args: argparse.Namespace, out: Reporter) -> None:
    project = db.projects.create(f"opened by {args.worker}")
    item = db.context.store(project["project_id"], {"worker": args.worker},
                            idempotency_key=f"{args.worker}-open")
    out.report(worker=args.worker, project_id=project["project_id"], item_id=item["item_id"])


COMMANDS = {"store": run_store, "clear": run_clear, "open": run_open}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--worker", default=f"w{os.getpid()}")
    parser.add_argument("--project")
    parser.add_argument("--instance")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--ready")
    parser.add_argument("--go")
    parser.add_argument("--fsync", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    out = Reporter(args.out, args.fsync)
    try:
        wait_for_barrier(args)
        with ctxdb.open(url=args.url, actor=f"worker:{args.worker}") as db:
            out.report(opened=True, worker=args.worker)
            COMMANDS[args.command](db, args, out)
    except Exception as exc:
        out.error(exc, stage=args.command)
        return 1
    out.report(done=True, worker=args.worker)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
