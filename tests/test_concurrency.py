"""Zero data loss under real concurrency: many processes, SIGKILL, fresh files.

Every worker is a separate Python process (``tests/workers/ctxdb_worker.py``) with its own
store, reporting each acknowledged write to its own file only after the call returned. The
tests then open the database afresh and check that every acknowledged write is there with
the right content, that per-project sequence numbers are unique and gapless, and that the
audit log has exactly one row per write. No worker may ever see "database is locked".
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ctxdb.service import Ctxdb
from ctxdb.settings import Settings, load_settings
from ctxdb.storage.dialect import SQLITE
from ctxdb.storage.migrate import load_migrations
from item_numbers import check_numbers

WORKER_SCRIPT = Path(__file__).parent / "workers" / "ctxdb_worker.py"
STARTUP_TIMEOUT = 60.0
RUN_TIMEOUT = 90.0


# --- worker processes ----------------------------------------------------------------------


class Worker:
    def __init__(self, name: str, process: subprocess.Popen[bytes], folder: Path) -> None:
        self.name = name
        self.process = process
        self.out = folder / f"{name}.jsonl"
        self.err = folder / f"{name}.stderr"
        self.ready = folder / f"{name}.ready"

    def records(self) -> list[dict[str, Any]]:
        """Every complete line reported; a torn last line was never acknowledged."""
        if not self.out.exists():
            return []
        text = self.out.read_text("utf-8")
        lines = text.split("\n")
        return [json.loads(line) for line in lines[:-1] if line]

    def acks(self, field: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if field in r and "error" not in r]

    def acknowledged(self) -> int:
        """How many items or reloads this worker has been promised so far."""
        return len(self.acks("item_id")) + len(self.acks("generation"))

    def errors(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if "error" in r]

    def describe(self) -> str:
        stderr = self.err.read_text("utf-8", "replace")[-2_000:] if self.err.exists() else ""
        return f"worker {self.name} exit {self.process.returncode}: {self.errors()[:3]} {stderr}"


class Fleet:
    """Starts worker processes together and makes sure none outlives the test."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=False)
        self.url = url
        self.go = folder / "go"
        self.workers: list[Worker] = []
        self.killed: set[str] = set()
        self.env = worker_environment(folder)

    def start(self, command: str, name: str, *args: str) -> Worker:
        """Start a worker; it opens its store only once :meth:`release` says go."""
        worker_args = [sys.executable, str(WORKER_SCRIPT), command, "--url", self.url,
                       "--worker", name, "--out", str(self.folder / f"{name}.jsonl"),
                       "--ready", str(self.folder / f"{name}.ready"), "--go", str(self.go),
                       *args]
        with (self.folder / f"{name}.stderr").open("wb") as stderr:
            process = subprocess.Popen(worker_args, env=self.env, stdout=subprocess.DEVNULL,
                                       stderr=stderr)
        worker = Worker(name, process, self.folder)
        self.workers.append(worker)
        return worker

    def wait_until(
        self, condition: Callable[[], bool], what: str, timeout: float = STARTUP_TIMEOUT
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            dead = [w for w in self.workers
                    if w.name not in self.killed and w.process.poll() is not None]
            if dead and not all(w.process.returncode == 0 for w in dead):
                pytest.fail(f"a worker died while waiting for {what}: {dead[0].describe()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.005)

    def release(self) -> None:
        """Wait until every worker is ready, then let them all go at once."""
        self.wait_until(lambda: all(w.ready.exists() for w in self.workers), "workers ready")
        self.go.touch()

    def finish(self, timeout: float = RUN_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            try:
                worker.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"worker {worker.name} did not finish within {timeout}s")
        failed = [w.describe() for w in self.workers if w.process.returncode != 0]
        assert not failed, failed

    def sigkill(self, worker: Worker, *, must_be_running: bool = True) -> None:
        self.killed.add(worker.name)
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(10)
        expected = {-signal.SIGKILL} if must_be_running else {-signal.SIGKILL, 0}
        assert worker.process.returncode in expected, worker.describe()

    def kill_leftovers(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait(10)


@contextmanager
def fleet_of(folder: Path, url: str) -> Iterator[Fleet]:
    fleet = Fleet(folder, url)
    try:
        yield fleet
    finally:
        fleet.kill_leftovers()


def worker_environment(home: Path) -> dict[str, str]:
    """The caller's environment without CTXDB_* settings, with a private home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTXDB_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
               XDG_DATA_HOME=str(home / "data"), CTXDB_POOL_MAX_SIZE="2")
    return env


# --- opening stores and checking them ------------------------------------------------------


def isolated_settings(home: Path, url: str, **overrides: Any) -> Settings:
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    return load_settings(env=env, url=url, actor="user:test", **overrides)


def integrity_of(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def sqlite_rows(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def live_items(db: Ctxdb, project_id: str) -> dict[int, dict[str, Any]]:
    grouped = db.context.full(project_id)
    return {item["item_id"]: item for items in grouped.values() for item in items}


def audited(db: Ctxdb, action: str, **where: str) -> list[dict[str, Any]]:
    return [row for row in db.audit_log(limit=1_000_000, **where) if row["action"] == action]


def check_acknowledged_items(db: Ctxdb, project_id: str, acks: Iterable[dict[str, Any]]) -> int:
    """Every acknowledged item is stored as acknowledged; sequences and audit are exact."""
    items = live_items(db, project_id)
    acks = list(acks)
    for ack in acks:
        item = items.get(ack["item_id"])
        assert item is not None, f"acknowledged write lost: {ack}"
        assert item["content"] == {"worker": ack["worker"], "i": ack["i"]}, (ack, item)
        assert item["sequence_number"] == ack["sequence_number"], (ack, item)
    assert len({ack["item_id"] for ack in acks}) == len(acks), "one item acknowledged twice"
    # Each number once; 1..n where numbers are gapless (SQLite), with gaps on PostgreSQL.
    check_numbers(db, (item["sequence_number"] for item in items.values()))
    for worker in {ack["worker"] for ack in acks}:  # one worker's stores follow each other
        mine = sorted((ack["i"], ack["sequence_number"]) for ack in acks
                      if ack["worker"] == worker)
        numbers = [number for _, number in mine]
        assert numbers == sorted(numbers), f"worker {worker}'s numbers go back: {mine}"
    stores = audited(db, "context.store", project_id=project_id)
    assert sorted(int(row["entity_id"]) for row in stores) == sorted(items), \
        "the audit log does not have exactly one row per stored item"
    return len(items)


# --- 1 and 2: many writer processes --------------------------------------------------------

WRITER_CASES = [
    pytest.param("sqlite", 8, 150, id="sqlite-8x150"),
    pytest.param("sqlite", 32, 40, id="sqlite-32x40"),
    pytest.param("postgres", 8, 150, id="postgres-8x150", marks=pytest.mark.postgres),
]


def run_writers(folder: Path, url: str, project_id: str, processes: int, per_process: int,
                while_writing: Callable[[Fleet], None] | None = None) -> list[dict[str, Any]]:
    """Writer processes storing items with keys "w<n>-<i>"; returns their acknowledgements."""
    with fleet_of(folder, url) as fleet:
        for number in range(processes):
            fleet.start("store", f"w{number}", "--project", project_id,
                        "--count", str(per_process))
        fleet.release()
        if while_writing is not None:
            while_writing(fleet)
        fleet.finish()
        errors = [e for w in fleet.workers for e in w.errors()]
        assert errors == [], f"{len(errors)} writes failed, e.g. {errors[:3]}"
        acks = [ack for w in fleet.workers for ack in w.acks("item_id")]
    assert len(acks) == processes * per_process
    return acks


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "processes", "per_process"), WRITER_CASES)
def test_writer_processes_lose_nothing(
    make_settings: Any, tmp_path: Path, backend: str, processes: int, per_process: int
) -> None:
    settings = make_settings()
    with Ctxdb.open(settings) as db:
        project_id = db.projects.create("many writers")["project_id"]
    acks = run_writers(tmp_path / "writers", settings.url, project_id, processes, per_process)
    with Ctxdb.open(settings) as db:
        assert check_acknowledged_items(db, project_id, acks) == processes * per_process
    if backend == "sqlite":
        assert integrity_of(settings.sqlite_path) == "ok"


def terminate_connections_for_a_while(url: str, fleet: Fleet, rng: random.Random) -> int:
    """Terminate every session on the database every ~0.1 s, for at most 1.5 s.

    Bounded so that the test always ends: the failures are meant to be transient.
    """
    import psycopg

    terminated = 0
    fleet.wait_until(lambda: all(w.acknowledged() for w in fleet.workers), "first writes")
    deadline = time.monotonic() + 1.5
    with psycopg.connect(url, autocommit=True) as admin:
        while time.monotonic() < deadline and any(w.process.poll() is None
                                                  for w in fleet.workers):
            terminated += sum(ok for (ok,) in admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            time.sleep(rng.uniform(0.05, 0.15))
    return terminated


@pytest.mark.slow
@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_postgres_writers_survive_terminated_connections(
    make_settings: Any, tmp_path: Path, backend: str
) -> None:
    settings = make_settings()
    with Ctxdb.open(settings) as db:
        project_id = db.projects.create("terminated connections")["project_id"]
    terminated: list[int] = []

    def chaos(fleet: Fleet) -> None:
        terminated.append(terminate_connections_for_a_while(settings.url, fleet, random.Random()))

    acks = run_writers(tmp_path / "chaos", settings.url, project_id, 4, 80, chaos)
    assert terminated[0] > 0, "no connection was terminated while the writers ran"
    # Each caller sends every write again with the same key, as after a lost answer: the
    # same items come back and nothing is stored twice.
    replayed = run_writers(tmp_path / "replay", settings.url, project_id, 4, 80)
    assert sorted((a["key"], a["item_id"], a["sequence_number"]) for a in replayed) == \
        sorted((a["key"], a["item_id"], a["sequence_number"]) for a in acks)
    with Ctxdb.open(settings) as db:
        assert check_acknowledged_items(db, project_id, acks) == 4 * 80


# --- 3: SIGKILL at random moments ------------------------------------------------------------


def kill_at_random(fleet: Fleet, rng: random.Random) -> None:
    """Once every worker has acknowledged something, kill each at a random moment."""
    fleet.wait_until(lambda: all(w.acknowledged() for w in fleet.workers),
                     "first acknowledged writes")
    order = rng.sample(fleet.workers, len(fleet.workers))
    for position, worker in enumerate(order):
        time.sleep(rng.uniform(0.0, 0.25))
        fleet.sigkill(worker)
        # A writer killed while it held the write lock must not stall the others.
        survivors = {w: w.acknowledged() for w in order[position + 1:]}
        fleet.wait_until(functools.partial(all_wrote_more, survivors),
                         f"the others to write on after {worker.name} was killed")


def all_wrote_more(acknowledged_before: dict[Worker, int]) -> bool:
    return all(w.acknowledged() > n for w, n in acknowledged_before.items())


@pytest.mark.slow
def test_sigkilled_writers_keep_every_acknowledged_write(tmp_path: Path) -> None:
    rng = random.Random()
    path = tmp_path / "killed.db"
    settings = isolated_settings(tmp_path, str(path))
    with Ctxdb.open(settings) as db:
        project_id = db.projects.create("killed writers")["project_id"]
    acks: list[dict[str, Any]] = []
    for round_number in range(3):
        with fleet_of(tmp_path / f"round{round_number}", str(path)) as fleet:
            for number in range(3):
                fleet.start("store", f"r{round_number}w{number}", "--project", project_id,
                            "--count", "100000", "--seconds", "30", "--fsync")
            fleet.release()
            kill_at_random(fleet, rng)
            assert [e for w in fleet.workers for e in w.errors()] == []
            acks += [ack for w in fleet.workers for ack in w.acks("item_id")]
        # Reopen after every round: recovery must find the file intact and complete.
        assert integrity_of(path) == "ok"
        with Ctxdb.open(settings) as db:
            assert check_acknowledged_items(db, project_id, acks) >= len(acks)


@pytest.mark.slow
def test_sigkill_during_clear_and_reload_keeps_generations_consecutive(tmp_path: Path) -> None:
    rng = random.Random()
    path = tmp_path / "cleared.db"
    settings = isolated_settings(tmp_path, str(path))
    with Ctxdb.open(settings) as db:
        project_id = db.projects.create("killed reloads")["project_id"]
        instance_id = db.instances.launch(project_id)["instance_id"]
    handoff_acks: list[dict[str, Any]] = []
    item_acks: list[dict[str, Any]] = []
    for round_number in range(2):
        with fleet_of(tmp_path / f"round{round_number}", str(path)) as fleet:
            clearer = fleet.start("clear", f"r{round_number}c", "--instance", instance_id,
                                  "--count", "100000", "--seconds", "30", "--fsync")
            for number in range(2):
                fleet.start("store", f"r{round_number}w{number}", "--project", project_id,
                            "--count", "100000", "--seconds", "30", "--fsync")
            fleet.release()
            kill_at_random(fleet, rng)
            assert [e for w in fleet.workers for e in w.errors()] == []
            handoff_acks += clearer.acks("generation")
            item_acks += [a for w in fleet.workers[1:] for a in w.acks("item_id")]
        assert integrity_of(path) == "ok"
        with Ctxdb.open(settings) as db:
            check_acknowledged_items(db, project_id, item_acks)
            generation = db.instances.get(instance_id)["generation"]
            clears = audited(db, "tokens.clear_and_reload", entity_id=instance_id)
        handoffs = dict(sqlite_rows(path, "SELECT handoff_id, generation FROM handoffs "
                                          "WHERE instance_id = ?", instance_id))
        assert sorted(handoffs.values()) == list(range(generation)), \
            "each generation must have exactly one handoff, with none missing"
        assert len(clears) == generation
        for ack in handoff_acks:
            assert handoffs.get(ack["handoff_id"]) == ack["handoff_generation"], ack
            assert ack["generation"] == ack["handoff_generation"] + 1, ack


@pytest.mark.slow
def test_sigkill_while_opening_a_fresh_file_leaves_it_usable(tmp_path: Path) -> None:
    rng = random.Random()
    versions = [m.version for m in load_migrations(SQLITE)]
    for round_number in range(6):
        path = tmp_path / f"fresh{round_number}.db"
        with fleet_of(tmp_path / f"round{round_number}", str(path)) as fleet:
            for number in range(3):
                fleet.start("open", f"r{round_number}o{number}")
            fleet.release()
            # Creating and migrating a fresh file takes some 20 ms: kill somewhere in it.
            for worker in fleet.workers:
                time.sleep(rng.uniform(0.0, 0.02))
                fleet.sigkill(worker, must_be_running=False)
            acks = [ack for w in fleet.workers for ack in w.acks("item_id")]
        if path.exists():
            assert integrity_of(path) == "ok"
        with Ctxdb.open(isolated_settings(tmp_path, str(path))) as db:
            assert [row["version"] for row in db.migrator().applied()] == versions
            for ack in acks:
                assert db.context.get(ack["item_id"])["content"] == {"worker": ack["worker"]}
            project_id = db.projects.create("after the kill")["project_id"]
            assert db.context.store(project_id, {"ok": True})["sequence_number"] == 1
        assert integrity_of(path) == "ok"


# --- 4: many processes opening one fresh file -----------------------------------------------


@pytest.mark.slow
def test_twenty_processes_open_a_fresh_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "fresh.db"
    with fleet_of(tmp_path / "openers", str(path)) as fleet:
        for number in range(20):
            fleet.start("open", f"o{number}")
        fleet.release()
        fleet.finish()
        acks = {ack["worker"]: ack for w in fleet.workers for ack in w.acks("item_id")}
    assert sorted(acks) == sorted(f"o{number}" for number in range(20))
    applied = sqlite_rows(path, "SELECT version FROM schema_migrations ORDER BY version")
    assert [row[0] for row in applied] == [m.version for m in load_migrations(SQLITE)]
    with Ctxdb.open(isolated_settings(tmp_path, str(path))) as db:
        assert len(db.projects.list()) == 20
        for worker, ack in acks.items():
            item = db.context.get(ack["item_id"])
            assert item["project_id"] == ack["project_id"]
            assert item["content"] == {"worker": worker}
    assert integrity_of(path) == "ok"
