"""Versioned memories: (project, namespace path, key) -> a JSON value, with compare-and-set.

A namespace path is one or more segments of ``[A-Za-z0-9_.-]`` joined by ``:`` (``user:prefs``,
``app:config:x``); listing by the prefix ``user`` finds ``user`` and ``user:prefs`` but not
``username``. Every write makes a new version (version 1 is the first put; a delete is a
tombstone version) and keeps the old ones in the history until the memory is purged.

Compare-and-set: ``expected_version`` is the version the writer read (``MUST_NOT_EXIST``, 0,
for "there is no live memory under this key"); a writer whose expectation is stale gets a
:class:`VersionConflictError` carrying the current version, and nothing changes. ``None``
writes unconditionally. Deleted and expired memories are not live: their version to expect is
``MUST_NOT_EXIST``. An expired memory is invisible to every read, and is removed by
:meth:`MemoryService.sweep_expired` or by the next put of its key (which starts again at
version 1).
"""

from __future__ import annotations

import builtins
import functools
from typing import Any

from ctxdb.domain.checks import check_expected_version, check_namespace, check_ttl
from ctxdb.domain.ids import new_idempotency_key
from ctxdb.domain.validation import (
    MAX_INTEGER,
    check_choice,
    check_identifier,
    check_limit,
    check_non_negative_int,
    encode_json,
)
from ctxdb.domain.vocabulary import MemoryType
from ctxdb.errors import (
    InvalidTransitionError,
    MemoryNotFoundError,
    ProjectNotFoundError,
    ValidationError,
    VersionConflictError,
)
from ctxdb.service.common import Service, audit
from ctxdb.service.usecases.memory_document import decoded, put_live, record_put
from ctxdb.service.usecases.projects import require_project
from ctxdb.storage import Row, Tx

MUST_NOT_EXIST = 0
MAX_PAGE = 1_000


def new_memory_id() -> str:
    return f"mem_{new_idempotency_key()}"


def _current_version(row: Row | None) -> int | None:
    """The version a writer must expect: that of the live memory, or ``None`` if none."""
    if row is None or row["deleted_at"] is not None or row["expired"]:
        return None
    return int(row["version"])


class MemoryService(Service):
    def default_ttl(self, memory_type: MemoryType) -> int | None:
        """The lifecycle policy: seconds until a memory of this type expires, or ``None``."""
        seconds = int(getattr(self.settings, f"memory_ttl_{memory_type.value}"))
        return seconds or None

    @functools.cached_property
    def _policy_ttls(self) -> dict[str, int | None]:
        """update_live_memory's ``ttl_<type>`` parameters under the lifecycle policy, made
        once: the settings of a service never change, and each put passes them."""
        return {f"ttl_{kind.value}": self.default_ttl(kind) for kind in MemoryType}

    # --- writes ----------------------------------------------------------------------------

    def put(
        self,
        project_id: str,
        namespace: str,
        key: str,
        value: Any,
        *,
        memory_type: str | None = None,
        expected_version: int | None = None,
        ttl_seconds: int | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Write a new version; returns the memory. See the module docstring for CAS.

        ``memory_type`` defaults to the memory's current type (semantic for a new one), and
        ``ttl_seconds`` to that type's lifecycle policy; each put sets the expiry anew.
        """
        check_identifier(project_id, "project_id")
        check_namespace(namespace)
        check_identifier(key, "key")
        kind = None if memory_type is None else check_choice(memory_type, MemoryType, "memory type")
        expected = check_expected_version(expected_version)
        ttl = check_ttl(ttl_seconds)
        value_json = encode_json(value, "memory value", self.settings.max_content_bytes)
        actor = check_identifier(actor or self.settings.actor, "actor")

        # The common case in one statement (see update_live_memory); an update whose version
        # did not match changes nothing, and the general path below then says why.
        fast = None if expected == MUST_NOT_EXIST else {
            "project_id": project_id, "namespace": namespace, "key": key, "actor": actor,
            "value": value_json, "memory_type": None if kind is None else kind.value,
            "expected_version": expected, "any_version": int(expected is None),
            **(self._policy_ttls if ttl is None else dict.fromkeys(self._policy_ttls, ttl))}

        def unit(tx: Tx) -> dict[str, Any]:
            # Below the schema where a put claims its document (SQLite's 0024, PostgreSQL's
            # 0026), the general path.
            if fast is not None and tx.memory_documents_once:
                put = put_live(tx, fast)
                if put is not None:
                    return put
            row = self._lock(tx, project_id, namespace, key, actor)
            if row is None:  # a new key: the project is checked by its own statement
                require_project(tx, project_id, active=True)
            elif row["project_status"] != "active":
                raise InvalidTransitionError(f"project {project_id!r} is archived",
                                             project_id=project_id)
            return self._write(tx, row, project_id, namespace, key, value_json, kind=kind,
                               expected=expected, ttl_seconds=ttl, actor=actor)

        return self.storage.write(unit)

    def put_in_tx(
        self,
        tx: Tx,
        project_id: str,
        namespace: str,
        key: str,
        value_json: str,
        *,
        kind: MemoryType | None,
        expected_version: int | None,
        ttl_seconds: int | None,
        actor: str,
    ) -> dict[str, Any]:
        """The body of :meth:`put` inside the caller's write transaction (an import writes
        many memories in one). Arguments are already checked; the project is the caller's."""
        row = self._lock(tx, project_id, namespace, key, actor)
        return self._write(tx, row, project_id, namespace, key, value_json, kind=kind,
                           expected=expected_version, ttl_seconds=ttl_seconds, actor=actor)

    def _write(
        self, tx: Tx, row: Row | None, project_id: str, namespace: str, key: str,
        value_json: str, *, kind: MemoryType | None, expected: int | None,
        ttl_seconds: int | None, actor: str,
    ) -> dict[str, Any]:
        """Put over the locked current row (``None``: no live row)."""
        written: Row | None = None
        if row is None:
            self._check_expected(expected, None, namespace, key)
            new_kind = kind or MemoryType.SEMANTIC
            written = tx.one("insert_memory", memory_id=new_memory_id(), project_id=project_id,
                             namespace=namespace, key=key, memory_type=new_kind.value,
                             value=value_json, actor=actor,
                             ttl_seconds=ttl_seconds or self.default_ttl(new_kind))
            if written is None:
                # Another first writer committed in between: compete for its row.
                row = self._lock(tx, project_id, namespace, key, actor)
        if row is not None:
            self._check_expected(expected, _current_version(row), namespace, key)
            new_kind = kind or MemoryType(row["memory_type"])
            written = tx.one("update_memory", memory_id=row["memory_id"], version=row["version"],
                             memory_type=new_kind.value, value=value_json, actor=actor,
                             ttl_seconds=ttl_seconds or self.default_ttl(new_kind))
        if written is None:  # the row vanished under its lock: cannot happen, never ignored
            raise self._not_found(project_id, namespace, key)
        return record_put(tx, written, project_id, expected, actor)

    def delete(
        self,
        project_id: str,
        namespace: str,
        key: str,
        *,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Tombstone a live memory (a new version without a value); its history stays."""
        check_identifier(project_id, "project_id")
        check_namespace(namespace)
        check_identifier(key, "key")
        expected = check_expected_version(expected_version)
        actor = check_identifier(actor or self.settings.actor, "actor")

        def unit(tx: Tx) -> dict[str, Any]:
            require_project(tx, project_id, active=True)
            row = self._lock(tx, project_id, namespace, key, actor)
            current = _current_version(row)
            if row is None or current is None:
                raise self._not_found(project_id, namespace, key)
            self._check_expected(expected, current, namespace, key)
            tx.execute("tombstone_memory", memory_id=row["memory_id"], version=current,
                       actor=actor)
            tx.execute("insert_memory_version", memory_id=row["memory_id"], op="delete")
            written = self._require_row(tx, project_id, namespace, key)
            audit(tx, actor, "memory.delete", "memory", row["memory_id"], project_id,
                  namespace=namespace, key=key, version=written["version"])
            return decoded(written)

        return self.storage.write(unit)

    def purge(
        self, project_id: str, namespace: str, key: str, *, actor: str | None = None
    ) -> dict[str, Any]:
        """Erase a memory and every version of it (live, deleted or expired); audited."""
        check_identifier(project_id, "project_id")
        check_namespace(namespace)
        check_identifier(key, "key")
        actor = check_identifier(actor or self.settings.actor, "actor")

        def unit(tx: Tx) -> dict[str, Any]:
            require_project(tx, project_id)
            row = tx.one("lock_memory", project_id=project_id, namespace=namespace, key=key)
            if row is None:
                raise self._not_found(project_id, namespace, key)
            versions = int(tx.value("count_memory_versions", memory_id=row["memory_id"]))
            tx.execute("purge_memory", memory_id=row["memory_id"])
            audit(tx, actor, "memory.purge", "memory", row["memory_id"], project_id,
                  namespace=namespace, key=key, version=row["version"], versions=versions)
            return {"memory_id": row["memory_id"], "namespace": namespace, "key": key,
                    "purged_versions": versions}

        return self.storage.write(unit)

    def sweep_expired(
        self, project_id: str | None = None, *, limit: int = MAX_PAGE, actor: str | None = None
    ) -> int:
        """Remove up to ``limit`` expired memories (of one project, or all); returns how many."""
        if project_id is not None:
            check_identifier(project_id, "project_id")
        check_limit(limit, MAX_PAGE)
        actor = check_identifier(actor or self.settings.actor, "actor")

        def unit(tx: Tx) -> int:
            if project_id is not None:
                require_project(tx, project_id)
            expired = tx.all("expired_memories", project_id=project_id or "", limit=limit)
            for row in expired:
                self._expire(tx, row, actor)
            return len(expired)

        return self.storage.write(unit)

    # --- reads -----------------------------------------------------------------------------

    def get(
        self, project_id: str, namespace: str, key: str, version: int | None = None
    ) -> dict[str, Any]:
        """The live memory, or one version of it from the history (also of a deleted one)."""
        check_identifier(project_id, "project_id")
        check_namespace(namespace)
        check_identifier(key, "key")
        if version is not None:
            check_non_negative_int(version, "version", MAX_INTEGER)

        if version is None:
            # The live value is one statement (the project's existence included), which the
            # storage runs without BEGIN and COMMIT: a read by key is the hot path of memories.
            live = self.storage.read_one("get_live_memory", project_id=project_id,
                                         namespace=namespace, key=key)
            if live is None:
                raise ProjectNotFoundError(f"unknown project {project_id!r}",
                                           project_id=project_id)
            if live["memory_id"] is None or live["expired"] or live["deleted_at"]:
                raise self._not_found(project_id, namespace, key)
            return decoded(live)

        def unit(tx: Tx) -> dict[str, Any]:
            row = self._visible(tx, project_id, namespace, key, with_deleted=True)
            found = tx.one("get_memory_version", memory_id=row["memory_id"], version=version)
            if found is None:
                raise MemoryNotFoundError(
                    f"memory {namespace}/{key} has no version {version}",
                    project_id=project_id, namespace=namespace, key=key, version=version)
            return {"namespace": namespace, "key": key, **decoded(found)}

        return self.storage.read(unit)

    def history(self, project_id: str, namespace: str, key: str) -> builtins.list[dict[str, Any]]:
        """Every version, oldest first (a delete is a version whose value is ``None``)."""
        check_identifier(project_id, "project_id")
        check_namespace(namespace)
        check_identifier(key, "key")

        def unit(tx: Tx) -> builtins.list[dict[str, Any]]:
            row = self._visible(tx, project_id, namespace, key, with_deleted=True)
            return [decoded(r) for r in tx.all("list_memory_versions",
                                                memory_id=row["memory_id"])]

        return self.storage.read(unit)

    def list(
        self,
        project_id: str,
        prefix: str = "",
        *,
        limit: int = 100,
        after: tuple[str, str] | None = None,
        include_deleted: bool = False,
        include_expired: bool = False,
    ) -> builtins.list[dict[str, Any]]:
        """A page of memories in (namespace, key) order; pass the last one's pair as ``after``."""
        check_identifier(project_id, "project_id")
        if prefix:
            check_namespace(prefix, "prefix")
        check_limit(limit, MAX_PAGE)
        after_namespace, after_key = after or ("", "")
        for value, what in ((after_namespace, "after namespace"), (after_key, "after key")):
            if not isinstance(value, str) or "\x00" in value:
                raise ValidationError(f"{what} must be a string without NUL bytes")

        def unit(tx: Tx) -> builtins.list[dict[str, Any]]:
            require_project(tx, project_id)
            return [decoded(r) for r in tx.all(
                "list_memories", project_id=project_id, prefix=prefix,
                after_namespace=after_namespace, after_key=after_key, limit=limit,
                include_deleted=int(include_deleted), include_expired=int(include_expired))]

        return self.storage.read(unit)

    # --- helpers ---------------------------------------------------------------------------

    def _lock(self, tx: Tx, project_id: str, namespace: str, key: str, actor: str) -> Row | None:
        """The locked current row; an expired one is removed first and counts as absent."""
        row = tx.one("lock_memory", project_id=project_id, namespace=namespace, key=key)
        if row is not None and row["expired"]:
            self._expire(tx, row, actor)
            return None
        return row

    @staticmethod
    def _expire(tx: Tx, row: Row, actor: str) -> None:
        tx.execute("purge_memory", memory_id=row["memory_id"])
        audit(tx, actor, "memory.expire", "memory", row["memory_id"], row["project_id"],
              namespace=row["namespace"], key=row["key"], version=row["version"],
              expires_at=row["expires_at"])

    def _visible(
        self, tx: Tx, project_id: str, namespace: str, key: str, *, with_deleted: bool
    ) -> Row:
        require_project(tx, project_id)
        row = tx.one("get_memory", project_id=project_id, namespace=namespace, key=key)
        if row is None or row["expired"] or (row["deleted_at"] and not with_deleted):
            raise self._not_found(project_id, namespace, key)
        return row

    def _require_row(self, tx: Tx, project_id: str, namespace: str, key: str) -> Row:
        row = tx.one("get_memory", project_id=project_id, namespace=namespace, key=key)
        if row is None:
            raise self._not_found(project_id, namespace, key)
        return row

    @staticmethod
    def _check_expected(
        expected: int | None, current: int | None, namespace: str, key: str
    ) -> None:
        if expected is None or expected == (current or MUST_NOT_EXIST):
            return
        wanted = "not to exist" if expected == MUST_NOT_EXIST else f"at version {expected}"
        found = "does not exist" if current is None else f"is at version {current}"
        raise VersionConflictError(
            f"memory {namespace}/{key} was expected {wanted} but {found}",
            namespace=namespace, key=key, expected_version=expected, current_version=current)

    @staticmethod
    def _not_found(project_id: str, namespace: str, key: str) -> MemoryNotFoundError:
        return MemoryNotFoundError(
            f"no memory {namespace}/{key} in project {project_id!r}",
            project_id=project_id, namespace=namespace, key=key)

