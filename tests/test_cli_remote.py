"""The ``ctxdb`` command line through a ctxdb server (``--url http://…`` with ``CTXDB_TOKEN``):
every command either works through ``ctxdb.connect``'s facade or refuses with the typed
``local_only`` error; the output is the local one; a token's refusals are typed errors with
exit code 8. Both backends, a real uvicorn server in a thread, click's in-process runner."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import Result

from ctxdb.cli.main import LOCAL_ONLY, cli
from ctxdb.service import Ctxdb
from remote_server import served
from test_cli import Cli
from test_retention import old_item


class RemoteCli(Cli):
    """``ctxdb --url <server> …`` with a token in CTXDB_TOKEN, and no --traceback: an
    unexpected error must show as the 'internal' error it would be for a user."""

    def __init__(self, url: str, home: Path, token: str) -> None:
        super().__init__(url, home)
        self.env["CTXDB_TOKEN"] = token

    def __call__(self, *args: str, input: str | bytes | None = None, **env: str) -> Result:
        from click.testing import CliRunner

        return CliRunner().invoke(cli, ["--url", self.url, *args], input=input,
                                  env={**self.env, **env})


@pytest.fixture
def server(db: Ctxdb) -> Iterator[str]:
    with served(db) as url:
        yield url


@pytest.fixture
def remote(db: Ctxdb, server: str, tmp_path: Path) -> RemoteCli:
    return RemoteCli(server, tmp_path, db.access_tokens.create(None, "admin")["secret"])


def leaf_commands() -> set[str]:
    found: set[str] = set()

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):
            context = click.Context(command)
            if command.invoke_without_command and path:
                found.add(" ".join(path))
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                assert sub is not None
                walk(sub, [*path, name])
        else:
            found.add(" ".join(path))

    walk(cli, [])
    return found


# Commands that do not open the database: `hook` forwards to the server by itself
# (tests/test_remote_hooks.py), `install` writes an agent client's settings.
NOT_STORE = {"hook", "install"}
OK, LOCAL = "ok", "local_only"
# Refused by the server's service as locally (exit codes): a conflict, nothing to find.
CONFLICT, NOT_FOUND = 4, 3
Step = tuple[str, Callable[[dict[str, Any]], list[str]], str | int]


def _steps() -> list[Step]:
    """Every command, in an order in which each finds the records it names; what it must
    do through a server. ``s`` holds the ids made so far."""
    def p(*rest: str) -> Callable[[dict[str, Any]], list[str]]:
        return lambda s: [part.format(**s) for part in rest]

    return [
        ("summary", p(), OK),
        ("project list", p(), OK),
        ("project get", p("{pid}"), OK),
        ("project update", p("{pid}", "--completed-points", "5"), OK),
        ("phase create", p("-p", "{pid}", "1", "build"), OK),
        ("phase list", p("-p", "{pid}"), OK),
        ("phase start", p("{phase}"), OK),
        ("phase current", p("-p", "{pid}"), OK),
        ("phase block", p("{phase}", "--reason", "waiting"), OK),
        ("phase complete", p("{phase}"), OK),
        ("instance launch", p("-p", "{pid}", "--model", "m", "--context-window", "10000"), OK),
        ("instance list", p("-p", "{pid}"), OK),
        ("instance get", p("{iid}"), OK),
        ("instance heartbeat", p("{iid}"), OK),
        ("instance reap", p("-p", "{pid}"), OK),
        ("tokens update", p("{iid}", "4000"), OK),
        ("tokens check", p("{iid}"), OK),
        ("tokens all", p("-p", "{pid}"), OK),
        ("tokens clear", p("{iid}", "--summary", "half way"), OK),
        ("tokens auto", p("{iid}"), OK),
        ("context store", p("-p", "{pid}", '{{"rule": "use stripe webhooks"}}', "--priority",
                            "CRITICAL"), OK),
        ("context get", p("{item}"), OK),
        ("context list", p("-p", "{pid}"), OK),
        ("context page", p("-p", "{pid}", "--priority", "CRITICAL"), OK),
        ("context pack", p("-p", "{pid}", "--budget-tokens", "2000"), OK),
        ("context", p("-p", "{pid}", "--format", "json"), OK),
        # The project of the current repository (one nobody knows: see test_remote_context).
        ("context", p("--format", "json"), NOT_FOUND),
        ("context", p("-p", "{pid}", "--as-new-session", "--format", "json"), OK),
        ("context supersede", p("{item}", '{{"rule": "use stripe webhooks v2"}}'), OK),
        ("context delete", p("{item}"), OK),
        ("context archived", p("-p", "{pid}"), OK),
        ("context unarchive", p("{item}"), NOT_FOUND),  # not archived: as locally
        ("memory put", p("-p", "{pid}", "team", "style", '"black"'), OK),
        ("memory get", p("-p", "{pid}", "team", "style"), OK),
        ("memory history", p("-p", "{pid}", "team", "style"), OK),
        ("memory list", p("-p", "{pid}"), OK),
        ("memory delete", p("-p", "{pid}", "team", "style"), OK),
        ("memory purge", p("-p", "{pid}", "team", "style", "--yes"), OK),
        ("memory sweep", p("-p", "{pid}"), OK),
        ("task create", p("-p", "{pid}", "write the webhook"), OK),
        ("task list", p("-p", "{pid}"), OK),
        ("task get", p("{task}"), OK),
        ("task claim", p("-p", "{pid}", "{iid}"), OK),
        ("task start", p("{task}", "{epoch}"), OK),
        ("task renew", p("{task}", "{epoch}"), OK),
        ("task complete", p("{task}", "{epoch}"), OK),
        ("task fail", p("{task}", "{epoch}", "boom"), CONFLICT),
        ("task release", p("{task}", "{epoch}"), CONFLICT),
        ("task cancel", p("{task}"), CONFLICT),
        ("message send", p("-p", "{pid}", "--broadcast", "--text", "deploy at noon"), OK),
        ("message inbox", p("{iid}"), OK),
        ("message ack", p("{iid}", "{message}"), OK),
        ("message promote", p("{message}", "memory", "--namespace", "team", "--key", "deploy"),
         OK),
        ("approval request", p("-p", "{pid}", "deploy", '{{"env": "prod"}}'), OK),
        ("approval list", p("-p", "{pid}"), OK),
        ("approval show", p("{gate}"), OK),
        ("approval approve", p("{gate}"), OK),
        ("approval wait", p("{gate}", "--timeout", "1"), OK),
        ("approval reject", p("{gate}"), CONFLICT),
        ("approval cancel", p("{gate}"), CONFLICT),
        ("session create", p("-p", "{pid}", "app", "user"), OK),
        ("session list", p("-p", "{pid}"), OK),
        ("session get", p("{session}"), OK),
        ("session state", p("{session}", '{{"step": 2}}'), OK),
        ("session append", p("{session}", "user", "--text", "hello webhook"), OK),
        ("session events", p("{session}"), OK),
        ("session close", p("{session}"), OK),
        ("search", p("-p", "{pid}", "webhook", "--since", "1d", "--priority", "CRITICAL"), OK),
        ("timeline", p("-p", "{pid}", "--since", "1d"), OK),
        ("checkpoint save", p("{iid}", '{{"done": 1}}'), OK),
        ("checkpoint latest", p("-p", "{pid}"), OK),
        ("checkpoint list", p("-p", "{pid}"), OK),
        ("checkpoint show", p("{checkpoint}"), OK),
        ("command queue", p("-p", "{pid}", "--", "true"), OK),
        ("command start", p("{run}"), OK),
        ("command finish", p("{run}", "--exit-code", "0"), OK),
        ("command cancel", p("{run}"), CONFLICT),
        ("command record", p("-p", "{pid}", "--exit-code", "0", "--", "make"), OK),
        ("command run", p("-p", "{pid}", "--", "true"), OK),
        ("command list", p("-p", "{pid}"), OK),
        ("command show", p("{run}"), OK),
        ("audit", p("-p", "{pid}"), OK),
        ("audit verify", p("-p", "{pid}"), OK),
        ("audit seal", p("-p", "{pid}"), OK),
        ("instance end", p("{iid}"), OK),
        ("project create", p("Other"), OK),
        ("project archive", p("{other}"), OK),
        # The database itself: refused before anything is opened.
        ("init", p(), LOCAL), ("db status", p(), LOCAL), ("db upgrade", p(), LOCAL),
        ("db downgrade", p("--target", "1", "--yes"), LOCAL), ("db optimize", p(), LOCAL),
        ("db secure", p("--role", "agent"), LOCAL), ("db copy", p("--to", "{home}/c.db"), LOCAL),
        ("backup", p("{home}/out.db"), LOCAL), ("restore", p("{inputs}/b.db"), LOCAL),
        ("gc", p(), LOCAL), ("doctor", p(), LOCAL), ("export", p("{home}/e.ctxdb"), LOCAL),
        ("import bundle", p("{inputs}/e.ctxdb"), LOCAL), ("import files", p("{inputs}"), LOCAL),
        ("import legacy", p("{inputs}/l.db"), LOCAL),
        ("ingest-transcript", p("{inputs}/t.jsonl"), LOCAL),
        ("token create", p("-p", "{pid}", "--scope", "read"), LOCAL), ("token list", p(), LOCAL),
        ("token revoke", p("tok_x"), LOCAL), ("demo", p(), LOCAL), ("serve", p(), LOCAL),
        ("mcp", p(), LOCAL),
    ]


# Where a step's answer gives the ids later steps name.
CAPTURE = {
    "phase create": ("phase", "phase_id"), "instance launch": ("iid", "instance_id"),
    "context store": ("item", "item_id"), "context supersede": ("item", "item_id"),
    "task create": ("task", "task_id"),
    "task claim": ("epoch", "epoch"), "message send": ("message", "message_id"),
    "approval request": ("gate", "gate_id"), "session create": ("session", "session_id"),
    "checkpoint save": ("checkpoint", "checkpoint_id"), "command queue": ("run", "run_id"),
    "project create": ("other", "project_id"),
}


# Commands without --json (`context` prints JSON with --format json).
NO_JSON = {"context", "demo", "serve", "mcp"}


def with_json(path: str, arguments: list[str]) -> list[str]:
    """The command line, with --json (before a ``--`` that ends the options) if it takes it."""
    if path in NO_JSON:
        return [*path.split(), *arguments]
    if "--" in arguments:
        at = arguments.index("--")
        return [*path.split(), *arguments[:at], "--json", *arguments[at:]]
    return [*path.split(), *arguments, "--json"]


def parsed(text: str, path: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise AssertionError(f"{path}: not JSON: {text!r}") from None


def test_every_command_works_through_a_server_or_says_it_is_local_only(
        remote: RemoteCli, db: Ctxdb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _steps()
    assert {path for path, _, _ in steps} == leaf_commands() - NOT_STORE
    assert {path.split()[0] for path, _, want in steps if want == LOCAL} >= LOCAL_ONLY
    inputs = tmp_path / "inputs"  # files the local-only commands would read
    inputs.mkdir()
    (tmp_path / "cwd").mkdir()  # a working folder in no repository: its project is unknown
    monkeypatch.chdir(tmp_path / "cwd")
    for name in ("b.db", "e.ctxdb", "l.db", "t.jsonl"):
        (inputs / name).write_bytes(b"")
    before = set(tmp_path.rglob("*"))
    state: dict[str, Any] = {"pid": db.projects.create("Shop")["project_id"],
                             "home": str(tmp_path), "inputs": str(inputs)}
    for path, arguments, want in steps:
        result = remote(*with_json(path, arguments(state)))
        if want == OK:
            assert result.exit_code == 0, (path, result.output)
            answer = parsed(result.stdout, path)
            if path in CAPTURE:
                name, field = CAPTURE[path]
                state[name] = answer[field]
            continue
        if isinstance(want, int):  # refused by the server's service, as locally
            assert result.exit_code == want, (path, result.output)
            continue
        if path in NO_JSON:
            assert result.exit_code == 2 and "ctxdb server at" in result.stderr, path
            continue
        error = parsed(result.stderr, path)
        assert error["error"] == LOCAL, (path, result.output)
        assert result.exit_code == 2 and "server host" in error["message"], path
    assert set(tmp_path.rglob("*")) == before, "a command through a server wrote a file"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_output_through_a_server_is_the_local_output(
        remote: RemoteCli, db: Ctxdb, settings: Any, tmp_path: Path) -> None:
    local = Cli(settings.url, tmp_path)
    pid = db.projects.create("Shop", "rewrite", 300, {"team": "a"})["project_id"]
    iid = db.instances.launch(pid, model="m")["instance_id"]
    db.context.store(pid, {"rule": "stripe webhooks retry"}, "CRITICAL", "decision")
    db.context.store(pid, "the webhook handler lives in api/hooks.py", "LOW", "note")
    db.memories.put(pid, "team", "style", {"formatter": "black"})
    db.tasks.create(pid, "retry the webhook")
    db.messages.send(pid, "instance", iid, "deploy at noon")
    archived = old_item(db, settings, pid, "LOW")
    db.retention.collect(pid)
    commands = [
        ("project", "get", pid), ("project", "list"), ("summary",),
        ("instance", "list", "-p", pid), ("tokens", "all", "-p", pid),
        ("phase", "current", "-p", pid), ("context", "list", "-p", pid),
        ("context", "-p", pid, "--budget-tokens", "4000"),
        ("context", "pack", "-p", pid, "--budget-tokens", "4000"),
        ("memory", "get", "-p", pid, "team", "style"), ("memory", "list", "-p", pid),
        ("task", "list", "-p", pid), ("search", "-p", pid, "webhook", "--kind", "context"),
        ("context", "archived", "-p", pid), ("timeline", "-p", pid),
    ]
    for command in commands:
        here, there = local(*command), remote(*command)
        assert here.exit_code == there.exit_code == 0, (command, here.output, there.output)
        assert there.stdout == here.stdout, command
    # The same for machine output, and for the errors.
    for command in [("task", "list", "-p", pid, "--json"), ("context", "get", "999", "--json"),
                    ("memory", "get", "-p", pid, "team", "nope")]:
        here, there = local(*command), remote(*command)
        assert (there.exit_code, there.stdout) == (here.exit_code, here.stdout), command
        assert there.stderr.replace(', "status": 404', "") == here.stderr, command
    # What `ctxdb gc` archived comes back through the server.
    assert [i["item_id"] for i in remote.ok("context", "unarchive", str(archived))] == [archived]
    assert local.ok("context", "get", str(archived))["item_id"] == archived


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_servers_refusals_are_typed_errors_with_their_exit_codes(
        db: Ctxdb, server: str, tmp_path: Path) -> None:
    pid = db.projects.create("Shop")["project_id"]
    other = db.projects.create("Other")["project_id"]

    def as_token(scope: str, project_id: str | None = pid) -> RemoteCli:
        return RemoteCli(server, tmp_path, db.access_tokens.create(project_id, scope)["secret"])

    def refusal(cli: RemoteCli, *args: str) -> tuple[int, str]:
        result = cli(*args, "--json")
        return result.exit_code, parsed(result.stderr, " ".join(args))["error"]

    reader = as_token("read")
    assert reader.ok("project", "get", pid)["project_id"] == pid
    assert refusal(reader, "context", "store", "-p", pid, "--text", "x") == (8, "forbidden")
    assert refusal(as_token("admin"), "project", "create", "New") == (8, "forbidden")
    assert refusal(as_token("admin"), "project", "get", other) == (3, "project_not_found")
    assert refusal(as_token("write"), "project", "archive", pid) == (8, "forbidden")
    assert refusal(RemoteCli(server, tmp_path, "ctxdb_" + "x" * 43),
                   "project", "list") == (8, "unauthenticated")
    no_token = RemoteCli(server, tmp_path, "")
    assert refusal(no_token, "project", "list") == (2, "invalid_config")
    assert "CTXDB_TOKEN" in no_token("project", "list").stderr
    # A server that is not there: a storage error (exit 6), as an unreachable database.
    gone = RemoteCli("http://127.0.0.1:9", tmp_path, "ctxdb_" + "x" * 43)
    assert refusal(gone, "summary") == (6, "database_unavailable")
    # A record named by id alone, with a token that sees two projects: which one is asked.
    fleet = as_token("admin", None)
    assert refusal(fleet, "phase", "start", "1") == (2, "invalid_input")
    assert "--project" in fleet("phase", "start", "1").stderr
    # Nothing refused was written.
    assert {row["action"] for row in db.audit_log(pid)} == {"project.create", "api_token.create"}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_facade_names_what_a_server_does_not_offer(db: Ctxdb, server: str) -> None:
    import ctxdb
    from ctxdb.errors import LocalOnlyError

    pid = db.projects.create("Shop")["project_id"]
    with ctxdb.connect(server, db.access_tokens.create(pid, "admin")["secret"]) as remote:
        with pytest.raises(LocalOnlyError, match=r"retention\.collect is not offered .* host"):
            remote.retention.collect(pid)  # what `ctxdb gc` does: on the server host
        with pytest.raises(LocalOnlyError, match=r"instances\.set_status is not offered"):
            remote.instances.set_status("inst_x", "crashed")
        # What the CLI passes locally is taken, so the same code runs on both facades.
        item = remote.context.store(pid, "x", "HIGH", "note", actor="user:ignored")
        audit = remote.audit_log(pid, entity_id=str(item["item_id"]))
        assert audit[0]["actor"].startswith("token:")
