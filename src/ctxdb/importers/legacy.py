"""A database built with the seed's own SQLite schema, read into plain records.

The seed's schema (its implementation guide, ``database/schema_sqlite.sql``) has five
tables: ``projects``, ``phases``, ``context_snapshots``, ``active_instances`` and
``schema_version``. The file is opened read-only and never changed. Every value is checked
and converted here (timestamps to ctxdb's ISO-8601 UTC text with milliseconds, JSON text
parsed), so that the write that follows cannot fail half-way on a bad row.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ctxdb.domain.models import PRIORITY_ORDER
from ctxdb.domain.validation import (
    MAX_INTEGER,
    check_identifier,
    encode_json,
)
from ctxdb.errors import (
    CtxdbError,
    ImportSourceError,
    InvalidLegacyDataError,
    NotALegacyDatabaseError,
)

# The columns each table must have (the seed's DDL); other columns are ignored.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "projects": ("project_id", "name", "description", "total_story_points",
                 "completed_story_points", "created_at", "updated_at", "metadata"),
    "phases": ("phase_id", "project_id", "phase_number", "name", "description",
               "story_points", "status", "started_at", "completed_at", "metadata",
               "created_at"),
    "context_snapshots": ("snapshot_id", "project_id", "phase_id", "sequence_number",
                          "content_type", "priority", "token_count", "content", "metadata",
                          "created_at"),
    "active_instances": ("instance_id", "project_id", "phase_id", "hostname", "process_id",
                         "started_at", "last_heartbeat", "status", "current_token_usage",
                         "metadata"),
    "schema_version": (),
}
PRIORITIES = frozenset(p.value for p in PRIORITY_ORDER)
PHASE_STATUSES = frozenset({"pending", "active", "completed", "blocked"})
INSTANCE_STATUSES = frozenset({"active", "idle", "crashed", "completed"})
FORMAT = "seed-sqlite"


@dataclass
class LegacyData:
    """The rows of a legacy database, checked and converted, in the order to write them."""

    path: str
    schema_versions: list[Any] = field(default_factory=list)
    projects: list[dict[str, Any]] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)


def read_legacy(path: str, max_content_bytes: int) -> LegacyData:
    """Open ``path`` read-only, check it has the seed's schema, and read every row."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ImportSourceError(f"no such file: {path}", path=path)
    resolved = file.resolve()
    try:
        conn = sqlite3.connect(f"file:{quote(str(resolved))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise NotALegacyDatabaseError(f"{path} cannot be opened as SQLite: {exc}",
                                      path=path) from exc
    conn.row_factory = sqlite3.Row
    try:
        _check_schema(conn, path)
        return _read(conn, str(resolved), max_content_bytes)
    except sqlite3.DatabaseError as exc:
        raise NotALegacyDatabaseError(f"{path} is not a readable SQLite database: {exc}",
                                      path=path) from exc
    finally:
        conn.close()


def _check_schema(conn: sqlite3.Connection, path: str) -> None:
    tables = {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = [t for t in REQUIRED_COLUMNS if t not in tables]
    if missing:
        hint = (" (it looks like a ctxdb database: copy it with ctxdb's own tools instead)"
                if "context_items" in tables else "")
        raise NotALegacyDatabaseError(
            f"{path} is not a database with the seed's schema: no table "
            f"{', '.join(missing)}{hint}", path=path, missing_tables=missing)
    for table, columns in REQUIRED_COLUMNS.items():
        present = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
        lacking = [c for c in columns if c not in present]
        if lacking:
            raise NotALegacyDatabaseError(
                f"{path} is not a database with the seed's schema: table {table} has no "
                f"column {', '.join(lacking)}", path=path, table=table, missing_columns=lacking)


def _read(conn: sqlite3.Connection, path: str, max_bytes: int) -> LegacyData:
    data = LegacyData(path)
    data.schema_versions = [dict(row) for row in conn.execute("SELECT * FROM schema_version")]
    project_ids = set()
    for row in conn.execute("SELECT * FROM projects ORDER BY created_at, project_id"):
        project = _project(_Row("projects", row, "project_id"), max_bytes)
        project_ids.add(project["project_id"])
        data.projects.append(project)
    phase_ids = set()
    for row in conn.execute("SELECT * FROM phases ORDER BY project_id, phase_number"):
        phase = _phase(_Row("phases", row, "phase_id"), project_ids, max_bytes)
        phase_ids.add(phase["legacy_phase_id"])
        data.phases.append(phase)
    for row in conn.execute("SELECT * FROM active_instances ORDER BY started_at, instance_id"):
        data.instances.append(_instance(_Row("active_instances", row, "instance_id"),
                                        project_ids, phase_ids, max_bytes))
    for row in conn.execute("SELECT * FROM context_snapshots "
                            "ORDER BY project_id, sequence_number, snapshot_id"):
        data.snapshots.append(_snapshot(_Row("context_snapshots", row, "snapshot_id"),
                                        project_ids, phase_ids, max_bytes))
    return data


class _Row:
    """One legacy row with checked accessors; every error names the table and the row."""

    def __init__(self, table: str, row: sqlite3.Row, id_column: str) -> None:
        self.table = table
        self.values = dict(row)
        self.row_id = self.values.get(id_column)

    def fail(self, message: str) -> InvalidLegacyDataError:
        return InvalidLegacyDataError(f"{self.table} row {self.row_id!r}: {message}",
                                      table=self.table, row=str(self.row_id))

    def checked(self, check: Any, *args: Any) -> Any:
        try:
            return check(*args)
        except CtxdbError as exc:
            raise self.fail(exc.message) from None

    def identifier(self, column: str) -> str:
        return str(self.checked(check_identifier, self.values[column], column))

    def text(self, column: str, default: str = "") -> str:
        value = self.values[column]
        if value is None:
            return default
        if "\x00" in str(value):
            raise self.fail(f"{column} contains a NUL byte")
        return str(value)

    def integer(self, column: str, default: int | None = 0) -> int | None:
        value = self.values[column]
        if value is None:
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INTEGER:
            raise self.fail(f"{column} must be an integer from 0 to {MAX_INTEGER}, "
                            f"got {value!r}")
        return value

    def timestamp(self, column: str) -> str | None:
        return to_timestamp(self.values[column], lambda m: self.fail(f"{column} {m}"))

    def json_value(self, column: str) -> Any:
        """JSON text parsed; text that is not JSON is kept as a string."""
        value = self.values[column]
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, bytes):
            raise self.fail(f"{column} is a binary value, not JSON text")
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value

    def metadata(self, extra: dict[str, Any], max_bytes: int) -> str:
        """The row's metadata object with ``imported_from`` added, as JSON text."""
        value = self.json_value("metadata")
        metadata = value if isinstance(value, dict) else (
            {} if value is None else {"legacy_metadata": value})
        return self.encoded({**metadata, "imported_from": {"format": FORMAT, **extra}},
                            "metadata", max_bytes)

    def encoded(self, value: Any, what: str, max_bytes: int) -> str:
        return str(self.checked(encode_json, value, what, max_bytes))


def to_timestamp(value: Any, fail: Any) -> str | None:
    """A legacy timestamp as ctxdb stores it: ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC.

    Accepts SQLite's ``datetime('now')`` text (UTC), ISO-8601 with or without an offset
    (text without one is taken as UTC, as SQLite writes it), and Unix epoch seconds.
    """
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(float(value), UTC)
        else:
            text = str(value).strip()
            moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z")
                                            else text)
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else \
                moment.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise fail(f"is not a timestamp: {value!r}") from None
    if not 1 <= moment.year <= 9999:
        raise fail(f"is out of range: {value!r}")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _project(row: _Row, max_bytes: int) -> dict[str, Any]:
    project_id = row.identifier("project_id")
    name = row.text("name").strip() or project_id
    return {
        "project_id": project_id,
        "name": row.checked(check_identifier, name[:200], "name"),
        "description": row.text("description")[:10_000],
        "total_story_points": row.integer("total_story_points"),
        "completed_story_points": row.integer("completed_story_points"),
        "metadata": row.metadata({}, max_bytes),
        "created_at": row.timestamp("created_at"),
        "updated_at": row.timestamp("updated_at"),
    }


def _phase(row: _Row, project_ids: set[str], max_bytes: int) -> dict[str, Any]:
    legacy_id = row.integer("phase_id", None)
    project_id = row.identifier("project_id")
    if project_id not in project_ids:
        raise row.fail(f"belongs to project {project_id!r}, which is not in the database")
    status = row.text("status", "pending")
    if status not in PHASE_STATUSES:
        raise row.fail(f"status must be one of {', '.join(sorted(PHASE_STATUSES))}, "
                       f"got {status!r}")
    number = row.integer("phase_number", None)
    if number is None:
        raise row.fail("has no phase_number")
    return {
        "legacy_phase_id": legacy_id,
        "project_id": project_id,
        "phase_number": number,
        "name": row.text("name").strip() or f"Phase {number}",
        "description": row.text("description"),
        "story_points": row.integer("story_points"),
        "status": status,
        "started_at": row.timestamp("started_at"),
        "completed_at": row.timestamp("completed_at"),
        "metadata": row.metadata({"phase_id": legacy_id}, max_bytes),
        "created_at": row.timestamp("created_at"),
    }


def _phase_ref(row: _Row, phase_ids: set[int | None]) -> int | None:
    legacy_phase = row.values["phase_id"]
    if legacy_phase is None:
        return None
    if legacy_phase not in phase_ids:
        raise row.fail(f"refers to phase {legacy_phase!r}, which is not in the database")
    return int(legacy_phase)


def _instance(row: _Row, project_ids: set[str], phase_ids: set[int | None],
              max_bytes: int) -> dict[str, Any]:
    project_id = row.identifier("project_id")
    if project_id not in project_ids:
        raise row.fail(f"belongs to project {project_id!r}, which is not in the database")
    status = row.text("status", "active")
    if status not in INSTANCE_STATUSES:
        raise row.fail(f"status must be one of {', '.join(sorted(INSTANCE_STATUSES))}, "
                       f"got {status!r}")
    last_heartbeat = row.timestamp("last_heartbeat")
    return {
        "instance_id": row.identifier("instance_id"),
        "project_id": project_id,
        "legacy_phase_id": _phase_ref(row, phase_ids),
        "hostname": row.text("hostname")[:4_096],
        "process_id": row.integer("process_id", None),
        "status": status,
        "current_token_usage": row.integer("current_token_usage"),
        "metadata": row.metadata({}, max_bytes),
        "started_at": row.timestamp("started_at"),
        "last_heartbeat": last_heartbeat,
        # The seed has no end time: an ended instance ended at its last heartbeat.
        "ended_at": last_heartbeat if status in ("completed", "crashed") else None,
    }


def _snapshot(row: _Row, project_ids: set[str], phase_ids: set[int | None],
              max_bytes: int) -> dict[str, Any]:
    snapshot_id = row.integer("snapshot_id", None)
    project_id = row.identifier("project_id")
    if project_id not in project_ids:
        raise row.fail(f"belongs to project {project_id!r}, which is not in the database")
    priority = row.text("priority")
    if priority not in PRIORITIES:
        raise row.fail(f"priority must be one of CRITICAL, HIGH, MEDIUM, LOW, got {priority!r}")
    sequence = row.integer("sequence_number", None)
    token_count = row.integer("token_count", None)
    if token_count is None:
        raise row.fail("has no token_count")
    content = row.json_value("content")
    return {
        "snapshot_id": snapshot_id,
        "project_id": project_id,
        "legacy_phase_id": _phase_ref(row, phase_ids),
        "sequence_number": sequence,
        "content_type": row.checked(check_identifier, row.text("content_type").strip()
                                    or "code", "content_type"),
        "priority": priority,
        "token_count": token_count,
        "content": row.encoded("" if content is None else content, "content", max_bytes),
        "metadata": row.metadata({"snapshot_id": snapshot_id, "sequence_number": sequence},
                                 max_bytes),
        "created_at": row.timestamp("created_at"),
        "idempotency_key": f"legacy:snapshot:{snapshot_id}",
    }
