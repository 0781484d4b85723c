"""The ``ctxdb`` console script: the entry point and the command registry.

Every ``ctxdb`` process starts in :func:`main`. An agent hook (``ctxdb hook --client …``)
starts on every prompt, so a well-formed hook invocation is recognised here, before click and
the command tree are imported, and run by ``ctxdb.hooks.command`` (with ``CTXDB_URL`` naming
a server, by ``ctxdb.hooks.remote_entry`` first, which hands it the events it cannot take).
Everything else, including ``ctxdb hook --help`` and a malformed hook invocation, goes
through the click root group (``ctxdb.cli.root``), which ``cli`` names here as before.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing's own import costs every hook process (docs/benchmarks.md)
if TYPE_CHECKING:
    from typing import Any

    from ctxdb.cli.root import CtxdbGroup, cli

__all__ = ["COMMANDS", "CtxdbGroup", "cli", "main"]

# Command name -> "module:attribute"; a module is imported only when its command runs.
COMMANDS: dict[str, str] = {
    "init": "ctxdb.cli.db:init_command",
    "db": "ctxdb.cli.db:db_group",
    "project": "ctxdb.cli.project:project_group",
    "phase": "ctxdb.cli.phase:phase_group",
    "instance": "ctxdb.cli.instance:instance_group",
    "context": "ctxdb.cli.context:context_group",
    "tokens": "ctxdb.cli.tokens:tokens_group",
    "token": "ctxdb.cli.token:token_group",
    "serve": "ctxdb.cli.serve:serve_command",
    "memory": "ctxdb.cli.memory:memory_group",
    "session": "ctxdb.cli.session:session_group",
    "task": "ctxdb.cli.task:task_group",
    "message": "ctxdb.cli.message:message_group",
    "approval": "ctxdb.cli.approval:approval_group",
    "command": "ctxdb.cli.command:command_group",
    "checkpoint": "ctxdb.cli.checkpoint:checkpoint_group",
    "search": "ctxdb.cli.search:search_command",
    "summary": "ctxdb.cli.summary:summary_command",
    "timeline": "ctxdb.cli.timeline:timeline_command",
    "audit": "ctxdb.cli.audit:audit_command",
    "demo": "ctxdb.cli.demo:demo_command",
    "hook": "ctxdb.cli.hook:hook_command",
    "ingest-transcript": "ctxdb.cli.ingest_transcript:ingest_command",
    "mcp": "ctxdb.cli.mcp:mcp_command",
    "install": "ctxdb.cli.install:install_command",
    "import": "ctxdb.cli.imports:import_group",
    "export": "ctxdb.cli.export:export_command",
    "doctor": "ctxdb.cli.doctor:doctor_command",
    "backup": "ctxdb.cli.backup:backup_command",
    "restore": "ctxdb.cli.backup:restore_command",
    "gc": "ctxdb.cli.gc:gc_command",
}

# Commands that work on the database itself (its file, schema, backups, bulk imports and
# exports, tokens) or serve it: with CTXDB_URL naming a ctxdb server (http(s)://…) they refuse
# with LocalOnlyError, saying to run them on the server host. Every other command goes
# through ctxdb.connect's facade (tests/test_cli_remote.py runs each one).
LOCAL_ONLY: frozenset[str] = frozenset({
    "init", "db", "backup", "restore", "gc", "import", "export", "doctor", "demo", "serve",
    "mcp", "ingest-transcript", "token",
})


def main() -> None:
    """Console-script entry point."""
    from ctxdb.hooks.invocation import hook_arguments

    hook = hook_arguments(sys.argv[1:])
    if hook is not None:
        if os.environ.get("CTXDB_URL", "")[:8].lower().startswith(("http://", "https://")):
            from ctxdb.hooks.remote_entry import leave, run  # the full path for the rest

            leave(run(*hook))
        from ctxdb.hooks.command import run_hook_command

        sys.exit(run_hook_command(*hook, detach=True))
    from ctxdb.cli.root import cli

    cli.main(prog_name="ctxdb")


def __getattr__(name: str) -> Any:
    """``cli`` and ``CtxdbGroup`` load click only when asked for (not on the hook path)."""
    if name in ("cli", "CtxdbGroup"):
        from ctxdb.cli import root

        return getattr(root, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
