#!/usr/bin/env python3
"""Simple single-project example."""

from ctxdb.compat import MultiProjectManager
from ctxdb.compat import TokenManager

# Create manager
manager = MultiProjectManager("ultrathink_context.db")

# Create project
project_id = manager.create_project(
    name="Simple Project",
    description="Basic example",
    total_story_points=100
)

# Launch instance
instance_id = manager.launch_instance(project_id)

# Store context
manager.store_context(
    project_id=project_id,
    content={"step": 1, "action": "Initialize"},
    priority="CRITICAL"
)

manager.store_context(
    project_id=project_id,
    content={"step": 2, "action": "Configure"},
    priority="HIGH"
)

# Check status
summaries = manager.get_project_summary()
for summary in summaries:
    if summary['project_id'] == project_id:
        print(f"Project: {summary['name']}")
        print(f"Instances: {summary['active_instances']}")
        print(f"Snapshots: {summary['total_snapshots']}")

manager.close()
