"""``ctxdb hook`` as the clients run it: a whole process per event, timed from the outside.

Measures, in the same run: the bare interpreter (``python -c pass``), ``ctxdb hook``
SessionStart (startup, with ``--items`` context items in the project, so the pack is read
and rendered), UserPromptSubmit with recall off (heartbeat + context in use from the
transcript's tail) and with recall on, for a prompt that matches some of the items (the
search, the relevance floor and the injection recorded: the block is checked to be there)
and for one that matches none. Prints the p50 and p90 of each, and the p50 of the CPU time
each process used (on a shared machine the elapsed time counts others' work too; the CPU time
much less, and a hook waits for little else but fsync), with the goals (SessionStart
p50 <= 150 ms, UserPromptSubmit p50 <= 100 ms, with or without recall). A report, not a test:
timings on a shared machine are evidence.

The items are notes in a made-up language whose word frequencies follow Zipf's law
(``data.Prose``), so the matching prompt's words are in about 7%, 2% and 0.4% of the items:
the search ranks hundreds of candidates, as a prompt in a real project would.

With ``--baseline CTXDB`` another ``ctxdb`` executable (a previous release installed in a
virtualenv of its own, say) is timed in the same run on the same database, interleaved:
its UserPromptSubmit with recall off and on, each run with a session of its own. The last
columns give each measurement's p50 over the bare interpreter's (the hook's own cost, wall
and CPU).

Usage:
    python bench/hooks.py [--runs N] [--items N] [--url URL] [--baseline CTXDB]

Without ``--url`` a temporary SQLite database is used; a PostgreSQL database is upgraded to
the current schema first. Each SessionStart uses a new session (ended afterwards, untimed) so
that every run registers an instance as a real startup does. The machine's load average is
printed before and after: on a shared machine it explains the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

import ctxdb
from ctxdb.repo_identity import repo_identity
from data import Prose

BARE = "python -c pass"
PROMPT = "UserPromptSubmit"
RECALLED = "UserPromptSubmit (recall)"
UNRELATED = "UserPromptSubmit (recall, no match)"
BASELINE_PROMPT, BASELINE_RECALLED = f"baseline: {PROMPT}", f"baseline: {RECALLED}"
GOALS_MS = {"SessionStart (startup)": 150.0, PROMPT: 100.0, RECALLED: 100.0, UNRELATED: 100.0}
CTXDB = Path(sys.executable).with_name("ctxdb")
CPU_MS: list[float] = []  # the CPU time of each timed process, in the order they ran
PROSE = Prose()
# Words of these ranks are in about 7%, 2% and 0.4% of notes of 30 to 50 words.
MATCHING_PROMPT = (f"why does {PROSE.word(50)} break the {PROSE.word(200)} of "
                   f"{PROSE.word(1000)} when it runs?")
UNRELATED_PROMPT = "what is the weather like in Lisbon this weekend, roughly"


def make_repo(folder: Path) -> Path:
    repo = folder / "repo"
    repo.mkdir()
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "root"],
                 ["remote", "add", "origin", "https://example.com/bench/repo.git"]):
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@example.com", *args],
                       cwd=repo, check=True, capture_output=True)
    return repo


def make_transcript(folder: Path, responses: int = 200) -> Path:
    """A transcript of ``responses`` API responses with real-shaped usage fields."""
    path = folder / "session.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for n in range(responses):
            handle.write(json.dumps({"type": "user", "sessionId": "bench", "uuid": f"u{n}",
                                     "message": {"role": "user", "content": f"step {n}"}})
                         + "\n")
            handle.write(json.dumps({
                "type": "assistant", "sessionId": "bench", "uuid": f"a{n}",
                "timestamp": "2026-01-01T00:00:00.000Z",
                "message": {"id": f"msg_{n}", "model": "claude-x", "role": "assistant",
                            "content": [{"type": "text", "text": "done " * 50}],
                            "usage": {"input_tokens": 10, "output_tokens": 200,
                                      "cache_creation_input_tokens": 500,
                                      "cache_read_input_tokens": 1000 + n * 100}}}) + "\n")
    return path


def fill_project(url: str, repo: Path, items: int) -> None:
    priorities = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
    rng = random.Random(7)
    with ctxdb.open(url=url, auto_migrate=True) as db:
        project_id = db.sessions.resolve_project(repo_identity(str(repo)))["project_id"]
        for n in range(items):
            # A few CRITICAL rules, the rest spread over the other priorities.
            priority = priorities[0] if n < 5 else priorities[1 + n % 3]
            note = PROSE.note(rng, rng.randint(30, 50))
            db.context.store(project_id, {"note": f"item {n}: {note}"}, priority)


def timed(command: list[str], stdin: str, env: dict[str, str],
          expect_output: bool | None = None) -> float:
    """Milliseconds the command took; ``expect_output`` checks that it printed an injection
    (True) or nothing (False), so that a case measures what it says. The CPU time the
    process used (user + system) is added to ``CPU_MS``: on a machine shared with others'
    work the elapsed time counts their work too, the CPU time much less."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, env=env)
    elapsed = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU_MS.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
    if done.returncode != 0 or done.stderr:
        raise SystemExit(f"{command} failed: {done.returncode} {done.stderr}")
    if expect_output is not None and ("additionalContext" in done.stdout) != expect_output:
        raise SystemExit(f"{command} printed {done.stdout[:300]!r}: expected "
                         f"{'an injection' if expect_output else 'nothing'}")
    return elapsed


def hook_payload(event: str, session_id: str, repo: Path, transcript: Path,
                 **fields: Any) -> str:
    return json.dumps({"session_id": session_id, "transcript_path": str(transcript),
                       "cwd": str(repo), "hook_event_name": event, **fields})


Samples = dict[str, list[tuple[float, float]]]  # per measurement: (elapsed, CPU) ms


def measure(runs: int, items: int, url: str | None, folder: Path,
            baseline: Path | None = None) -> Samples:
    url = url or str(folder / "bench.db")
    repo, transcript = make_repo(folder), make_transcript(folder)
    fill_project(url, repo, items)
    env = {**os.environ, "CTXDB_URL": url, "CTXDB_HOOK_LOG": str(folder / "hook.log"),
           "CTXDB_RECALL": "1"}
    # As installed: each module compiled once, then read from its bytecode (with
    # PYTHONDONTWRITEBYTECODE every process would compile the modules changed since the
    # install again, some 10 ms each).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    recall_off = {**env, "CTXDB_RECALL": "0"}
    hook = [str(CTXDB), "hook", "--client", "claude-code"]
    run_id = os.urandom(4).hex()
    times: Samples = {BARE: [], "SessionStart (startup)": [], PROMPT: [],
                      RECALLED: [], UNRELATED: []}
    if baseline is not None:
        times |= {BASELINE_PROMPT: [], BASELINE_RECALLED: []}

    def sample(name: str, elapsed: float) -> None:
        times[name].append((elapsed, CPU_MS[-1]))

    for n in range(runs):
        sample(BARE, timed([sys.executable, "-c", "pass"], "", env))
        session = f"bench-{run_id}-{n}"  # unique per run: a database may be reused

        def prompt(text: str, session: str = session) -> str:
            return hook_payload(PROMPT, session, repo, transcript, prompt=text)

        sample("SessionStart (startup)", timed(
            hook, hook_payload("SessionStart", session, repo, transcript, source="startup"),
            env))
        sample(PROMPT, timed(hook, prompt(MATCHING_PROMPT), recall_off, False))
        sample(UNRELATED, timed(hook, prompt(UNRELATED_PROMPT), env, False))
        # The session's first prompt about them: the block is injected (and recorded).
        sample(RECALLED, timed(hook, prompt(MATCHING_PROMPT), env, True))
        # Untimed, with a longer deadline: on a loaded machine its 1 s may run out.
        timed([*hook, "--deadline", "20"],
              hook_payload("SessionEnd", session, repo, transcript, reason="other"), env)
        if baseline is not None:
            older = [str(baseline), *hook[1:]]
            other = f"{session}-baseline"
            timed([*older, "--deadline", "20"], hook_payload(
                "SessionStart", other, repo, transcript, source="startup"), env)
            sample(BASELINE_PROMPT, timed(older, prompt(MATCHING_PROMPT, other), recall_off,
                                          False))
            sample(BASELINE_RECALLED, timed(older, prompt(MATCHING_PROMPT, other), env, True))
            timed([*older, "--deadline", "20"],
                  hook_payload("SessionEnd", other, repo, transcript, reason="other"), env)
    log = folder / "hook.log"
    if log.exists():
        entries = log.read_text()
        raise SystemExit(f"the hook logged failures (the last of {len(entries)} characters):\n"
                         f"{entries[-3000:]}")
    return times


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def report(times: Samples, items: int, url: str | None, load: str) -> None:
    backend = "postgres" if url and url.startswith("postgres") else "sqlite"
    print(f"ctxdb hook, whole process: {backend}, {items} items in the project, "
          f"{len(next(iter(times.values())))} runs each")
    print(f"load average (1, 5, 15 min) before and after: {load}")
    print(f"{'measurement':<38}{'p50 ms':>9}{'p90 ms':>9}{'CPU p50':>9}{'goal p50':>10}"
          f"  result{'over bare: p50':>16}{'CPU':>7}")
    bare_p50 = statistics.median(elapsed for elapsed, _ in times[BARE])
    bare_cpu = statistics.median(cpu for _, cpu in times[BARE])
    for name, samples in times.items():
        ordered = sorted(elapsed for elapsed, _ in samples)
        p50 = statistics.median(ordered)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        cpu = statistics.median(cpu for _, cpu in samples)
        goal = GOALS_MS.get(name)
        verdict = "" if goal is None else ("PASS" if p50 <= goal else "MISS")
        goal_text = "" if goal is None else f"{goal:.0f}"
        over = "" if name == BARE else f"{p50 - bare_p50:>16.1f}{cpu - bare_cpu:>7.1f}"
        print(f"{name:<38}{p50:>9.1f}{p90:>9.1f}{cpu:>9.1f}{goal_text:>10}  {verdict:<4}{over}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--items", type=int, default=1_000)
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--baseline", type=Path,
                        help="another ctxdb executable to time in the same run (its prompts)")
    args = parser.parse_args()
    load = load_average()
    with tempfile.TemporaryDirectory() as folder:
        times = measure(args.runs, args.items, args.url, Path(folder), args.baseline)
    report(times, args.items, args.url, f"{load} / {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
