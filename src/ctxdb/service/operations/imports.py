"""``ctxdb import``: a project's file-based memory, and databases of the seed's schema.

Each import reads its source first (``ctxdb.importers``; a refusal such as an unsafe path
happens there, before any write), then writes everything in ONE transaction: a failure
writes nothing, and a dry run runs the same transaction and rolls it back, so it reports
exactly what the import would do. Imports are idempotent: running one again adds nothing.
See docs/imports.md for the mappings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ctxdb.domain.agents import RepoIdentity
from ctxdb.domain.checks import check_namespace
from ctxdb.domain.tokens import estimate_tokens
from ctxdb.domain.validation import check_identifier, encode_json
from ctxdb.domain.vocabulary import MemoryType
from ctxdb.errors import CtxdbError, ValidationError
from ctxdb.importers.records import (
    IMPORTED,
    SKIPPED,
    UNCHANGED,
    UPDATED,
    FilesPlan,
    ImportReport,
    ItemRecord,
    MemoryRecord,
    Skip,
    key_slot_and_digest,
)
from ctxdb.progress import NoProgress, Progress
from ctxdb.service.common import Service, audit
from ctxdb.service.usecases.memories import MemoryService
from ctxdb.service.usecases.projects import require_project
from ctxdb.service.usecases.repo_projects import project_for_repo
from ctxdb.settings import Settings
from ctxdb.storage import Storage, Tx


class _DryRun(Exception):
    """Raised at the end of a dry run's transaction to roll it back; carries the report."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__("dry run")
        self.report = report


class ImportService(Service):
    def __init__(self, storage: Storage, settings: Settings, memories: MemoryService) -> None:
        super().__init__(storage, settings)
        self.memories = memories

    def _run(self, unit: Callable[[Tx], ImportReport], dry_run: bool) -> dict[str, Any]:
        try:
            report = self.storage.write(unit)
        except _DryRun as finished:
            return finished.report.to_dict()
        self.storage.health().analyze_after_load()
        return report.to_dict()

    # --- files -----------------------------------------------------------------------------

    def import_files(
        self,
        path: str,
        *,
        project_id: str | None = None,
        repo: RepoIdentity | None = None,
        dry_run: bool = False,
        include_instructions: bool = False,
        progress: Progress | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Import the file-based memory under ``path`` into a project.

        The project is ``project_id``, else the one of ``repo`` (created on first use, as
        the agent hooks do). Returns the report: counts per kind and outcome, skipped files
        with reasons. The instruction files clients load by themselves (CLAUDE.md,
        AGENTS.md, GEMINI.md, .claude/rules/) are skipped in a folder unless
        ``include_instructions``.
        """
        from ctxdb.importers.files import scan

        if project_id is not None:
            check_identifier(project_id, "project_id")
        elif repo is None:
            raise ValidationError("give the project to import into, or the repository whose "
                                  "project it is")
        else:
            repo = repo.checked()
        actor = check_identifier(actor or self.settings.actor, "actor")
        # Progress: "read" per file read (total unknown), then "write" per record written.
        report_progress = progress or NoProgress()
        plan = scan(path, progress=report_progress, include_instructions=include_instructions)
        items, memories, refused = self._prepared(plan)
        total = len(items) + len(memories)

        def unit(tx: Tx) -> ImportReport:
            report = ImportReport(source=plan.root, dry_run=dry_run)
            report_progress.start("write", total)
            pid = report.project_id = self._target_project(tx, project_id, repo, actor)
            for skip in plan.skipped + refused:
                report.skip(skip)
            live = _live_imported_items(tx, pid)
            for item, values in items:
                report.count(item.kind, self._write_item(tx, pid, item, values, live, actor))
                report_progress.advance(1)
            for memory, value_json in memories:
                outcome = self._write_memory(tx, pid, memory, value_json, actor, report)
                if outcome is not None:
                    report.count(memory.kind, outcome)
                report_progress.advance(1)
            report.details["files_read"] = plan.files_read
            audit(tx, actor, "import.files", "project", pid, pid, source=plan.root,
                  dry_run=dry_run, totals={o: report.total(o) for o in
                                           (IMPORTED, UPDATED, UNCHANGED, SKIPPED)})
            if dry_run:
                raise _DryRun(report)
            return report

        return self._run(unit, dry_run)

    def _target_project(self, tx: Tx, project_id: str | None, repo: RepoIdentity | None,
                        actor: str) -> str:
        if project_id is not None:
            return str(require_project(tx, project_id, active=True)["project_id"])
        assert repo is not None  # checked before the transaction
        return str(project_for_repo(tx, repo, self.settings, actor)["project_id"])

    def _prepared(self, plan: FilesPlan) -> tuple[
            list[tuple[ItemRecord, dict[str, Any]]], list[tuple[MemoryRecord, str]],
            list[Skip]]:
        """Every record checked and encoded before the transaction; a record that can never
        be stored (too large, a bad key) is skipped with the reason instead."""
        items: list[tuple[ItemRecord, dict[str, Any]]] = []
        memories: list[tuple[MemoryRecord, str]] = []
        refused: list[Skip] = []
        limit = self.settings.max_content_bytes
        for item in plan.items:
            try:
                content = encode_json(item.content, "content", limit)
                items.append((item, {
                    "content": content,
                    "metadata": encode_json(item.metadata, "metadata", limit),
                    "priority": item.priority,
                    "content_type": check_identifier(item.content_type, "content_type"),
                    "token_count": estimate_tokens(content) if item.token_count is None
                    else item.token_count,
                }))
            except CtxdbError as exc:
                refused.append(Skip(item.kind, item.source, f"{item.slot}: {exc.message}"))
        for memory in plan.memories:
            try:
                check_namespace(memory.namespace)
                check_identifier(memory.key, "key")
                memories.append((memory, encode_json(memory.value, "memory value", limit)))
            except CtxdbError as exc:
                refused.append(Skip(memory.kind, memory.source,
                                    f"{memory.namespace}/{memory.key}: {exc.message}"))
        return items, memories, refused

    def _write_item(self, tx: Tx, project_id: str, item: ItemRecord, values: dict[str, Any],
                    live: dict[str, list[tuple[int, str]]], actor: str) -> str:
        """Insert the item unless its slot already holds this content; supersede the slot's
        older content. Returns the outcome."""
        current = live.get(item.slot_prefix, [])
        if any(digest == item.content_digest for _, digest in current):
            return UNCHANGED
        replaces = current[-1][0] if current else None
        key = item.idempotency_key(replaces)
        if tx.one("item_by_key", project_id=project_id, idempotency_key=key) is not None:
            return UNCHANGED  # imported before, then superseded or deleted by hand
        # The number as a store draws it: from the sequence where the schema has one.
        sequence = tx.value("draw_item_number" if tx.item_numbers_drawn else "next_sequence",
                            project_id=project_id)
        item_id = tx.value("insert_item", project_id=project_id, phase_id=None,
                           sequence_number=sequence, created_by=None, idempotency_key=key,
                           **values)
        if item_id is None:  # a concurrent import stored the same key first
            return UNCHANGED
        audit(tx, actor, "context.store", "context_item", item_id, project_id,
              priority=item.priority, sequence_number=sequence,
              token_count=values["token_count"], source="import", path=item.source)
        for old_id, _ in current:
            tx.execute("supersede_item", item_id=old_id, superseded_by=item_id)
            audit(tx, actor, "context.supersede", "context_item", old_id, project_id,
                  superseded_by=item_id, source="import", path=item.source)
        live[item.slot_prefix] = [(int(item_id), item.content_digest)]
        return UPDATED if current else IMPORTED

    def _write_memory(self, tx: Tx, project_id: str, memory: MemoryRecord, value_json: str,
                      actor: str, report: ImportReport) -> str | None:
        """Write a new version unless the live memory already holds this value."""
        row = tx.one("get_memory", project_id=project_id, namespace=memory.namespace,
                     key=memory.key)
        exists = row is not None and not row["expired"]
        if exists and row is not None:
            if row["deleted_at"] is not None:
                report.skip(Skip(memory.kind, memory.source,
                                 f"{memory.namespace}/{memory.key} was deleted in ctxdb; "
                                 "not imported again"))
                return None
            stored = row["value"]
            if isinstance(stored, str):
                stored = json.loads(stored)
            if stored == memory.value and row["memory_type"] == memory.memory_type:
                return UNCHANGED
        self.memories.put_in_tx(tx, project_id, memory.namespace, memory.key, value_json,
                                kind=MemoryType(memory.memory_type), expected_version=None,
                                ttl_seconds=None, actor=actor)
        return UPDATED if exists else IMPORTED

    # --- legacy databases ------------------------------------------------------------------

    def import_legacy(
        self,
        path: str,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Import a database of the seed's SQLite schema, keeping its ids, priorities,
        sequence order and timestamps (see docs/imports.md)."""
        from ctxdb.importers.legacy import read_legacy

        actor = check_identifier(actor or self.settings.actor, "actor")
        report_progress = progress or NoProgress()
        data = read_legacy(path, self.settings.max_content_bytes)
        total = len(data.projects) + len(data.phases) + len(data.instances) + \
            len(data.snapshots)

        def unit(tx: Tx) -> ImportReport:
            from ctxdb.service.operations.legacy_writer import LegacyWriter

            report = ImportReport(source=data.path, dry_run=dry_run)
            report_progress.start("write", total)
            writer = LegacyWriter(tx, self.settings, report, actor,
                                  lambda: report_progress.advance(1))
            writer.write(data)
            if dry_run:
                raise _DryRun(report)
            return report

        return self._run(unit, dry_run)


def _live_imported_items(tx: Tx, project_id: str) -> dict[str, list[tuple[int, str]]]:
    """slot prefix → [(item id, content digest)] of the project's live imported items."""
    live: dict[str, list[tuple[int, str]]] = {}
    for row in tx.all("imported_items", project_id=project_id):
        parsed = key_slot_and_digest(row["idempotency_key"])
        if parsed is not None:
            live.setdefault(parsed[0], []).append((int(row["item_id"]), parsed[1]))
    return live

