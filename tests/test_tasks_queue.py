"""The work queue under crashes, on both backends: 4 worker processes drain 1,000 tasks while
the test kills workers with SIGKILL in the middle of a task and starts replacements.

Every task must end done, completed exactly once (one ``task.complete`` audit row, whose result
names the epoch the task ended with), none lost; the tasks of killed workers must have been
claimed again once their short lease expired; no worker may fail for any other reason.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ctxdb.service import Ctxdb

WORKERS = 4
TASKS = 1_000
KILLS = 5  # + WORKERS stays under the default limit of 10 live instances per project
LEASE_SECONDS = 0.5
WORK_MS = 20.0
DEADLINE_SECONDS = 240.0
WORKER = Path(__file__).parent / "workers" / "task_queue_worker.py"


class Fleet:
    """The worker processes, each with its own instance id and log file."""

    def __init__(self, url: str, project_id: str, folder: Path) -> None:
        self.url, self.project_id, self.folder = url, project_id, folder
        self.env = {**os.environ, "HOME": str(folder), "XDG_CONFIG_HOME": str(folder / "config"),
                    "CTXDB_ACTOR": "agent:worker"}
        self.env.pop("CTXDB_CONFIG", None)
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.finished: list[subprocess.Popen[bytes]] = []
        self.started = 0

    def log(self, instance_id: str) -> Path:
        return self.folder / f"{instance_id}.log"

    def start(self) -> None:
        instance_id = f"worker-{self.started}"
        self.started += 1
        self.running[instance_id] = subprocess.Popen(
            [sys.executable, str(WORKER), "--url", self.url, "--project", self.project_id,
             "--instance", instance_id, "--lease", str(LEASE_SECONDS),
             "--work-ms", str(WORK_MS), "--log", str(self.log(instance_id)),
             "--stop", str(self.folder / "stop")],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def last_line(self, instance_id: str) -> str:
        path = self.log(instance_id)
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        return lines[-1] if lines else ""

    def kill_mid_task(self) -> tuple[str, int, int] | None:
        """SIGKILL a random worker right after it logged a claim: (instance, task, epoch)."""
        instance_id = random.choice(sorted(self.running))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            words = self.last_line(instance_id).split()
            if words[:1] == ["claim"]:
                process = self.running.pop(instance_id)
                process.send_signal(signal.SIGKILL)
                process.communicate(timeout=30)  # reaps it and closes its stderr pipe
                return instance_id, int(words[1]), int(words[2])
            time.sleep(0.001)
        return None

    def stop(self) -> None:
        (self.folder / "stop").touch()
        for process in self.running.values():
            _, stderr = process.communicate(timeout=60)
            assert process.returncode == 0, stderr.decode()

    def lines(self) -> list[list[str]]:
        return [line.split() for n in range(self.started)
                for line in self.log(f"worker-{n}").read_text(encoding="utf-8").splitlines()]


def unfinished(db: Ctxdb, project_id: str) -> int:
    return sum(len(db.tasks.list(project_id, status=s, limit=1))
               for s in ("pending", "ready", "claimed", "running"))


def all_tasks(db: Ctxdb, project_id: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    while page := db.tasks.list(project_id, after=tasks[-1]["task_id"] if tasks else 0,
                                limit=1_000):
        tasks.extend(page)
    return tasks


def test_every_task_is_completed_exactly_once_despite_killed_workers(
    db: Ctxdb, tmp_path: Path
) -> None:
    project_id = db.projects.create("queue")["project_id"]
    for n in range(TASKS):
        db.tasks.create(project_id, f"task {n}", priority=random.randint(0, 9))
    fleet = Fleet(db.settings.url, project_id, tmp_path)
    for _ in range(WORKERS):
        fleet.start()
    kills: list[tuple[str, int, int]] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while unfinished(db, project_id):
            assert time.monotonic() < deadline, "the queue was not drained in time"
            for instance_id, process in fleet.running.items():
                assert process.poll() is None, (instance_id, process.stderr.read())  # type: ignore[union-attr]
            if len(kills) < KILLS:  # one kill and one replacement every few tenths of a second
                killed = fleet.kill_mid_task()
                if killed is not None:
                    kills.append(killed)
                fleet.start()
            time.sleep(random.uniform(0.1, 0.4))
    finally:
        fleet.stop()

    tasks = all_tasks(db, project_id)
    assert len(tasks) == TASKS
    assert Counter(t["status"] for t in tasks) == {"done": TASKS}
    for task in tasks:  # the completion that counted came from the holder of the last lease
        assert task["result"] == {"instance": task["lease_owner"], "epoch": task["epoch"]}
    completions = Counter(int(row["entity_id"]) for row in db.audit_log(project_id, limit=10**6)
                          if row["action"] == "task.complete")
    assert completions == {t["task_id"]: 1 for t in tasks}
    acknowledged = [(int(w[1]), int(w[2])) for w in fleet.lines() if w[0] == "done"]
    assert len(acknowledged) == len(set(task for task, _ in acknowledged))
    by_id = {t["task_id"]: t for t in tasks}
    assert all(by_id[task]["epoch"] == epoch for task, epoch in acknowledged)

    assert len(kills) == KILLS, "not every kill landed in the middle of a task"
    reclaimed = [(instance_id, task_id) for instance_id, task_id, epoch in kills
                 if by_id[task_id]["epoch"] > epoch]
    assert reclaimed, "no killed worker's task had to be reclaimed"
    for instance_id, task_id in reclaimed:
        task = by_id[task_id]
        assert task["attempts"] >= 2 and task["lease_owner"] != instance_id
        claims = [r["details"] for r in db.audit_log(entity_id=str(task_id))
                  if r["action"] == "task.claim"]
        assert any(c["reclaimed_from"] == instance_id for c in claims)
    print(f"{len(reclaimed)} of {KILLS} killed workers' tasks reclaimed; "
          f"{sum(t['attempts'] for t in tasks) - TASKS} extra claims in all")
