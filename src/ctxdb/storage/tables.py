"""The table registry: every data table of the current schema, described once.

Whole-database operations (bundles, ``db copy``, emptying a database) work table by table
from this list rather than from hand-written queries per table, so a table is moved, counted
and verified only if it is listed here. A test fails when the schema holds a table that is
neither listed nor declared derived, so a new migration cannot be forgotten.

For each table:

- ``columns``: every stored column with its kind, which decides how values are made
  canonical (the same bytes from SQLite and PostgreSQL): ``int``, ``text``, ``bool``,
  ``json`` (SQLite: text; PostgreSQL: jsonb) and ``timestamp`` (SQLite: ISO-8601 text;
  PostgreSQL: timestamptz);
- ``key``: the primary key columns; rows are always read in key order (text keys compared
  bytewise, whatever the database's collation);
- ``identity``: the column numbered by the database (SQLite: the INTEGER PRIMARY KEY, with or
  without AUTOINCREMENT; PostgreSQL: an identity), whose counter must move past explicitly
  inserted ids;
- ``deferred``: columns that may point to a row inserted later (``context_items.superseded_by``
  names the item that replaced it, which is newer): inserted as NULL, set once the table is in;
- ``scope``: how a row belongs to one project: its own ``project_id`` column, or the
  ``project_id`` of the parent row its column points to;
- ``numbers``: the numbered id space its key holds: the table's own for an identity table, and
  ``context_items`` for ``archived_context_items`` (an archived item keeps its item id);
- ``refs``: the columns holding ids of a numbered space (a JSON column: a list of them). A
  project bundle imported next to other projects may get new ids where its numbers are
  taken; these are the columns rewritten to follow them (``bundle_merge.py``);
- ``natural``: for a numbered table, columns that name the same record in any database and
  never change: a unique constraint's (an item's project and sequence number), or for tasks
  their project, creation time and title. How an import recognises a changed version of a
  row whose number differs here.

``TABLES`` is in parent-before-child order: inserting in this order (and each table in key
order) satisfies every foreign key except the deferred columns.

Derived tables (search indexes kept by triggers or generated columns) are not listed: they
are rebuilt from their source rows as those are inserted.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

KINDS = ("int", "text", "bool", "json", "timestamp")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Scope:
    """Rows of one project: ``column`` equals the project id, or (with ``parent``) ``column``
    is in ``parent``'s ``parent_column`` values of rows whose ``project_id`` is the project."""

    column: str = "project_id"
    parent: str | None = None
    parent_column: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    scope: Scope
    identity: str | None = None
    deferred: tuple[str, ...] = ()
    numbers: str | None = None
    refs: tuple[tuple[str, str], ...] = ()  # (column, numbered space)
    natural: tuple[str, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _kind in self.columns)

    @functools.cached_property
    def kinds(self) -> dict[str, str]:
        """Column name -> kind."""
        return dict(self.columns)

    def kind(self, column: str) -> str:
        return self.kinds[column]

    def columns_of_kind(self, kind: str) -> tuple[str, ...]:
        return tuple(name for name, found in self.columns if found == kind)


def _table(
    name: str, columns: str, *, key: str, scope: Scope | None = None,
    identity: bool = False, deferred: tuple[str, ...] = (), numbers: str | None = None,
    refs: str = "", natural: str = "",
) -> Table:
    """A table from ``"name kind, name kind, …"``; checks every identifier, since they are
    written into SQL text."""
    pairs = [part.split() for part in columns.split(",")]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"table {name}: columns are 'name kind' pairs separated by commas")
    parsed = tuple((pair[0], pair[1]) for pair in pairs)
    keys = tuple(key.split())
    names = [column for column, _kind in parsed]
    for identifier in (name, *names):
        if not _IDENTIFIER.match(identifier):
            raise ValueError(f"{identifier!r} is not a plain SQL identifier")
    if any(kind not in KINDS for _column, kind in parsed) or len(set(names)) != len(names):
        raise ValueError(f"table {name}: bad column kinds or repeated columns")
    references = tuple((pair[0], pair[1]) for pair in (ref.split(":") for ref in refs.split()))
    named = set(deferred) | {column for column, _space in references} | set(natural.split())
    if not set(keys) <= set(names) or not named <= set(names):
        raise ValueError(f"table {name}: key, deferred, ref or natural columns are not columns")
    return Table(name, parsed, keys, scope or Scope(), keys[0] if identity else None,
                 deferred, name if identity else numbers, references, tuple(natural.split()))


def _via(column: str, parent: str) -> Scope:
    return Scope(column, parent, column)


TABLES: tuple[Table, ...] = (
    _table("projects", """
        project_id text, name text, description text, total_story_points int,
        completed_story_points int, status text, repo_key text, next_sequence int,
        metadata json, created_at timestamp, updated_at timestamp, archived_at timestamp""",
        key="project_id"),
    _table("phases", """
        phase_id int, project_id text, phase_number int, name text, description text,
        story_points int, status text, started_at timestamp, completed_at timestamp,
        blocked_reason text, metadata json, created_at timestamp""",
        key="phase_id", identity=True,
        natural="project_id phase_number"),
    _table("instances", """
        instance_id text, project_id text, phase_id int, hostname text, process_id int,
        client text, session_id text, worktree text, branch text, model text,
        context_window int, current_token_usage int, generation int, status text,
        started_at timestamp, last_heartbeat timestamp, ended_at timestamp, metadata json""",
        key="instance_id",
        refs="phase_id:phases"),
    _table("context_items", """
        item_id int, project_id text, phase_id int, sequence_number int, content_type text,
        priority text, token_count int, content json, metadata json, created_by text,
        idempotency_key text, state text, superseded_by int, deleted_at timestamp,
        deleted_by text, created_at timestamp""",
        key="item_id", identity=True, deferred=("superseded_by",),
        refs="phase_id:phases superseded_by:context_items",
        natural="project_id sequence_number"),
    _table("archived_context_items", """
        item_id int, project_id text, phase_id int, sequence_number int, content_type text,
        priority text, token_count int, content json, metadata json, created_by text,
        idempotency_key text, state text, superseded_by int, deleted_at timestamp,
        deleted_by text, created_at timestamp, archived_at timestamp, archived_by text""",
        key="item_id",
        refs="phase_id:phases superseded_by:context_items", numbers="context_items",
        natural="project_id sequence_number"),
    _table("handoffs", """
        handoff_id int, project_id text, instance_id text, generation int, kind text,
        summary text, next_steps json, working_set json, tokens_before int,
        idempotency_key text, created_at timestamp""",
        key="handoff_id", identity=True,
        natural="idempotency_key"),
    _table("injections", """
        injection_id int, project_id text, instance_id text, session_id text, generation int,
        hook_event text, source text, item_ids json, handoff_id int, characters int,
        tokens int, injected_text text, idempotency_key text, created_at timestamp""",
        key="injection_id", identity=True,
        refs="item_ids:context_items handoff_id:handoffs",
        natural="idempotency_key"),
    _table("transcripts", """
        transcript_id int, path text, session_id text, agent_id text, project_id text,
        instance_id text, byte_offset int, records int, created_at timestamp,
        updated_at timestamp""",
        key="transcript_id", identity=True,
        natural="path"),
    _table("api_usage", """
        usage_id int, session_id text, message_id text, project_id text, instance_id text,
        agent_id text, model text, input_tokens int, output_tokens int,
        cache_creation_tokens int, cache_read_tokens int, sidechain int,
        occurred_at timestamp, updated_at timestamp""",
        key="usage_id", identity=True,
        natural="session_id message_id"),
    _table("compactions", """
        compaction_id int, session_id text, boundary_uuid text, project_id text,
        instance_id text, trigger_type text, pre_tokens int, occurred_at timestamp,
        summary text, created_at timestamp""",
        key="compaction_id", identity=True,
        natural="boundary_uuid"),
    # What agent sessions did (migration 0019), keyed by the transcript records they come
    # from: an import recognises a row by that key.
    _table("observations", """
        observation_id int, project_id text, instance_id text, session_id text,
        generation int, kind text, tool text, text text, exit_code int, source_key text,
        occurred_at timestamp, created_at timestamp""",
        key="observation_id", identity=True,
        natural="source_key"),
    _table("memories", """
        memory_id text, project_id text, namespace text, key text, memory_type text,
        version int, value json, created_by text, updated_by text, created_at timestamp,
        updated_at timestamp, expires_at timestamp, deleted_at timestamp""",
        key="memory_id"),
    _table("memory_versions", """
        memory_id text, version int, op text, memory_type text, value json, written_by text,
        written_at timestamp, expires_at timestamp""",
        key="memory_id version", scope=_via("memory_id", "memories")),
    _table("sessions", """
        session_id text, project_id text, app_name text, user_id text, instance_id text,
        state json, status text, next_event_seq int, created_at timestamp,
        updated_at timestamp, closed_at timestamp""",
        key="session_id"),
    _table("session_events", """
        event_id int, session_id text, sequence int, role text, content json, metadata json,
        idempotency_key text, created_at timestamp""",
        key="event_id", identity=True, scope=_via("session_id", "sessions"),
        natural="session_id sequence"),
    _table("tasks", """
        task_id int, project_id text, parent_task_id int, title text, description text,
        priority int, status text, result json, error text, lease_owner text,
        lease_expires_at timestamp, epoch int, attempts int, created_by text,
        created_at timestamp, updated_at timestamp, completed_at timestamp""",
        key="task_id", identity=True,
        refs="parent_task_id:tasks", natural="project_id created_at title"),
    _table("task_dependencies", """
        task_id int, depends_on_task_id int""",
        key="task_id depends_on_task_id", scope=_via("task_id", "tasks"),
        refs="task_id:tasks depends_on_task_id:tasks"),
    _table("messages", """
        message_id int, project_id text, sender text, recipient_kind text, recipient text,
        subject text, body json, created_at timestamp""",
        key="message_id", identity=True),
    _table("message_deliveries", """
        message_id int, instance_id text, delivered_count int, visible_after timestamp,
        acked_at timestamp""",
        key="message_id instance_id", scope=_via("message_id", "messages"),
        refs="message_id:messages"),
    _table("approval_gates", """
        gate_id int, project_id text, phase_id int, instance_id text, gate_type text,
        title text, request json, status text, response json, requested_by text,
        decided_by text, decided_at timestamp, idempotency_key text, created_at timestamp""",
        key="gate_id", identity=True,
        refs="phase_id:phases",
        natural="project_id idempotency_key"),
    _table("command_runs", """
        run_id int, project_id text, instance_id text, command text, arguments json,
        cwd text, status text, exit_code int, output text, error text, duration_ms int,
        created_by text, idempotency_key text, queued_at timestamp, started_at timestamp,
        finished_at timestamp""",
        key="run_id", identity=True,
        natural="project_id idempotency_key"),
    _table("checkpoints", """
        checkpoint_id int, project_id text, instance_id text, phase_id int, generation int,
        label text, state json, created_by text, idempotency_key text,
        created_at timestamp""",
        key="checkpoint_id", identity=True,
        refs="phase_id:phases",
        natural="project_id idempotency_key"),
    # The API tokens of `ctxdb serve` (migration 0013): hashes only. A fleet-wide token
    # (project_id NULL) belongs to no project, so only whole-database copies move it.
    _table("api_tokens", """
        token_id text, name text, project_id text, scope text, secret_sha256 text,
        created_by text, created_at timestamp, expires_at timestamp, revoked_at timestamp,
        last_used_at timestamp""",
        key="token_id"),
    _table("audit_log", """
        audit_id int, occurred_at timestamp, actor text, action text, entity_type text,
        entity_id text, project_id text, details json""",
        key="audit_id", identity=True),
    # The hash chains over the audit log (migration 0011): moved with the entries they seal,
    # so that a copy or an import verifies as its source did.
    _table("audit_seals", """
        audit_id int, chain text, seal_seq int, row_sha256 text, chain_sha256 text,
        sealed_at timestamp""",
        key="audit_id", scope=_via("audit_id", "audit_log"),
        refs="audit_id:audit_log"),
)

# Columns a database keeps about its own rows, left out of TABLES: filled by their default on
# insert, never exported, copied or hashed. audit_log.xact_id is the number of the transaction
# that wrote the row in this database (the change feed's order, migration 0016): another
# database's numbers would put copied rows out of its order. memories.document_version
# (SQLite's migration 0024, PostgreSQL's 0026) is the version whose search document the put
# wrote itself, which says something only to this database's triggers.
LOCAL_COLUMNS: frozenset[tuple[str, str]] = frozenset({("audit_log", "xact_id"),
                                                       ("memories", "document_version")})

# Tables kept by the database itself from other tables' rows (search indexes and, for
# SQLite FTS5, their shadow tables, which share the index's name as a prefix): never exported,
# never copied, rebuilt by triggers as their source rows are inserted. search_documents is
# the full-text search's copy of the live items, memories, events (migration 0008) and
# observations (0019).
DERIVED_TABLES: frozenset[str] = frozenset({"search_documents", "search_fts"})

# The triggers that keep the derived tables current are named with this prefix. A bulk load
# into an empty database switches them off and rebuilds the derived rows once at the end with
# these named queries (then the dialect's search_rebuild): two to three times faster than
# row by row (see bulk.suspend_derived_triggers).
DERIVED_TRIGGER_PREFIX = "search_"
DERIVED_REBUILD_QUERIES = ("search_add_missing_context", "search_add_missing_memories",
                           "search_add_missing_events", "search_add_missing_observations")

# Tables that belong to the database engine, to the migration runner, or to the database
# itself: change_feed_keys holds the key that seals this database's change feed positions
# (migration 0016), which mean nothing in another database and are never moved; and
# idempotency_keys (migration 0017), the first answers kept for clients that retry a create
# within seconds: answers naming this database's ids, meaningless in a bundle or a copy.
BOOKKEEPING_TABLES = frozenset({"schema_migrations", "sqlite_sequence", "sqlite_stat1",
                                "sqlite_stat4", "change_feed_keys", "idempotency_keys"})

_BY_NAME = {table.name: table for table in TABLES}


def table_named(name: str) -> Table | None:
    return _BY_NAME.get(name)


def is_derived(name: str) -> bool:
    return name in DERIVED_TABLES or any(name.startswith(f"{d}_") for d in DERIVED_TABLES)


def numbered_space(space: str) -> tuple[Table, ...]:
    """The tables whose keys hold ids of the numbered ``space`` (the identity table first)."""
    return tuple(table for table in TABLES if table.numbers == space)
