"""Prompt-time recall: UserPromptSubmit injects the records that match the prompt, once per
generation, within its budget, in each client's output shape, and never fails on a prompt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctxdb.domain.agents import AgentSession, RepoIdentity
from ctxdb.domain.hook_events import context_output, parse_event
from ctxdb.domain.recall import recall_terms, recalled_keys, render_recall, required_terms
from ctxdb.service import Ctxdb
from ctxdb.settings import CONFIG_ENV, SETTINGS_HELP, Settings

CTXDB = Path(sys.executable).with_name("ctxdb")
ODD_PROMPTS = [
    'fix "payment retries (stripe -paypal *',
    "payment) AND (retries OR NOT stripe* NEAR/2 -- ; DROP TABLE x; '\"",
    "-payment -retries -stripe",
    "stripe* retries* ***** ----- ((((( )))))",
    "Zahlungswiederholungen über Stripe — 支付重试 💳 payment retries ü\u0301",
    "payment retries stripe " * 4000,  # very long: a pasted log
    "\x01\x7f payment\u200b retries\u2028stripe \ud7ff",
]


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    """Recall on, as it is by default (these tests do not depend on the default)."""
    result: Settings = make_settings(recall=True)
    return result


@pytest.fixture
def repo(tmp_path: Path) -> RepoIdentity:
    return RepoIdentity(repo_key=f"dir:{tmp_path}", name="shop", worktree=str(tmp_path),
                        branch="main")


def start(db: Ctxdb, repo: RepoIdentity, session_id: str = "s-1",
          client: str = "claude-code") -> AgentSession:
    session = AgentSession(client=client, session_id=session_id, cwd=repo.worktree)
    db.sessions.start(session, "startup", repo)
    return session


def project_of(db: Ctxdb, session: AgentSession) -> str:
    instance = db.sessions.instance_of(session)
    assert instance is not None
    return str(instance["project_id"])


@pytest.fixture
def shop(db: Ctxdb, repo: RepoIdentity) -> Iterator[dict[str, Any]]:
    """A session started in a project, then two items and a memory about payment retries
    and one about something else stored (so the startup pack did not inject them)."""
    session = start(db, repo)
    project_id = project_of(db, session)
    retries = db.context.store(project_id, "payment retries back off exponentially at Stripe",
                               "HIGH")
    other = db.context.store(project_id, "the docs site is built with mkdocs", "MEDIUM")
    memory = db.memories.put(project_id, "payments", "provider",
                             "Stripe retries failed payments, PayPal is not used")
    yield {"session": session, "project_id": project_id, "retries": retries["item_id"],
           "other": other["item_id"], "memory": memory["memory_id"]}


def test_a_relevant_prompt_injects_the_matching_records_and_records_the_injection(
        db: Ctxdb, shop: dict[str, Any]) -> None:
    injection = db.recall.for_prompt(shop["session"], "why do the payment retries at Stripe "
                                                      "fail so often?")
    assert injection is not None
    text = injection["text"]
    assert f"- item #{shop['retries']} (HIGH" in text and "back off exponentially" in text
    assert f"- memory {shop['memory']} (semantic" in text
    assert "mkdocs" not in text
    recorded = db.sessions.injections(injection["instance_id"])[-1]
    assert (recorded["hook_event"], recorded["source"]) == ("UserPromptSubmit", "recall")
    assert recorded["item_ids"] == [shop["retries"]] and recorded["text"] == text
    assert recorded["characters"] == len(text)
    audit = db.audit_log(project_id=shop["project_id"], entity_id=injection["instance_id"],
                         limit=5)
    assert any(entry["action"] == "session.recall" for entry in audit)


def test_an_unrelated_prompt_or_a_reply_injects_nothing(db: Ctxdb, shop: dict[str, Any]) -> None:
    session = shop["session"]
    for prompt in ("what is the weather like in Lisbon this weekend?", "yes", "continue",
                   "/compact", "ok go ahead", "", "   ", "stripe"):
        assert db.recall.for_prompt(session, prompt) is None, prompt
    # One shared word is under the relevance floor (two of the prompt's terms).
    assert db.recall.for_prompt(session, "how is the Lisbon office renting its desks via "
                                         "stripe transfers") is None
    instance = db.sessions.instance_of(session)
    assert instance is not None
    assert db.sessions.injections(instance["instance_id"])[-1]["source"] == "startup"


def test_records_injected_in_this_generation_are_not_injected_again(
        db: Ctxdb, repo: RepoIdentity, shop: dict[str, Any]) -> None:
    prompt = "payment retries at Stripe"
    first = db.recall.for_prompt(shop["session"], prompt)
    assert first is not None and first["item_ids"] == [shop["retries"]]
    assert db.recall.for_prompt(shop["session"], prompt + " again, please") is None
    # Items the startup pack injected are not repeated either: a new session's pack holds
    # the item, and its recall names only the memory.
    later = start(db, repo, "s-2")
    again = db.recall.for_prompt(later, prompt)
    assert again is not None and again["item_ids"] == []
    assert recalled_keys([again["text"]]) == {("memory", shop["memory"])}
    # A new generation (a clear and reload) may be given them again.
    db.sessions.start(later, "compact", repo)
    renewed = db.recall.for_prompt(later, prompt)
    assert renewed is not None and recalled_keys([renewed["text"]]) \
        == {("memory", shop["memory"])}


def test_the_block_stays_within_its_budget(make_settings: Any, repo: RepoIdentity) -> None:
    with Ctxdb.open(make_settings(recall=True, recall_max_chars=400)) as db:
        session = start(db, repo)
        project_id = project_of(db, session)
        for n in range(12):
            db.context.store(project_id, f"ledger export {n} streams rows " + "x" * 150, "HIGH")
        injection = db.recall.for_prompt(session, "stream the ledger export")
        assert injection is not None
        assert len(injection["text"]) <= 400 and injection["characters"] <= 400
        assert 1 <= len(injection["item_ids"]) < 12
        # Only what the text names was recorded: the rest can come with a later prompt.
        assert recalled_keys([injection["text"]]) \
            == {("context", str(i)) for i in injection["item_ids"]}
        later = db.recall.for_prompt(session, "the ledger export streams")
        assert later is not None and set(later["item_ids"]).isdisjoint(injection["item_ids"])


def test_recall_off_injects_nothing(make_settings: Any, shop: dict[str, Any]) -> None:
    with Ctxdb.open(make_settings(recall=False)) as off:
        assert off.recall.for_prompt(shop["session"], "payment retries at Stripe") is None
        event = _event("claude-code", "UserPromptSubmit", shop["session"],
                       "payment retries at Stripe")
        assert off.hook_events.handle(event, _no_repo) is None


def test_each_client_gets_the_block_in_its_hook_output(
        db: Ctxdb, repo: RepoIdentity, shop: dict[str, Any]) -> None:
    for client, name in (("claude-code", "UserPromptSubmit"), ("codex", "UserPromptSubmit"),
                         ("gemini", "BeforeAgent")):
        session = start(db, repo, f"{client}-1", client)  # its pack holds the items
        event = _event(client, name, session, "payment retries at Stripe?")
        text = db.hook_events.handle(event, _no_repo)
        assert text is not None and f"- memory {shop['memory']} " in text
        output = json.loads(context_output(event, text) or "")
        assert output == {"hookSpecificOutput": {"hookEventName": name,
                                                 "additionalContext": text}}


def test_prompts_in_any_syntax_never_fail(db: Ctxdb, repo: RepoIdentity,
                                         shop: dict[str, Any]) -> None:
    for n, prompt in enumerate(ODD_PROMPTS):
        session = start(db, repo, f"odd-{n}")  # a session of its own: nothing recalled yet
        injection = db.recall.for_prompt(session, prompt)
        # Every one of them is about payment retries at Stripe, whatever its syntax.
        assert injection is not None and f"- memory {shop['memory']} " in injection["text"]


def test_the_hook_process_exits_0_on_odd_prompts_and_prints_the_block(
        settings: Settings, db: Ctxdb, shop: dict[str, Any], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in {s.env_var for s in SETTINGS_HELP} | {CONFIG_ENV}}
    env |= {"CTXDB_URL": settings.url, "CTXDB_HOOK_LOG": str(tmp_path / "hook.log"),
            "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "CTXDB_RECALL": "1"}
    session = shop["session"]
    outputs = []
    for prompt in (ODD_PROMPTS[0], ODD_PROMPTS[5]):  # quotes and operators; 90,000 characters
        payload = {"session_id": session.session_id, "cwd": session.cwd,
                   "hook_event_name": "UserPromptSubmit", "prompt": prompt}
        done = subprocess.run([str(CTXDB), "hook", "--client", "claude-code"],
                              input=json.dumps(payload), capture_output=True, text=True,
                              env=env, timeout=60)
        assert (done.returncode, done.stderr) == (0, "")
        outputs.append(done.stdout)
    assert not (tmp_path / "hook.log").exists()
    # Both are about payment retries: the first injected the records, the second had
    # nothing new to add.
    injected = json.loads(outputs[0])["hookSpecificOutput"]["additionalContext"]
    assert f"#{shop['retries']}" in injected and outputs[1] == ""


def test_prompt_terms_and_the_relevance_floor() -> None:
    assert recall_terms("/review the payment retries") == []
    assert recall_terms("yes, please continue") == []
    assert recall_terms("Why does parseConfig drop the retry budget?") \
        == ["parseConfig", "drop", "retry", "budget"]
    many = recall_terms(" ".join(f"word{n:02d}" + "x" * (n % 5) for n in range(40)))
    assert len(many) == 12
    assert recall_terms("a" * 41 + " deadbeef" * 2 + " cafe") == ["deadbeef", "cafe"]
    assert [required_terms(n) for n in (2, 3, 6, 7, 12)] == [2, 2, 2, 3, 4]


def test_render_names_each_record_on_one_line() -> None:
    hits = [{"kind": "context", "id": 7, "priority": "HIGH", "type": "note", "key": None,
             "namespace": None, "body": "payment\nretries"},
            {"kind": "memory", "id": "mem_1", "priority": None, "type": "semantic",
             "namespace": "pay", "key": "a key\nwith lines", "body": "x " * 400}]
    rendered = render_recall(hits, title="t", max_chars=1_000)
    lines = rendered.text.splitlines()
    assert lines[:2] == ["# t", "- item #7 (HIGH, note): payment retries"]
    assert lines[2].startswith("- memory mem_1 (semantic, pay a key with lines): x x")
    assert len(lines) == 3 and len(lines[2]) <= 300
    assert rendered.item_ids == [7] and recalled_keys([rendered.text]) == set(rendered.keys)
    assert render_recall(hits, title="t" * 990, max_chars=1_000).text == ""


def _event(client: str, name: str, session: AgentSession, prompt: str) -> Any:
    return parse_event(client, json.dumps({"session_id": session.session_id,
                                           "cwd": session.cwd, "hook_event_name": name,
                                           "prompt": prompt}))


def _no_repo() -> RepoIdentity:
    raise AssertionError("a known session needs no repository identity")


def test_the_english_stemmer_alone_stems_as_snowballstemmer_does() -> None:
    """The stemmer is loaded without snowballstemmer's __init__ (which imports 36 languages,
    on every searched prompt): it must be the same stemmer."""
    import re

    import snowballstemmer  # type: ignore[import-untyped]

    from ctxdb.storage.search_text import _stemmer

    reference = snowballstemmer.stemmer("english").stemWord
    docs = Path(__file__).resolve().parents[1] / "docs"
    words = {word.lower() for path in docs.glob("*.md")
             for word in re.findall(r"[^\W\d_]+", path.read_text(encoding="utf-8"))}
    assert len(words) > 3_000
    assert [_stemmer()(word) for word in sorted(words)] == [reference(word)
                                                           for word in sorted(words)]


def test_the_settings_come_from_the_environment_and_the_config_file(tmp_path: Path) -> None:
    from ctxdb.errors import ConfigError
    from ctxdb.settings import load_settings

    env = {"HOME": str(tmp_path), "CTXDB_URL": str(tmp_path / "x.db")}
    assert (load_settings(env=env).recall, load_settings(env=env).recall_max_chars) \
        == (True, 1_500)
    config = tmp_path / "config.toml"
    config.write_text("recall = false\nrecall_max_chars = 800\n", encoding="utf-8")
    from_file = load_settings(env=env, config_file=config)
    assert (from_file.recall, from_file.recall_max_chars) == (False, 800)
    from_env = load_settings(env={**env, "CTXDB_RECALL": "on",
                                  "CTXDB_RECALL_MAX_CHARS": "2000"}, config_file=config)
    assert (from_env.recall, from_env.recall_max_chars) == (True, 2_000)
    assert not load_settings(env={**env, "CTXDB_RECALL": "0"}).recall
    for bad in ("299", "9501", "lots"):
        with pytest.raises(ConfigError, match="CTXDB_RECALL_MAX_CHARS"):
            load_settings(env={**env, "CTXDB_RECALL_MAX_CHARS": bad})


def test_through_the_server_a_prompt_recalls_its_own_projects_records_only(db: Ctxdb) -> None:
    from fastapi.testclient import TestClient

    from ctxdb.http.app import create_app

    repos = {name: {"repo_key": f"git:example.com/acme/{name}@{name * 12}", "name": name,
                    "worktree": f"/src/{name}", "branch": "main"} for name in ("a", "b")}
    projects = {name: db.sessions.resolve_project(RepoIdentity(**repo))["project_id"]
                for name, repo in repos.items()}
    headers = {"Authorization": "Bearer "
               + db.access_tokens.create(projects["a"], "write")["secret"]}

    def post(name: str, **fields: Any) -> Any:
        event = {"hook_event_name": name, "session_id": "a-1", "cwd": "/src/a", **fields}
        answer = client.post("/v1/hooks", headers=headers, json={
            "client": "gemini", "event": event, "repo": repos["a"]})
        assert answer.status_code == 200, answer.text
        return answer.json()["output"]

    with TestClient(create_app(db)) as client:
        post("SessionStart", source="startup")
        db.context.store(projects["b"], "payment retries at Stripe: the secret of b", "HIGH")
        mine = db.context.store(projects["a"], "payment retries at Stripe back off", "HIGH")
        output = post("BeforeAgent", prompt="why do payment retries at Stripe fail?")
    text = output["hookSpecificOutput"]["additionalContext"]
    assert output["hookSpecificOutput"]["hookEventName"] == "BeforeAgent"
    assert f"- item #{mine['item_id']} " in text and "secret of b" not in text


def test_what_other_sessions_did_is_recalled_but_not_the_sessions_own(
        db: Ctxdb, repo: RepoIdentity, shop: dict[str, Any], tmp_path: Path) -> None:
    from test_ingest import prompt

    transcript = tmp_path / "earlier.jsonl"
    transcript.write_bytes(prompt("the invoice exporter crashes on refunds with a KeyError"))
    db.transcripts.ingest(transcript, project_id=shop["project_id"], session_id="earlier")
    question = "does the invoice exporter still crash on refunds?"
    injection = db.recall.for_prompt(shop["session"], question)
    assert injection is not None
    assert "- observation " in injection["text"] and "KeyError" in injection["text"]
    # The same record ingested as the asking session's own turn is in its conversation already.
    own = start(db, repo, session_id="s-own")
    mine = tmp_path / "mine.jsonl"
    mine.write_bytes(prompt("the ledger importer drops rows with a ValueError at midnight"))
    db.transcripts.ingest(mine, project_id=shop["project_id"], session_id="s-own")
    assert db.recall.for_prompt(own, "why does the ledger importer drop rows at midnight") is None
