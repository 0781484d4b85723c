"""A backup taken while 4 processes write is consistent and holds every acknowledged write.

Each writer (``tests/workers/backup_writer.py``) reports every store with the time its call
returned. The backup starts while they write; it is then restored into a new database, which
must pass its checks and contain, with the right content, every item acknowledged before the
backup started. The writers must also have gone on writing during the backup (it holds no
writer off) and the backup must be one snapshot: its items of each writer are a gapless
prefix of that writer's acknowledged writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ctxdb.service import Ctxdb
from ctxdb.service.operations import backup
from ctxdb.settings import Settings
from test_backup import other_settings  # noqa: F401 - a fixture used below
from test_concurrency import worker_environment

WRITER = Path(__file__).parent / "workers" / "backup_writer.py"
WRITERS = 4
WRITES_BEFORE_BACKUP = 25
pytestmark = pytest.mark.slow


def acknowledged(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text("utf-8").split("\n")[:-1] if line]


def wait_for(condition: Any, processes: list[subprocess.Popen[bytes]], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        dead = [p for p in processes if p.poll() is not None]
        assert not dead, f"a writer died while waiting for {what}: {dead[0].returncode}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_backup_while_four_processes_write(
        db: Ctxdb, settings: Settings, other_settings: Settings,  # noqa: F811
        tmp_path: Path) -> None:
    pid = db.projects.create("Under load")["project_id"]
    for n in range(40):  # some bulk, so that the SQLite copy takes many steps
        db.context.store(pid, {"bulk": n, "text": "x" * 100_000}, priority="LOW")
    stop, folder = tmp_path / "stop", tmp_path / "writers"
    folder.mkdir()
    outs = [folder / f"w{n}.jsonl" for n in range(WRITERS)]
    with (folder / "stderr").open("wb") as stderr:
        processes = [subprocess.Popen(
            [sys.executable, str(WRITER), "--url", settings.url, "--project", pid,
             "--worker", f"w{n}", "--out", str(out), "--stop", str(stop)],
            env=worker_environment(folder), stdout=subprocess.DEVNULL, stderr=stderr)
            for n, out in enumerate(outs)]
    try:
        wait_for(lambda: all(len(acknowledged(o)) >= WRITES_BEFORE_BACKUP for o in outs),
                 processes, "the first writes")
        started = time.time()
        made = backup.backup(settings, tmp_path / "under-load.backup")
        finished = time.time()
        wait_for(lambda: all(any(a["acked_at"] > finished for a in acknowledged(o))
                             for o in outs), processes, "writes after the backup")
    finally:
        stop.touch()
        for process in processes:
            process.wait(60)
    assert [p.returncode for p in processes] == [0] * WRITERS, (folder / "stderr").read_text()
    acks = [ack for out in outs for ack in acknowledged(out)]
    during = [a for a in acks if started < a["acked_at"] < finished]

    backup.restore(other_settings, made["file"])
    with Ctxdb.open(other_settings) as copy:
        grouped = copy.context.full(pid)
    items = {i["item_id"]: i["content"] for tier in grouped.values() for i in tier}
    for ack in acks:
        if ack["acked_at"] < started:
            assert items.get(ack["item_id"]) == {"worker": ack["worker"], "i": ack["i"]}, ack
    for n in range(WRITERS):  # one snapshot: each writer's writes in it are a prefix
        indexes = sorted(c["i"] for c in items.values() if c.get("worker") == f"w{n}")
        assert indexes == list(range(len(indexes)))
    assert made["integrity"] == "ok" and len(acks) > WRITERS * WRITES_BEFORE_BACKUP
    assert during or made["elapsed_seconds"] < 0.05, "writers were held off by the backup"
