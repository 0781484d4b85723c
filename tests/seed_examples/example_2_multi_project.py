#!/usr/bin/env python3
"""Multi-project with automatic token management."""

from ctxdb.compat import MultiProjectManager
from ctxdb.compat import TokenManager

# Initialize managers
project_mgr = MultiProjectManager("ultrathink_context.db")
token_mgr = TokenManager("ultrathink_context.db")

# Create 3 projects
projects = []
for i in range(1, 4):
    project_id = project_mgr.create_project(
        name=f"Project {i}",
        description=f"Multi-project example {i}",
        total_story_points=500
    )
    projects.append(project_id)
    print(f"✅ Created: {project_id}")

# Launch 2 instances per project (6 total)
instances = []
for project_id in projects:
    for j in range(1, 3):
        instance_id = project_mgr.launch_instance(project_id)
        instances.append(instance_id)
        print(f"✅ Launched: {instance_id}")

# Simulate token usage and auto-management
for instance_id in instances:
    # Simulate 90% token usage
    token_mgr.update_token_usage(instance_id, 180000)

    # Auto-manage (should trigger clear+reload)
    result = token_mgr.auto_manage_tokens(instance_id, threshold=0.85)
    if result:
        print(f"🔄 {instance_id}: {result['tokens_before']:,} → {result['tokens_after']:,} tokens")

# Get overall status
all_usage = token_mgr.get_all_instance_usage()
print(f"\n📊 Total instances: {all_usage['total_instances']}")
print(f"📊 Total tokens: {all_usage['total_tokens_used']:,}")
print(f"📊 Average usage: {all_usage['average_usage']:,.0f}")

project_mgr.close()
token_mgr.close()
