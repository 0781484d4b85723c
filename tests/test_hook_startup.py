"""``ctxdb hook`` starts without click and imports only what its event needs.

The fast path (``ctxdb.hooks.command``) must accept exactly the invocations click would run
with the same meaning and hand every other one to click; the click command must behave like
the fast path; and the lazy facade and package must still give every name they gave before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ctxdb.transcripts
from ctxdb.hooks.command import hook_arguments
from ctxdb.repo_identity import repo_identity
from ctxdb.service import Ctxdb
from ctxdb.settings import Settings

CTXDB = Path(sys.executable).with_name("ctxdb")


@pytest.mark.parametrize(("argv", "expected"), [
    (["hook", "--client", "claude-code"], ("claude-code", None)),
    (["hook", "--client=codex"], ("codex", None)),
    (["hook", "--client", "gemini", "--deadline", "2.5"], ("gemini", 2.5)),
    (["hook", "--deadline=0.05", "--client", "codex"], ("codex", 0.05)),
])
def test_a_well_formed_hook_invocation_takes_the_fast_path(
    argv: list[str], expected: tuple[str, float | None]
) -> None:
    assert hook_arguments(argv) == expected


@pytest.mark.parametrize("argv", [
    [], ["project", "list"], ["hook"], ["hook", "--help"], ["hook", "-h"],
    ["hook", "--client"], ["hook", "--client", "vim"], ["hook", "--client="],
    ["hook", "--client", "codex", "--client", "gemini"],
    ["hook", "--client", "codex", "--deadline", "0.01"],
    ["hook", "--client", "codex", "--deadline", "soon"],
    ["hook", "--client", "codex", "--deadline", "nan"],
    ["hook", "--client", "codex", "--deadline", "inf"],
    ["hook", "--client", "codex", "--deadline", "-1"],
    ["hook", "--client", "codex", "--verbose"], ["hook", "--client", "codex", "extra"],
    ["hook", "--", "--client", "codex"], ["--url", "x.db", "hook", "--client", "codex"],
])
def test_anything_else_is_left_to_click(argv: list[str]) -> None:
    assert hook_arguments(argv) is None


def test_hook_help_and_usage_errors_still_come_from_click() -> None:
    shown = subprocess.run([str(CTXDB), "hook", "--help"], capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0 and "Usage: ctxdb hook [OPTIONS]" in shown.stdout
    refused = subprocess.run([str(CTXDB), "hook", "--client", "vim"], capture_output=True,
                             text=True, input="", timeout=60)
    assert refused.returncode == 2 and "Invalid value for '--client'" in refused.stderr
    too_short = subprocess.run([str(CTXDB), "hook", "--client", "codex", "--deadline", "0.01"],
                               capture_output=True, text=True, input="", timeout=60)
    assert too_short.returncode == 2 and "--deadline" in too_short.stderr


def _session_start(session_id: str, cwd: Path) -> str:
    return json.dumps({"session_id": session_id, "transcript_path": None, "cwd": str(cwd),
                       "hook_event_name": "SessionStart", "source": "startup"})


def test_the_click_path_runs_the_same_hook(db: Ctxdb, settings: Settings,
                                           tmp_path: Path) -> None:
    # `ctxdb --url … hook …` has a global option first, so click runs it.
    project = db.sessions.resolve_project(repo_identity(str(tmp_path)))
    db.context.store(project["project_id"], "amounts are integer cents", "CRITICAL")
    log = tmp_path / "hook.log"
    # Without the siblings block: the second session would be told of the first.
    env = {"HOME": str(tmp_path), "CTXDB_HOOK_LOG": str(log), "PATH": os.environ["PATH"],
           "CTXDB_RESUME_SIBLINGS": "0"}
    outputs = []
    for session_id, prefix in (("fast", []), ("click", ["--url", settings.url])):
        done = subprocess.run(
            [str(CTXDB), *prefix, "hook", "--client", "codex", "--deadline", "20"],
            input=_session_start(session_id, tmp_path), capture_output=True, text=True,
            env={**env, "CTXDB_URL": settings.url} if not prefix else env, timeout=60)
        assert (done.returncode, done.stderr) == (0, "")
        outputs.append(json.loads(done.stdout)["hookSpecificOutput"]["additionalContext"])
    assert not log.exists()
    assert "amounts are integer cents" in outputs[0]
    assert outputs[0] == outputs[1]  # the same project and pack: the same text
    sessions = {row["session_id"] for row in db.instances.list()}
    assert {"fast", "click"} <= sessions


@pytest.mark.parametrize(("client", "event"), [("claude-code", "UserPromptSubmit"),
                                               ("gemini", "BeforeAgent")])
def test_a_prompt_hook_imports_neither_click_nor_unused_services(
    settings: Settings, tmp_path: Path, client: str, event: str
) -> None:
    """Gemini's prompt also looks for a compression to answer (none here: no handoff code)."""
    env = {"HOME": str(tmp_path), "CTXDB_URL": settings.url,
           "CTXDB_HOOK_LOG": str(tmp_path / "hook.log"), "PATH": os.environ["PATH"]}
    code, _, modules = hook_process(prompt_event(tmp_path, event), env, client)
    assert code == 0 and "ctxdb.service.usecases.agent_sessions" in modules  # prompt handled
    unwanted = {"click", "rich", "ctxdb.cli.root", "ctxdb.service.usecases.tokens",
                "ctxdb.service.usecases.transcripts", "ctxdb.service.usecases.handoffs",
                "ctxdb.transcripts.handoff", "ctxdb.transcripts.decisions",
                # the stemmer only where a write indexes a document or a prompt is searched:
                # "go" is a reply, not a topic, so recall searches nothing
                "snowballstemmer", "ctxdb.service.usecases.search",
                "ctxdb.service.usecases.recall"}
    assert unwanted.isdisjoint(modules), sorted(unwanted & set(modules))
    assert ("psycopg" in modules) == settings.url.startswith("postgresql")
    # ctxdb's loggers (ctxdb.logs) never import logging; psycopg does, on PostgreSQL only.
    assert ("logging" in modules) == settings.url.startswith("postgresql")


def prompt_event(cwd: Path, event: str = "UserPromptSubmit", prompt: str = "go",
                 transcript: Path | None = None) -> str:
    return json.dumps({"session_id": "probe", "cwd": str(cwd),
                       "transcript_path": None if transcript is None else str(transcript),
                       "hook_event_name": event, "prompt": prompt})


def usage_transcript(path: Path) -> Path:
    """A Claude Code transcript of one response whose context in use is 325 tokens."""
    path.write_text(json.dumps({
        "type": "assistant", "uuid": "u1", "message": {
            "id": "msg_1", "model": "claude-x", "role": "assistant", "content": [],
            "usage": {"input_tokens": 5, "cache_creation_input_tokens": 20,
                      "cache_read_input_tokens": 300}}}) + "\n")
    return path


def hook_process(payload: str, env: dict[str, str], client: str = "claude-code",
                 deadline: str | None = None) -> tuple[object, str, list[str]]:
    """``ctxdb hook`` run on ``payload`` in a process of its own: its exit code, what it
    printed, and the modules it had imported by the end."""
    argv = ["ctxdb", "hook", "--client", client,
            *(["--deadline", deadline] if deadline is not None else [])]
    probe = (
        "import io, json, sys\n"
        f"sys.argv = {argv!r}\n"
        f"sys.stdin = io.TextIOWrapper(io.BytesIO({payload!r}.encode()))\n"
        "out = sys.stdout = io.TextIOWrapper(io.BytesIO())\n"
        "import os\n"
        "os._exit = sys.exit  # a remote hook ends with os._exit: report after it\n"
        "from ctxdb.cli.main import main\n"
        "code = None\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "sys.stdout.flush()\n"
        "sys.stdout = sys.__stdout__\n"
        "print(json.dumps([code, out.buffer.getvalue().decode(), sorted(sys.modules)]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, check=True, timeout=60)
    code, output, modules = json.loads(done.stdout.splitlines()[-1])
    return code, output, modules


def test_a_recalling_prompt_imports_no_transcript_parser_and_nothing_for_other_events(
    db: Ctxdb, settings: Settings, tmp_path: Path
) -> None:
    """A prompt of a known session, recall on: the context in use is read from the
    transcript's tail without the parser and its models, and the start's modules (the
    pack, the repository's project), checksums, retry jitter and dataclasses are not
    imported."""
    from ctxdb.domain.agents import AgentSession

    transcript = usage_transcript(tmp_path / "session.jsonl")
    repo = repo_identity(str(tmp_path))
    project = db.sessions.resolve_project(repo)["project_id"]
    db.sessions.start(AgentSession("claude-code", "probe", str(transcript), str(tmp_path)),
                      "startup", repo)
    # Stored after the start, so not in its pack: the prompt has it to recall.
    db.context.store(project, "invoices are rounded to whole cents before the ledger", "HIGH")
    env = {"HOME": str(tmp_path), "CTXDB_URL": settings.url, "CTXDB_RECALL": "1",
           "CTXDB_HOOK_LOG": str(tmp_path / "hook.log"), "PATH": os.environ["PATH"]}
    _, output, modules = hook_process(
        prompt_event(tmp_path, prompt="why are invoices rounded before the ledger?",
                     transcript=transcript), env, deadline="30")
    assert "invoices are rounded" in output  # recalled
    assert not (tmp_path / "hook.log").exists()
    instance = db.instances.list()[0]
    assert instance["current_token_usage"] == 325  # read from the transcript's tail
    assert {"ctxdb.service.usecases.recall", "ctxdb.transcripts.tail"} <= set(modules)
    unwanted = {"ctxdb.transcripts.parser", "ctxdb.transcripts.models",
                "ctxdb.transcripts.prompts", "ctxdb.service.usecases.packs",
                "ctxdb.domain.packing", "ctxdb.service.usecases.repo_projects"}
    if not settings.is_postgres:  # psycopg brings its own
        # Nor dataclasses (and with it inspect, ast, dis, tokenize): the classes on the
        # path are named tuples, each built in a tenth of a dataclass's time.
        unwanted |= {"hashlib", "random", "dataclasses", "inspect"}
    assert unwanted.isdisjoint(modules), sorted(unwanted & set(modules))


def test_the_facade_creates_each_service_once_and_shares_instances(db: Ctxdb) -> None:
    assert db.context is db.context and db.sessions is db.sessions
    assert db.context.instances is db.instances is db.sessions.instances
    project = db.projects.create("Lazy", "", 100)
    assert db.phases.list(project["project_id"]) == []
    assert db.tokens is db.tokens and db.transcripts is db.transcripts


def test_the_transcripts_package_still_exports_every_name() -> None:
    for name in ctxdb.transcripts.__all__:
        assert getattr(ctxdb.transcripts, name) is not None
    assert set(ctxdb.transcripts.__all__) <= set(dir(ctxdb.transcripts))
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = ctxdb.transcripts.no_such_name


def test_cli_main_still_names_the_click_root() -> None:
    import click

    from ctxdb.cli import main

    assert isinstance(main.cli, click.Group) and main.cli.name == "ctxdb"
    assert sorted(main.COMMANDS) == main.cli.list_commands(click.Context(main.cli))
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = main.no_such_name
