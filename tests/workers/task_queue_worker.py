"""A worker process for the task work-queue test (run as a script).

It registers its own agent instance, then claims, starts and completes tasks until the stop
file appears, pretending to work for a few milliseconds on each. Each step is logged to its
log file as a line flushed at once, so that the test still sees it after killing the worker:
``claim <task> <epoch>`` before working, ``done <task> <epoch>`` once a completion was
acknowledged, ``refused <task> <epoch> <error>`` when the lease had passed on meanwhile. Any
other exception ends the worker with exit status 1 and the error on stderr.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import TextIO

import ctxdb
from ctxdb.errors import LeaseExpiredError, StaleEpochError


def log(out: TextIO, *words: object) -> None:
    out.write(" ".join(str(w) for w in words) + "\n")
    out.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--instance", required=True)
    parser.add_argument("--lease", type=float, required=True)
    parser.add_argument("--work-ms", type=float, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--stop", type=Path, required=True)
    args = parser.parse_args()
    with ctxdb.open(url=args.url) as db, args.log.open("a", encoding="utf-8") as out:
        db.instances.launch(args.project, instance_id=args.instance)
        log(out, "ready", args.instance)
        while not args.stop.exists():
            task = db.tasks.claim(args.project, args.instance, args.lease)
            if task is None:
                time.sleep(0.02)
                continue
            task_id, epoch = task["task_id"], task["epoch"]
            log(out, "claim", task_id, epoch)
            try:
                db.tasks.start(task_id, epoch)
                time.sleep(random.uniform(0.5, 1.5) * args.work_ms / 1000)
                db.tasks.complete(task_id, epoch, {"instance": args.instance, "epoch": epoch})
            except (StaleEpochError, LeaseExpiredError) as exc:
                log(out, "refused", task_id, epoch, type(exc).__name__)
                continue
            log(out, "done", task_id, epoch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
