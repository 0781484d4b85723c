"""Writing a legacy (seed-schema) database's rows, inside the import's one transaction.

What is kept: project and instance ids, names, story points, statuses, priorities, token
counts, content types, metadata (with ``imported_from`` added) and every timestamp. Phases
are matched by (project, phase number), since phase ids are numbers of the target database;
context snapshots become context items with the key ``legacy:snapshot:<snapshot_id>``.

Sequence numbers: a project's snapshots that are not imported yet keep their own numbers
when those are distinct and all above the project's last sequence number (always so for a
project the import creates); otherwise they are numbered after it, in their legacy order,
and the legacy number stays in the item's metadata. Either way the order is kept.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from ctxdb.errors import ConflictError, TooManyProjectsError
from ctxdb.importers.legacy import LegacyData
from ctxdb.importers.records import IMPORTED, UNCHANGED, ImportReport
from ctxdb.service.common import audit
from ctxdb.settings import Settings
from ctxdb.storage import Tx
from ctxdb.storage.bulk import hold_item_numbers, raise_item_numbers
from ctxdb.storage.dialect import LOCK_PROJECT_CREATION, POSTGRES

LEGACY_CLIENT = "api"  # the seed's instances were launched through its Python API


class LegacyWriter:
    def __init__(self, tx: Tx, settings: Settings, report: ImportReport, actor: str,
                 advance: Callable[[], None]) -> None:
        self.tx = tx
        self.settings = settings
        self.report = report
        self.actor = actor
        self.advance = advance
        self.phase_ids: dict[int | None, int] = {}
        self.changed: dict[str, Counter[str]] = defaultdict(Counter)

    def write(self, data: LegacyData) -> None:
        self.projects(data.projects)
        for phase in data.phases:
            self.phase(phase)
        for instance in data.instances:
            self.instance(instance)
        by_project: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for snapshot in data.snapshots:
            by_project[snapshot["project_id"]].append(snapshot)
        if self.tx.item_numbers_drawn and by_project:
            self.hold_item_numbers(sorted(by_project))
        renumbered = sum(self.snapshots(pid, rows) for pid, rows in by_project.items())
        for project_id, counts in sorted(self.changed.items()):
            audit(self.tx, self.actor, "import.legacy", "project", project_id, project_id,
                  source=data.path, dry_run=self.report.dry_run, **dict(counts))
        self.report.details.update(
            projects=[p["project_id"] for p in data.projects],
            schema_version=data.schema_versions, renumbered=renumbered)

    def projects(self, projects: list[dict[str, Any]]) -> None:
        tx = self.tx
        new = [p for p in projects if tx.one("get_project", project_id=p["project_id"]) is None]
        if new:
            tx.lock(LOCK_PROJECT_CREATION)
            self.check_project_room(len(new))
        fresh = {p["project_id"] for p in new}
        for project in projects:
            if project["project_id"] in fresh:
                tx.execute("insert_legacy_project", **project)
                self.changed[project["project_id"]]["projects"] += 1
            self.report.count("projects", IMPORTED if project["project_id"] in fresh
                              else UNCHANGED)
            self.advance()

    def check_project_room(self, new_projects: int) -> None:
        """Refuse an import that would take the active projects past ``max_projects``."""
        count = int(self.tx.value("count_active_projects"))
        limit = self.settings.max_projects
        if count + new_projects > limit:
            raise TooManyProjectsError(
                f"importing {new_projects} projects would make {count + new_projects}, over "
                f"the limit of {limit} (setting max_projects)", limit=limit)

    def phase(self, phase: dict[str, Any]) -> None:
        values = {k: v for k, v in phase.items() if k != "legacy_phase_id"}
        row = self.tx.one("phase_by_number", project_id=phase["project_id"],
                          phase_number=phase["phase_number"])
        if row is None:
            phase_id = self.tx.value("insert_legacy_phase", **values)
            self.changed[phase["project_id"]]["phases"] += 1
            self.report.count("phases", IMPORTED)
        else:
            phase_id = row["phase_id"]
            self.report.count("phases", UNCHANGED)
        self.phase_ids[phase["legacy_phase_id"]] = int(phase_id)
        self.advance()

    def instance(self, instance: dict[str, Any]) -> None:
        existing = self.tx.one("get_instance", instance_id=instance["instance_id"])
        if existing is not None:
            if existing["project_id"] != instance["project_id"]:
                raise ConflictError(
                    f"instance id {instance['instance_id']!r} is already taken by project "
                    f"{existing['project_id']!r}", instance_id=instance["instance_id"])
            self.report.count("instances", UNCHANGED)
        else:
            values = {k: v for k, v in instance.items() if k != "legacy_phase_id"}
            self.tx.execute(
                "insert_legacy_instance", **values, client=LEGACY_CLIENT,
                phase_id=self.phase_ids.get(instance["legacy_phase_id"]),
                context_window=max(self.settings.context_window,
                                   instance["current_token_usage"] or 0, 1))
            self.changed[instance["project_id"]]["instances"] += 1
            self.report.count("instances", IMPORTED)
        self.advance()

    def snapshots(self, project_id: str, rows: list[dict[str, Any]]) -> int:
        """Import one project's snapshots; returns how many were renumbered."""
        tx = self.tx
        pending = []
        for row in rows:
            if tx.one("item_by_key", project_id=project_id,
                      idempotency_key=row["idempotency_key"]) is None:
                pending.append(row)
            else:
                self.report.count("context_items", UNCHANGED)
                self.advance()
        if not pending:
            return 0
        if tx.item_numbers_drawn:  # numbers from a sequence (PostgreSQL's migration 0029)
            last = int(tx.value("highest_item_number", project_id=project_id))
        else:
            last = int(tx.value("project_next_sequence", project_id=project_id))
        numbers = [row["sequence_number"] for row in pending]
        verbatim = len(set(numbers)) == len(numbers) and all(
            n is not None and n > last for n in numbers)
        for offset, row in enumerate(pending, start=1):
            values = {k: v for k, v in row.items() if k not in ("legacy_phase_id",
                                                                "snapshot_id")}
            values["sequence_number"] = row["sequence_number"] if verbatim else last + offset
            values["phase_id"] = self.phase_ids.get(row["legacy_phase_id"])
            written = tx.value("insert_legacy_item", **values) is not None
            # Not written: a concurrent import of the same file stored the key first.
            self.report.count("context_items", IMPORTED if written else UNCHANGED)
            self.advance()
        highest = max(numbers) if verbatim else last + len(pending)
        tx.execute("raise_next_sequence", project_id=project_id, sequence_number=highest)
        if tx.item_numbers_drawn:  # later stores draw above them (held since hold_…)
            raise_item_numbers(tx)
        self.changed[project_id]["context_items"] += len(pending)
        return 0 if verbatim else len(pending)

    def hold_item_numbers(self, project_ids: list[str]) -> None:
        """Where stores draw numbers from the sequence: each project's item-number lock taken
        shared (a reader paging by number waits for this import's items), then the sequence
        held to the end of the transaction, so that no store draws a number this import
        gives: the locks in a store's order (its project's, then the sequence), all the
        projects' before the sequence, since a store waiting for the sequence holds its
        project's. The highest number of a project read after this is then final."""
        for project_id in project_ids:
            self.tx.value("hold_item_numbers", project_id=project_id)
        hold_item_numbers(self.tx, POSTGRES)  # the one dialect whose stores draw so
