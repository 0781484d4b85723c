"""Recall benchmark: how often search finds what a question is about (docs/benchmarks.md).

Builds a corpus from the real Claude Code transcripts of the test fixtures (each user prompt,
assistant text and tool call of a main chain as a conversation event) plus the context items
and memories of ``recall_set.py``, asks its labelled questions, and prints recall@5 and MRR:

- ``exact``: the search of the release before word forms, kept here as a baseline mode: the
  same query syntax over an FTS5 index of the records' words as written (``unicode61``, no
  stemming, no identifier splitting), ranked by bm25 (SQLite);
- ``ctxdb``: ``db.search.search`` as it is, on each backend asked for.

recall@5 of a question is the share of its records in the first 5 hits (of at most 5 of its
records); MRR is the mean of 1 / the rank of the first of its records (0 if none is in the
first 20). ``--check`` exits with status 1 if the goal (recall@5 >= 0.85 and 25 points above
the baseline) is missed, or if the backends disagree.

Usage:
    python bench/recall.py [--backend sqlite|postgres|all] [--pg-url URL] [--show-misses]
                           [--json FILE] [--check]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

from ctxdb.domain.search import SearchQuery, parse_query
from ctxdb.errors import InvalidSearchQueryError
from ctxdb.service import Ctxdb
from ctxdb.service.usecases.search import MAX_RESULTS
from ctxdb.storage.base import raw
from data import bench_settings
from recall_set import CONTEXT_ITEMS, MEMORIES, QUESTIONS

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "claude-code"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
K, DEPTH = 5, 20
GOAL_RECALL, GOAL_GAIN = 0.85, 0.25
# A tool call's input is indexed by the fields that say what it did (not whole file bodies).
TOOL_FIELDS = ("file_path", "command", "description", "pattern", "query", "url", "prompt")

Search = Callable[[str], list[str]]  # a question -> labels of the hits, best first


# --- the corpus -------------------------------------------------------------------------------


def transcript_events() -> Iterator[tuple[str, str, str, Any]]:
    """(transcript, label, role, content) of each prompt, text and tool call of a main chain."""
    for path in sorted(FIXTURES.glob("*/*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            record = json.loads(line)
            if record.get("type") not in ("user", "assistant") or record.get("isSidechain"):
                continue
            label = f"{path.stem[:8]}:{record['uuid'][:8]}"
            content = record["message"]["content"]
            if isinstance(content, str):
                if content.strip():
                    yield path.stem, label, record["type"], content
                continue
            text = "\n".join(block.get("text", "") for block in content
                             if isinstance(block, dict) and block.get("type") == "text")
            if text.strip():
                yield path.stem, label, record["type"], text
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    fields = {name: block["input"][name] for name in TOOL_FIELDS
                              if isinstance(block.get("input"), dict) and name in block["input"]}
                    yield path.stem, label, "tool", {"tool": block["name"], **fields}


def build_corpus(db: Ctxdb) -> tuple[str, dict[tuple[str, object], str]]:
    """Store the corpus in a new project; returns it and (hit kind, id) -> label."""
    pid = db.projects.create("recall bench")["project_id"]
    labels: dict[tuple[str, object], str] = {}
    for label, (priority, text) in CONTEXT_ITEMS.items():
        labels["context", db.context.store(pid, text, priority, "note")["item_id"]] = label
    for label, (namespace, key, value) in MEMORIES.items():
        labels["memory", db.memories.put(pid, namespace, key, value)["memory_id"]] = label
    sessions: dict[str, str] = {}
    for transcript, label, role, content in transcript_events():
        if transcript not in sessions:
            sessions[transcript] = db.conversations.create(pid, "claude-code",
                                                           "bench")["session_id"]
        event = db.conversations.append(sessions[transcript], role, content)
        labels["event", event["event_id"]] = label
    return pid, labels


# --- the two searches -------------------------------------------------------------------------


def ctxdb_search(db: Ctxdb, pid: str, labels: dict[tuple[str, object], str],
                 depth: int = DEPTH) -> Search:
    def search(question: str) -> list[str]:
        hits = db.search.search(pid, question, limit=depth)
        return [labels[hit["kind"], hit["id"]] for hit in hits]

    return search


def found_records(db: Ctxdb, pid: str, labels: dict[tuple[str, object], str],
                  question: str) -> tuple[Any, ...]:
    """What a question finds, whatever the ranking (the engines rank differently, so the
    first 20 may differ; the records found must not): the records with all its words, and
    those with some of them (or how many, when there are more than a search returns)."""
    hits = db.search.search(pid, question, limit=MAX_RESULTS)
    every = {labels[hit["kind"], hit["id"]] for hit in hits}
    whole = {labels[hit["kind"], hit["id"]] for hit in hits if hit["match"] == "all"}
    return whole, every if len(hits) < MAX_RESULTS else len(hits)


def exact_fts5_query(query: SearchQuery) -> str:
    """The FTS5 query of the release before word forms: the words as typed, quoted."""
    def term(t: Any) -> str:
        return f'"{" ".join(t.words)}"' + (" *" if t.prefix else "")

    return " OR ".join("(" + " AND ".join(term(t) for t in g if not t.excluded)
                       + "".join(f" NOT {term(t)}" for t in g if t.excluded) + ")"
                       for g in query.groups)


def exact_search(db: Ctxdb, pid: str, labels: dict[tuple[str, object], str]) -> Search:
    """The baseline: an FTS5 index of the documents' words as written (SQLite only)."""
    def build(tx: Any) -> None:
        raw(tx).script(
            "CREATE VIRTUAL TABLE bench_exact USING fts5(body, content = 'search_documents', "
            "content_rowid = 'doc_id', tokenize = 'unicode61 remove_diacritics 0');\n"
            "INSERT INTO bench_exact (bench_exact) VALUES ('rebuild');\n")

    db.storage.write(build)
    sql = ("SELECT d.kind, d.item_id, d.memory_id, d.event_id FROM bench_exact "
           "JOIN search_documents d ON d.doc_id = bench_exact.rowid "
           "WHERE bench_exact MATCH :match AND d.project_id = :pid "
           "ORDER BY bm25(bench_exact), d.occurred_at DESC LIMIT :limit")

    def search(question: str) -> list[str]:
        try:
            match = exact_fts5_query(parse_query(question))
        except InvalidSearchQueryError:
            return []
        rows = db.storage.read(lambda tx: raw(tx).all_raw(
            sql, {"match": match, "pid": pid, "limit": DEPTH}))
        ids = {"context": "item_id", "memory": "memory_id", "event": "event_id"}
        return [labels[row["kind"], row[ids[row["kind"]]]] for row in rows]

    return search


# --- measuring --------------------------------------------------------------------------------


def measure(search: Search, questions: Sequence[tuple[str, tuple[str, ...]]]
            ) -> dict[str, Any]:
    recalls, ranks, misses, hits_of = [], [], [], {}
    for question, answers in questions:
        found = search(question)
        hits_of[question] = found
        wanted = set(answers)
        recall = len(wanted.intersection(found[:K])) / min(len(wanted), K)
        first = next((i for i, label in enumerate(found, 1) if label in wanted), None)
        recalls.append(recall)
        ranks.append(1 / first if first else 0.0)
        if recall < 1:
            misses.append((question, answers, found[:K]))
    return {"recall@5": sum(recalls) / len(recalls), "mrr": sum(ranks) / len(ranks),
            "misses": misses, "hits": hits_of}


@contextmanager
def database(backend: str, workdir: Path, pg_url: str) -> Iterator[Ctxdb]:
    if backend == "sqlite":
        with Ctxdb.open(bench_settings(str(workdir / "recall.db"), workdir)) as db:
            yield db
        return
    import psycopg

    name = f"ctxdb_bench_recall_{secrets.token_hex(4)}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = urlunsplit(urlsplit(pg_url)._replace(path="/" + name))
        with Ctxdb.open(bench_settings(url, workdir)) as db:
            yield db
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 if the goal is missed")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    results: dict[str, dict[str, Any]] = {}
    matched: dict[str, dict[str, tuple[Any, ...]]] = {}
    with tempfile.TemporaryDirectory(prefix="ctxdb-recall-") as tmp:
        for backend in backends:
            with database(backend, Path(tmp) / backend, args.pg_url) as db:
                Path(tmp, backend).mkdir(exist_ok=True)
                pid, labels = build_corpus(db)
                if backend == "sqlite":
                    results["exact (baseline)"] = measure(exact_search(db, pid, labels),
                                                          QUESTIONS)
                results[f"ctxdb ({backend})"] = measure(ctxdb_search(db, pid, labels),
                                                        QUESTIONS)
                matched[backend] = {q: found_records(db, pid, labels, q)
                                     for q, _ in QUESTIONS}
    print(f"{len(QUESTIONS)} questions, corpus of {len(CONTEXT_ITEMS)} context items, "
          f"{len(MEMORIES)} memories and {sum(1 for _ in transcript_events())} transcript "
          "events")
    print(f"{'search':<20} {'recall@5':>9} {'MRR':>6}")
    for name, result in results.items():
        print(f"{name:<20} {result['recall@5']:>9.3f} {result['mrr']:>6.3f}")
        if args.show_misses:
            for question, answers, top in result["misses"]:
                print(f"    miss: {question!r} wants {list(answers)}, top {top}")
    ok = _goal_met(results, matched, backends)
    if args.json:
        args.json.write_text(json.dumps({name: {k: r[k] for k in ("recall@5", "mrr")}
                                         for name, r in results.items()}, indent=2))
    return 1 if args.check and not ok else 0


def _goal_met(results: dict[str, dict[str, Any]],
              matched: dict[str, dict[str, tuple[Any, ...]]],
              backends: list[str]) -> bool:
    baseline = results.get("exact (baseline)")
    ok = True
    for backend in backends:
        new = results[f"ctxdb ({backend})"]
        if new["recall@5"] < GOAL_RECALL or (
                baseline and new["recall@5"] - baseline["recall@5"] < GOAL_GAIN):
            print(f"goal missed on {backend}: recall@5 >= {GOAL_RECALL} and "
                  f"{GOAL_GAIN * 100:.0f} points above the baseline")
            ok = False
    if len(backends) == 2:
        differing = [q for q, _ in QUESTIONS if matched["sqlite"][q] != matched["postgres"][q]]
        print(f"same records found on both backends: {len(QUESTIONS) - len(differing)} of "
              f"{len(QUESTIONS)} questions" + (f" (differ: {differing})" if differing else ""))
        ok = ok and not differing
    return ok


if __name__ == "__main__":
    sys.exit(main())
