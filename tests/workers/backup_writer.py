"""A writer process for the backup-under-load test (run as a script).

Stores context items with keys "W-<i>" until the stop file appears (or ``--seconds`` pass),
and reports each acknowledged write as one JSON line with the wall-clock time at which the
call returned, written only after it returned. The test compares those times with the moment
a backup started: every write acknowledged before it must be in the backup.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import ctxdb


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--worker", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--stop", required=True, type=Path)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.seconds
    with args.out.open("a", encoding="utf-8") as out, \
            ctxdb.open(url=args.url, actor=f"worker:{args.worker}") as db:
        i = 0
        while not args.stop.exists() and time.monotonic() < deadline:
            item = db.context.store(args.project, {"worker": args.worker, "i": i},
                                    priority="MEDIUM", content_type="note",
                                    idempotency_key=f"{args.worker}-{i}")
            out.write(json.dumps({"item_id": item["item_id"], "worker": args.worker, "i": i,
                                  "acked_at": time.time()}) + "\n")
            out.flush()
            i += 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
