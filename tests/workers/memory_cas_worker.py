"""A worker process for the memory lost-update test (run as a script).

It opens its own store, first tries to create the counter memory with "must not exist" (so
that the workers race on the first insert), then performs read-modify-write increments with
compare-and-set until ``--count`` of them were acknowledged. A conflict is retried; any other
exception ends the worker with exit status 1 and the error in its result file. The result is
one JSON object: whether this worker created the memory, the versions its acknowledged
increments wrote, and how many conflicts it met.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import ctxdb
from ctxdb.errors import VersionConflictError
from ctxdb.service.usecases.memories import MUST_NOT_EXIST

BARRIER_TIMEOUT = 60.0
NAMESPACE, KEY = "test:counters", "shared"


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + BARRIER_TIMEOUT
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no go signal at {path}")
        time.sleep(0.005)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--ready", type=Path, required=True)
    parser.add_argument("--go", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    result: dict[str, object] = {"created": False, "versions": [], "conflicts": 0}
    versions: list[int] = []
    conflicts = 0
    try:
        with ctxdb.open(url=args.url) as db:
            args.ready.touch()
            wait_for(args.go)
            try:
                db.memories.put(args.project, NAMESPACE, KEY, 0, expected_version=MUST_NOT_EXIST)
                result["created"] = True
            except VersionConflictError:
                conflicts += 1
            while len(versions) < args.count:
                current = db.memories.get(args.project, NAMESPACE, KEY)
                try:
                    written = db.memories.put(args.project, NAMESPACE, KEY,
                                              current["value"] + 1,
                                              expected_version=current["version"])
                except VersionConflictError:
                    conflicts += 1
                    continue
                versions.append(written["version"])
    except Exception as exc:  # reported, then the worker fails
        result.update(error=type(exc).__name__, message=str(exc))
    result.update(versions=versions, conflicts=conflicts)
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
