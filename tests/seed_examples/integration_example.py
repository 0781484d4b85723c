#!/usr/bin/env python3
"""Integration example: projects, instances, context and token usage through the seed API."""

from ctxdb.compat import MultiProjectManager, SQLiteContextLoader, TokenManager

DB_PATH = "ultrathink_context.db"
RULE = "=" * 80


def main() -> None:
    print(RULE)
    print("DATABASE-FIRST CONTEXT MANAGEMENT - INTEGRATION EXAMPLE")
    print(RULE)

    with MultiProjectManager(DB_PATH) as manager, SQLiteContextLoader(DB_PATH) as loader, \
            TokenManager(DB_PATH) as tokens:
        print("\n1. Creating a project...")
        project_id = manager.create_project(
            name="Example Integration Project",
            description="Shows the seed-compatible API end to end",
            total_story_points=100,
        )
        print(f"   ✅ Project created: {project_id}")

        print("\n2. Launching instances...")
        instance_ids = []
        for number in range(1, 4):
            instance_id = manager.launch_instance(project_id)
            instance_ids.append(instance_id)
            print(f"   ✅ Instance {number}: {instance_id}")
        running = manager.get_project_instances(project_id)
        print(f"\n   Total: {len(running)} instances for project {project_id}")

        print("\n3. Storing context...")
        snapshot_id = loader.store_context(
            project_id=project_id,
            content={"architecture": "database-first", "decision": "one service layer"},
            priority="CRITICAL",
            content_type="architecture",
        )
        print(f"   ✅ Context snapshot stored: ID {snapshot_id}")

        print("\n4. Checking token usage...")
        for instance_id in instance_ids:
            usage = tokens.check_token_usage(instance_id)
            print(f"   Instance {instance_id}: {usage['current_token_usage']:,} tokens "
                  f"({usage['percentage']:.1f}%)")

        print("\n5. Project summary:")
        for summary in manager.get_project_summary():
            if summary["project_id"] == project_id:
                print(f"   • {summary['name']}: {summary['active_instances']} instances, "
                      f"{summary['total_snapshots']} snapshots")

    print("\n" + RULE)
    print("✅ INTEGRATION EXAMPLE COMPLETED SUCCESSFULLY")
    print(RULE)


if __name__ == "__main__":
    main()
