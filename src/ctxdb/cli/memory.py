"""``ctxdb memory …``: versioned JSON memories under namespace paths, with compare-and-set."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import content_options, json_option, project_option, read_content
from ctxdb.cli.output import print_record, print_table, say, show
from ctxdb.domain.models import choices
from ctxdb.domain.vocabulary import MemoryType

MEMORY_COLUMNS = ("namespace", "key", "memory_type", "version", "value", "updated_by",
                  "updated_at", "expires_at", "deleted_at")
VERSION_COLUMNS = ("version", "op", "memory_type", "value", "written_by", "written_at",
                   "expires_at")


def show_memory(memory: dict[str, Any], as_json: bool) -> None:
    title = f"memory {memory['namespace']}/{memory['key']} v{memory['version']}"
    show(memory, as_json, lambda: print_record(memory, title=title))


def namespace_and_key(func: Any) -> Any:
    func = click.argument("key")(func)
    return click.argument("namespace")(func)


@click.group("memory")
def memory_group() -> None:
    """Versioned JSON memories: (project, namespace path, key) → value.

    A namespace path is segments of letters, digits, '_', '.' or '-' separated by ':'
    (user:prefs, app:config:x). Every put and delete makes a new version; a stale
    --expect-version fails with exit code 4 and names the current version.
    """


@memory_group.command("put")
@project_option
@namespace_and_key
@content_options
@click.option("--type", "memory_type", type=click.Choice(choices(MemoryType)),
              help="Memory type (default: the current one, semantic for a new memory).")
@click.option("--expect-version", "expected_version", type=int,
              help="Write only if the memory is at this version (0: must not exist).")
@click.option("--ttl", "ttl_seconds", type=int,
              help="Seconds until it expires (default: the type's lifecycle setting).")
@json_option
@pass_app
def put_command(app: Application, project_id: str, namespace: str, key: str,
                content: str | None, file: str | None, as_text: bool, memory_type: str | None,
                expected_version: int | None, ttl_seconds: int | None, as_json: bool) -> None:
    """Write VALUE (JSON) under NAMESPACE KEY as a new version.

    \b
    Example:
      ctxdb memory put -p proj_… user:prefs theme '{"dark": true}' --expect-version 0
    """
    value = read_content(content, file, as_text)
    memory = app.db().memories.put(project_id, namespace, key, value, memory_type=memory_type,
                                   expected_version=expected_version, ttl_seconds=ttl_seconds)
    show_memory(memory, as_json)


@memory_group.command("get")
@project_option
@namespace_and_key
@click.option("--version", "version", type=int, help="A version from the history.")
@json_option
@pass_app
def get_command(app: Application, project_id: str, namespace: str, key: str,
                version: int | None, as_json: bool) -> None:
    """Show the live memory NAMESPACE KEY, or one version of it."""
    memory = app.db().memories.get(project_id, namespace, key, version)
    show_memory(memory, as_json)


@memory_group.command("history")
@project_option
@namespace_and_key
@json_option
@pass_app
def history_command(app: Application, project_id: str, namespace: str, key: str,
                    as_json: bool) -> None:
    """List every version of a memory, oldest first (deletes included)."""
    versions = app.db().memories.history(project_id, namespace, key)
    show(versions, as_json, lambda: print_table(versions, VERSION_COLUMNS,
                                               title=f"history of {namespace}/{key}"))


@memory_group.command("list")
@project_option
@click.argument("prefix", required=False, default="")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--after", nargs=2, metavar="NAMESPACE KEY", default=None,
              help="Start after this memory (the last one of the previous page).")
@click.option("--deleted", "include_deleted", is_flag=True, help="Include deleted memories.")
@click.option("--expired", "include_expired", is_flag=True,
              help="Include expired memories not swept yet.")
@json_option
@pass_app
def list_command(app: Application, project_id: str, prefix: str, limit: int,
                 after: tuple[str, str] | None, include_deleted: bool, include_expired: bool,
                 as_json: bool) -> None:
    """List memories whose namespace is PREFIX or below it, in (namespace, key) order."""
    memories = app.db().memories.list(project_id, prefix, limit=limit, after=after or None,
                                      include_deleted=include_deleted,
                                      include_expired=include_expired)
    show(memories, as_json, lambda: print_table(memories, MEMORY_COLUMNS, title="memories",
                                               empty="no memories"))


@memory_group.command("delete")
@project_option
@namespace_and_key
@click.option("--expect-version", "expected_version", type=int,
              help="Delete only if the memory is at this version.")
@json_option
@pass_app
def delete_command(app: Application, project_id: str, namespace: str, key: str,
                   expected_version: int | None, as_json: bool) -> None:
    """Delete a memory (a tombstone version; the history stays until purged)."""
    memory = app.db().memories.delete(project_id, namespace, key,
                                      expected_version=expected_version)
    show_memory(memory, as_json)


@memory_group.command("purge")
@project_option
@namespace_and_key
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_app
def purge_command(app: Application, project_id: str, namespace: str, key: str, yes: bool,
                  as_json: bool) -> None:
    """Erase a memory and every version of it for good (the audit log keeps the fact)."""
    if not yes:
        click.confirm(f"erase {namespace}/{key} and all its versions?", abort=True)
    result = app.db().memories.purge(project_id, namespace, key)
    show(result, as_json, lambda: say(
        f"purged {namespace}/{key} ({result['purged_versions']} versions)"))


@memory_group.command("sweep")
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Only this project's memories (default: all projects).")
@click.option("--limit", type=int, default=1000, show_default=True)
@json_option
@pass_app
def sweep_command(app: Application, project_id: str | None, limit: int, as_json: bool) -> None:
    """Remove expired memories (up to --limit); prints how many."""
    removed = app.db().memories.sweep_expired(project_id, limit=limit)
    show({"removed": removed}, as_json, lambda: say(f"removed {removed} expired memories"))
