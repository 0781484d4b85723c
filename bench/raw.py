"""The baselines: the same logical work written directly against the database drivers.

Both baselines use the settings ctxdb uses (SQLite: WAL, ``synchronous=FULL``, the same busy
timeout, ``foreign_keys=ON``, explicit transactions; PostgreSQL: ``synchronous_commit=on``,
the same server and database) and the same tables, and they return equivalent Python values:
dicts per item with the JSON content parsed. They do what a careful programmer would write by
hand for one purpose, with none of ctxdb's checks (no idempotency lookup, no audit row, no
project validation): that is the cost ctxdb's ratio is measured against.

``store_audited`` is the exception, kept apart: the same durable store written by hand with
the statements the rules require of ctxdb (the per-project sequence number, the insert with
its idempotency key, the audit row, and on PostgreSQL the transaction id read with BEGIN so a
lost COMMIT answer can be looked up). Measured against it, ctxdb's ratio is the cost of the
library itself; measured against ``store``, it also includes the cost of those guarantees.

Memories: ``memory_put`` is a compare-and-set write as a careful programmer makes it by hand
(the version check in the ``UPDATE``'s ``WHERE``, the history row), ``memory_get`` one
``SELECT`` of the live row. ``search`` is the FTS5 (PostgreSQL: ``tsquery``) query over the
same index with the engine's own snippet function.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ctxdb.domain.tokens import estimate_tokens

COLUMNS = ("item_id, project_id, phase_id, sequence_number, content_type, priority, "
           "token_count, content, metadata, created_by, created_at")
TIERS = ("HIGH", "MEDIUM", "LOW")
MAX_SKIPS = 64
_SQLITE_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
_ITEM_COLUMNS = ("project_id, sequence_number, content_type, priority, token_count, content, "
                 "metadata, idempotency_key, created_at")
MEMORY_COLUMNS = ("memory_id, project_id, namespace, key, memory_type, version, value, "
                  "created_by, updated_by, created_at, updated_at, expires_at, deleted_at")
HIT_COLUMNS = ("doc_id", "kind", "item_id", "memory_id", "event_id", "score", "snippet")


class VersionConflict(Exception):
    """The raw compare-and-set found another version."""


def encoded(content: Any) -> tuple[str, int]:
    """What any writer must do with an item: serialize it and count its tokens."""
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return text, estimate_tokens(text)


def audit_details(priority: str, sequence: int, tokens: int) -> str:
    """The details ctxdb's audit row of a store holds."""
    return json.dumps({"priority": priority, "sequence_number": sequence, "token_count": tokens},
                      separators=(",", ":"))


def memory_audit_details(namespace: str, key: str, version: int, expected: int) -> str:
    """The details ctxdb's audit row of a memory put holds."""
    return json.dumps({"namespace": namespace, "key": key, "version": version,
                       "expected_version": expected, "memory_type": "semantic"},
                      separators=(",", ":"))


def walk_pack(critical: list[dict[str, Any]], tiers: Iterable[Iterator[dict[str, Any]]],
              budget: int) -> list[dict[str, Any]]:
    """CRITICAL, then each tier newest first, skipping what does not fit, stopping when full."""
    items = list(critical)
    used = sum(item["token_count"] for item in items)
    misses = 0
    for tier in tiers:
        for item in tier:
            if item["token_count"] <= budget - used:
                items.append(item)
                used += item["token_count"]
                misses = 0
            else:
                misses += 1
            if used >= budget or misses >= MAX_SKIPS:
                return items
    return items


class RawSQLite:
    def __init__(self, path: Path, busy_timeout_ms: int) -> None:
        self.conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000,
                                    isolation_level=None)
        self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("PRAGMA foreign_keys = ON")

    def close(self) -> None:
        self.conn.close()

    def store(self, project_id: str, content: Any, priority: str, sequence: int, key: str) -> None:
        text, tokens = encoded(content)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(
                "INSERT INTO context_items (project_id, sequence_number, content_type, priority,"
                " token_count, content, metadata, idempotency_key, created_at) VALUES "
                f"(?, ?, 'code', ?, ?, ?, '{{}}', ?, {_SQLITE_NOW})",
                (project_id, sequence, priority, tokens, text, key))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def store_audited(self, project_id: str, content: Any, priority: str, key: str,
                      actor: str) -> None:
        text, tokens = encoded(content)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            sequence = self.conn.execute(
                "UPDATE projects SET next_sequence = next_sequence + 1, updated_at = "
                f"{_SQLITE_NOW} WHERE project_id = ? AND status = 'active' "
                "RETURNING next_sequence", (project_id,)).fetchone()[0]
            item_id = self.conn.execute(
                f"INSERT INTO context_items ({_ITEM_COLUMNS}) VALUES "
                f"(?, ?, 'code', ?, ?, ?, '{{}}', ?, {_SQLITE_NOW}) "
                "ON CONFLICT (project_id, idempotency_key) DO NOTHING RETURNING item_id",
                (project_id, sequence, priority, tokens, text, key)).fetchone()[0]
            self.conn.execute(
                "INSERT INTO audit_log (occurred_at, actor, action, entity_type, entity_id, "
                f"project_id, details) VALUES ({_SQLITE_NOW}, ?, 'context.store', "
                "'context_item', ?, ?, ?)",
                (actor, str(item_id), project_id, audit_details(priority, sequence, tokens)))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def _rows(self, sql: str, params: tuple[Any, ...]) -> Iterator[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [column[0] for column in cursor.description]
        try:
            for row in cursor:
                item = dict(zip(names, row, strict=True))
                item["content"] = json.loads(item["content"])
                item["metadata"] = json.loads(item["metadata"])
                yield item
        finally:
            cursor.close()

    def load_critical(self, project_id: str) -> list[dict[str, Any]]:
        return list(self._rows(
            f"SELECT {COLUMNS} FROM context_items WHERE project_id = ? AND priority = "
            "'CRITICAL' AND state = 'active' ORDER BY sequence_number", (project_id,)))

    def register_and_load_critical(self, instance_id: str, project_id: str) -> list[Any]:
        """The write ctxdb's load_for_instance does for a known instance, then the read."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(
                f"UPDATE instances SET last_heartbeat = {_SQLITE_NOW}, status = 'active', "
                "ended_at = NULL WHERE instance_id = ?", (instance_id,))
            items = self.load_critical(project_id)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return items

    def load_full(self, project_id: str) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {p: [] for p in ("CRITICAL", *TIERS)}
        for item in self._rows(f"SELECT {COLUMNS} FROM context_items WHERE project_id = ? "
                               "AND state = 'active' ORDER BY sequence_number", (project_id,)):
            grouped[item["priority"]].append(item)
        return grouped

    def pack(self, project_id: str, budget: int) -> list[dict[str, Any]]:
        self.conn.execute("BEGIN")  # one snapshot, as ctxdb reads it
        tiers = [self._rows(  # generators: each query starts when the walk reaches it
            f"SELECT {COLUMNS} FROM context_items WHERE project_id = ? AND priority = ? "
            "AND state = 'active' ORDER BY sequence_number DESC", (project_id, priority))
            for priority in TIERS]
        try:
            return walk_pack(self.load_critical(project_id), tiers, budget)
        finally:
            for tier in tiers:
                tier.close()
            self.conn.execute("COMMIT")

    def memory_put(self, project_id: str, namespace: str, key: str, value: Any,
                   expected_version: int, actor: str, audited: bool = False) -> int:
        """Compare-and-set: the new version, or ``VersionConflict``; one transaction (with
        ``audited``, also the audit row ctxdb writes: its statements by hand)."""
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            row = self.conn.execute(
                f"UPDATE memories SET value = ?, version = version + 1, updated_by = ?, "
                f"updated_at = {_SQLITE_NOW}, expires_at = NULL WHERE project_id = ? "
                "AND namespace = ? AND key = ? AND version = ? AND deleted_at IS NULL "
                "RETURNING memory_id, version",
                (text, actor, project_id, namespace, key, expected_version)).fetchone()
            if row is None:
                raise VersionConflict(f"{namespace}/{key} is not at {expected_version}")
            self.conn.execute(
                "INSERT INTO memory_versions (memory_id, version, op, memory_type, value, "
                f"written_by, written_at) VALUES (?, ?, 'put', 'semantic', ?, ?, {_SQLITE_NOW})",
                (row[0], row[1], text, actor))
            if audited:
                self.conn.execute(
                    "INSERT INTO audit_log (occurred_at, actor, action, entity_type, entity_id, "
                    f"project_id, details) VALUES ({_SQLITE_NOW}, ?, 'memory.put', 'memory', ?, "
                    "?, ?)", (actor, row[0], project_id,
                              memory_audit_details(namespace, key, row[1], expected_version)))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return int(row[1])

    def memory_get(self, project_id: str, namespace: str, key: str) -> dict[str, Any] | None:
        cursor = self.conn.execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories WHERE project_id = ? AND namespace = ? "
            f"AND key = ? AND deleted_at IS NULL AND (expires_at IS NULL OR expires_at > "
            f"{_SQLITE_NOW})", (project_id, namespace, key))
        row = cursor.fetchone()
        if row is None:
            return None
        memory = dict(zip([column[0] for column in cursor.description], row, strict=True))
        memory["value"] = json.loads(memory["value"])
        return memory

    def search(self, project_id: str, match: str, limit: int) -> list[dict[str, Any]]:
        """The best matches with FTS5's own snippet (the query already in FTS5 syntax)."""
        cursor = self.conn.execute(
            "SELECT d.doc_id, d.kind, d.item_id, d.memory_id, d.event_id, "
            "-bm25(search_fts) AS score, "
            "snippet(search_fts, 0, '**', '**', '…', 24) AS snippet "
            "FROM search_fts JOIN search_documents d ON d.doc_id = search_fts.rowid "
            "WHERE search_fts MATCH ? AND d.project_id = ? "
            "ORDER BY bm25(search_fts), d.occurred_at DESC, d.doc_id DESC LIMIT ?",
            (match, project_id, limit))
        return [dict(zip(HIT_COLUMNS, row, strict=True)) for row in cursor]


class RawPostgres:
    """psycopg with its defaults: rows as dicts, ``jsonb`` parsed by the driver."""

    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg.rows import dict_row

        self.conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        self.conn.execute("SET TIME ZONE 'UTC'")
        self.conn.execute("SET synchronous_commit = on")

    def close(self) -> None:
        self.conn.close()

    def store(self, project_id: str, content: Any, priority: str, sequence: int, key: str) -> None:
        text, tokens = encoded(content)
        with self.conn.transaction():  # BEGIN; INSERT; COMMIT
            self.conn.execute(
                "INSERT INTO context_items (project_id, sequence_number, content_type, priority,"
                " token_count, content, metadata, idempotency_key, created_at) VALUES "
                "(%s, %s, 'code', %s, %s, %s, '{}', %s, now())",
                (project_id, sequence, priority, tokens, text, key))

    def store_audited(self, project_id: str, content: Any, priority: str, key: str,
                      actor: str) -> None:
        text, tokens = encoded(content)
        # BEGIN and the transaction id in one message, as ctxdb does (autocommit connection).
        begun = self.conn.execute(b"BEGIN; SELECT txid_current()")
        try:
            begun.nextset()
            begun.fetchone()
            sequence = self.conn.execute(
                "UPDATE projects SET next_sequence = next_sequence + 1, updated_at = now() "
                "WHERE project_id = %s AND status = 'active' RETURNING next_sequence",
                (project_id,)).fetchone()["next_sequence"]
            item_id = self.conn.execute(
                f"INSERT INTO context_items ({_ITEM_COLUMNS}) VALUES "
                "(%s, %s, 'code', %s, %s, %s, '{}', %s, now()) "
                "ON CONFLICT (project_id, idempotency_key) DO NOTHING RETURNING item_id",
                (project_id, sequence, priority, tokens, text, key)).fetchone()["item_id"]
            self.conn.execute(
                "INSERT INTO audit_log (occurred_at, actor, action, entity_type, entity_id, "
                "project_id, details) VALUES (now(), %s, 'context.store', 'context_item', "
                "%s, %s, %s)",
                (actor, str(item_id), project_id, audit_details(priority, sequence, tokens)))
            self.conn.execute(b"COMMIT")
        except BaseException:
            self.conn.execute(b"ROLLBACK")
            raise

    def load_critical(self, project_id: str) -> list[dict[str, Any]]:
        return self.conn.execute(
            f"SELECT {COLUMNS} FROM context_items WHERE project_id = %s AND priority = "
            "'CRITICAL' AND state = 'active' ORDER BY sequence_number", (project_id,)).fetchall()

    def register_and_load_critical(self, instance_id: str, project_id: str) -> list[Any]:
        with self.conn.transaction():
            self.conn.execute(
                "UPDATE instances SET last_heartbeat = now(), status = 'active', "
                "ended_at = NULL WHERE instance_id = %s", (instance_id,))
            return self.load_critical(project_id)

    def load_full(self, project_id: str) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {p: [] for p in ("CRITICAL", *TIERS)}
        for item in self.conn.execute(
                f"SELECT {COLUMNS} FROM context_items WHERE project_id = %s "
                "AND state = 'active' ORDER BY sequence_number", (project_id,)):
            grouped[item["priority"]].append(item)
        return grouped

    def _tier(self, project_id: str, priority: str) -> Iterator[dict[str, Any]]:
        # A server-side cursor, so that rows past the budget are never sent (as ctxdb does).
        with self.conn.cursor(name=f"raw_tier_{priority.lower()}") as cursor:
            cursor.itersize = 256
            cursor.execute(
                f"SELECT {COLUMNS} FROM context_items WHERE project_id = %s AND priority = %s "
                "AND state = 'active' ORDER BY sequence_number DESC", (project_id, priority))
            yield from cursor

    def pack(self, project_id: str, budget: int) -> list[dict[str, Any]]:
        with self.conn.transaction():
            tiers = [self._tier(project_id, priority) for priority in TIERS]
            try:
                return walk_pack(self.load_critical(project_id), tiers, budget)
            finally:
                for tier in tiers:
                    tier.close()

    def memory_put(self, project_id: str, namespace: str, key: str, value: Any,
                   expected_version: int, actor: str, audited: bool = False) -> int:
        """Compare-and-set: the new version, or ``VersionConflict``; one transaction (with
        ``audited``, also the audit row and the transaction id ctxdb reads with BEGIN)."""
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        with self.conn.transaction():  # BEGIN; UPDATE; INSERT; COMMIT
            if audited:
                self.conn.execute("SELECT txid_current()")
            row = self.conn.execute(
                "UPDATE memories SET value = %s, version = version + 1, updated_by = %s, "
                "updated_at = now(), expires_at = NULL WHERE project_id = %s AND namespace = %s "
                "AND key = %s AND version = %s AND deleted_at IS NULL "
                "RETURNING memory_id, version",
                (text, actor, project_id, namespace, key, expected_version)).fetchone()
            if row is None:
                raise VersionConflict(f"{namespace}/{key} is not at {expected_version}")
            self.conn.execute(
                "INSERT INTO memory_versions (memory_id, version, op, memory_type, value, "
                "written_by, written_at) VALUES (%s, %s, 'put', 'semantic', %s, %s, now())",
                (row["memory_id"], row["version"], text, actor))
            if audited:
                self.conn.execute(
                    "INSERT INTO audit_log (occurred_at, actor, action, entity_type, entity_id, "
                    "project_id, details) VALUES (now(), %s, 'memory.put', 'memory', %s, %s, %s)",
                    (actor, row["memory_id"], project_id,
                     memory_audit_details(namespace, key, row["version"], expected_version)))
        return int(row["version"])

    def memory_get(self, project_id: str, namespace: str, key: str) -> dict[str, Any] | None:
        row: dict[str, Any] | None = self.conn.execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories WHERE project_id = %s AND namespace = %s "
            "AND key = %s AND deleted_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
            (project_id, namespace, key)).fetchone()
        return row

    def search(self, project_id: str, match: str, limit: int) -> list[dict[str, Any]]:
        """The best matches with ts_headline's snippet (the query in to_tsquery syntax)."""
        rows: list[dict[str, Any]] = self.conn.execute(
            "SELECT d.doc_id, d.kind, d.item_id, d.memory_id, d.event_id, "
            "ts_rank(d.search_vector, to_tsquery('simple', %(q)s), 1) AS score, "
            "ts_headline('simple', d.body, to_tsquery('simple', %(q)s), "
            "'StartSel=**, StopSel=**, MaxWords=24, MinWords=12') AS snippet "
            "FROM search_documents d WHERE d.search_vector @@ to_tsquery('simple', %(q)s) "
            "AND d.project_id = %(p)s ORDER BY score DESC, d.occurred_at DESC, d.doc_id DESC "
            "LIMIT %(n)s", {"q": match, "p": project_id, "n": limit}).fetchall()
        return rows
