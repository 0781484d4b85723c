"""A database built with the seed's own SQLite schema, for the legacy import tests.

The DDL is the seed's ``database/schema_sqlite.sql`` as its implementation guide gives it
(tables, indexes and the summary view); ``schema_version`` is not spelled out there, so it
has the usual shape (version, applied_at, description). The rows follow the guide's examples:
an e-commerce project of 1,300 story points with five phases, three instances launched with
``inst_YYYYMMDD_HHMMSS_<hex>`` ids, and JSON context stored with ``store_context``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

SEED_DDL = """
CREATE TABLE projects (
    project_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    total_story_points INTEGER DEFAULT 0,
    completed_story_points INTEGER DEFAULT 0,
    total_phases INTEGER DEFAULT 1,
    created_at TEXT DEFAULT (datetime('now')),
    updated_at TEXT DEFAULT (datetime('now')),
    metadata TEXT DEFAULT '{}',
    CHECK (total_story_points >= 0),
    CHECK (completed_story_points >= 0)
);
CREATE INDEX idx_projects_created ON projects(created_at DESC);

CREATE TABLE phases (
    phase_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    phase_number INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    story_points INTEGER DEFAULT 0,
    status TEXT DEFAULT 'pending',
    started_at TEXT,
    completed_at TEXT,
    metadata TEXT DEFAULT '{}',
    created_at TEXT DEFAULT (datetime('now')),
    UNIQUE(project_id, phase_number),
    CHECK (status IN ('pending', 'active', 'completed', 'blocked'))
);
CREATE INDEX idx_phases_project ON phases(project_id, phase_number);
CREATE INDEX idx_phases_status ON phases(status);

CREATE TABLE context_snapshots (
    snapshot_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    phase_id INTEGER REFERENCES phases(phase_id) ON DELETE SET NULL,
    sequence_number INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    priority TEXT NOT NULL,
    token_count INTEGER NOT NULL,
    content TEXT NOT NULL,
    metadata TEXT DEFAULT '{}',
    created_at TEXT DEFAULT (datetime('now')),
    CHECK (priority IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW'))
);
CREATE INDEX idx_snapshots_project_priority
    ON context_snapshots(project_id, priority, sequence_number);
CREATE INDEX idx_snapshots_phase ON context_snapshots(phase_id);
CREATE INDEX idx_snapshots_created ON context_snapshots(created_at DESC);

CREATE TABLE active_instances (
    instance_id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(project_id) ON DELETE CASCADE,
    phase_id INTEGER REFERENCES phases(phase_id) ON DELETE SET NULL,
    hostname TEXT,
    process_id INTEGER,
    started_at TEXT DEFAULT (datetime('now')),
    last_heartbeat TEXT DEFAULT (datetime('now')),
    status TEXT DEFAULT 'active',
    current_token_usage INTEGER DEFAULT 0,
    metadata TEXT DEFAULT '{}',
    CHECK (status IN ('active', 'idle', 'crashed', 'completed')),
    CHECK (current_token_usage >= 0 AND current_token_usage <= 200000)
);
CREATE INDEX idx_instances_project ON active_instances(project_id, status);
CREATE INDEX idx_instances_heartbeat ON active_instances(last_heartbeat);

CREATE TABLE schema_version (
    version INTEGER PRIMARY KEY,
    applied_at TEXT DEFAULT (datetime('now')),
    description TEXT
);
INSERT INTO schema_version (version, description) VALUES (1, 'Initial schema');

CREATE VIEW v_project_summary AS
SELECT
    p.project_id,
    p.name,
    p.total_story_points,
    p.completed_story_points,
    COUNT(DISTINCT ai.instance_id) as active_instances,
    COUNT(DISTINCT cs.snapshot_id) as total_snapshots,
    SUM(ai.current_token_usage) as total_tokens,
    p.created_at,
    p.updated_at
FROM projects p
LEFT JOIN active_instances ai ON p.project_id = ai.project_id AND ai.status = 'active'
LEFT JOIN context_snapshots cs ON p.project_id = cs.project_id
GROUP BY p.project_id;
"""

SHOP = "proj_20251119_120000_a1b2c3d4"
BLOG = "proj_20251119_130501_0f9e8d7c"
INSTANCES = ("inst_20251119_123456_abc123", "inst_20251119_123501_def456",
             "inst_20251119_124010_9a8b7c")
PHASES = ((1, "Foundation", 200, "completed"), (2, "Core Features", 300, "active"),
          (3, "Advanced Features", 400, "pending"), (4, "Optimization", 200, "pending"),
          (5, "Deployment", 200, "pending"))
# (project, phase number or None, content type, priority, content, created_at)
SNAPSHOTS: tuple[tuple[str, int | None, str, str, Any, str], ...] = (
    (SHOP, 1, "code", "CRITICAL", {"phase": 1, "task": "Setup database schema"},
     "2025-11-19 12:05:00"),
    (SHOP, 1, "code", "HIGH", {"phase": 1, "task": "Implement basic CRUD"},
     "2025-11-19 12:06:30"),
    (SHOP, None, "code", "HIGH", {"feature": "user_authentication", "status": "completed"},
     "2025-11-19 12:40:00"),
    (SHOP, 2, "decision", "CRITICAL",
     {"code": "def checkout(cart): ...", "decision": "Use factory pattern"},
     "2025-11-19 13:00:00"),
    (SHOP, 2, "note", "MEDIUM", {"note": "cart totals are cached for 60 s"},
     "2025-11-19 13:15:10"),
    (SHOP, None, "reference", "LOW", {"doc": "https://stripe.com/docs/api"},
     "2025-11-19 13:20:00"),
    (BLOG, None, "code", "HIGH", {"code": "def render(post): ...", "decision": "Jinja"},
     "2025-11-19 13:10:00"),
)


def build_seed_database(path: Path) -> dict[str, Any]:
    """Write a seed-schema database at ``path``; returns what a test checks against."""
    conn = sqlite3.connect(path)
    conn.executescript(SEED_DDL)
    conn.execute(
        "INSERT INTO projects (project_id, name, description, total_story_points, "
        "completed_story_points, total_phases, created_at, updated_at, metadata) "
        "VALUES (?, ?, ?, 1300, 200, 5, '2025-11-19 12:00:00', '2025-11-19 13:20:00', ?)",
        (SHOP, "E-Commerce Platform", "Large-scale e-commerce with 1300 story points",
         json.dumps({"owner": "team-a"})))
    conn.execute(
        "INSERT INTO projects (project_id, name, description, total_story_points, created_at,"
        " updated_at) VALUES (?, 'Blog', 'Static blog', 100, '2025-11-19 13:05:01', "
        "'2025-11-19 13:05:01')", (BLOG,))
    phase_ids = {}
    for number, name, points, status in PHASES:
        started = "2025-11-19 12:01:00" if status != "pending" else None
        completed = "2025-11-19 12:50:00" if status == "completed" else None
        cursor = conn.execute(
            "INSERT INTO phases (project_id, phase_number, name, story_points, status, "
            "started_at, completed_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
            "'2025-11-19 12:00:30')", (SHOP, number, name, points, status, started, completed))
        phase_ids[number] = cursor.lastrowid
    for index, (instance_id, status, usage) in enumerate(zip(
            INSTANCES, ("active", "completed", "crashed"), (95_000, 170_000, 12_345),
            strict=True)):
        conn.execute(
            "INSERT INTO active_instances (instance_id, project_id, phase_id, hostname, "
            "process_id, started_at, last_heartbeat, status, current_token_usage, metadata) "
            "VALUES (?, ?, ?, 'dev-laptop', ?, ?, ?, ?, ?, '{}')",
            (instance_id, SHOP, phase_ids[1 + index % 2], 4242 + index,
             f"2025-11-19 12:3{index}:00", f"2025-11-19 12:4{index}:15", status, usage))
    sequences: dict[str, int] = {}
    for project_id, phase, content_type, priority, content, created in SNAPSHOTS:
        sequences[project_id] = sequences.get(project_id, 0) + 1
        text = json.dumps(content)
        conn.execute(
            "INSERT INTO context_snapshots (project_id, phase_id, sequence_number, "
            "content_type, priority, token_count, content, metadata, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, '{}', ?)",
            (project_id, None if phase is None else phase_ids[phase], sequences[project_id],
             content_type, priority, len(text) // 4, text, created))
    conn.commit()
    conn.close()
    return {"phase_ids": phase_ids}
