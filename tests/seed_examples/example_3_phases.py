#!/usr/bin/env python3
"""Project with multiple phases."""

from ctxdb.compat import MultiProjectManager

manager = MultiProjectManager("ultrathink_context.db")

# Create project
project_id = manager.create_project(
    name="Phased Project",
    description="Large project with 5 phases",
    total_story_points=1300
)

# Create phases
phases = []
phase_data = [
    (1, "Foundation", 200),
    (2, "Core Features", 300),
    (3, "Advanced Features", 400),
    (4, "Optimization", 200),
    (5, "Deployment", 200)
]

for phase_number, name, story_points in phase_data:
    phase_id = manager.create_phase(
        project_id=project_id,
        phase_number=phase_number,
        name=name,
        story_points=story_points
    )
    phases.append(phase_id)
    print(f"✅ Phase {phase_number}: {name} ({story_points} SP)")

# Launch instance for phase 1
instance_id = manager.launch_instance(project_id, phase_id=phases[0])
print(f"\n✅ Instance launched for Phase 1: {instance_id}")

# Store context for phase 1
manager.store_context(
    project_id=project_id,
    content={"phase": 1, "task": "Setup database schema"},
    priority="CRITICAL",
    phase_id=phases[0]
)

manager.store_context(
    project_id=project_id,
    content={"phase": 1, "task": "Implement basic CRUD"},
    priority="HIGH",
    phase_id=phases[0]
)

# Later: Move to phase 2
instance_id_phase2 = manager.launch_instance(project_id, phase_id=phases[1])
print(f"✅ Instance launched for Phase 2: {instance_id_phase2}")

manager.close()
