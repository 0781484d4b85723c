"""``ctxdb doctor``: checks of a database's health, and the few repairs that are always safe.

Each check returns a :class:`Check` (pass, warn or fail, with a detail a person can act on).
With ``fix`` the repairable findings are repaired and the check runs again, so its status is
the state after the repair and ``fixed`` says what was done. The repairs only rebuild what is
derived from the data (indexes, the full-text index), mark silent instances crashed exactly as
crash detection does, checkpoint the SQLite write-ahead log and refresh the planner's
statistics (``ctxdb db optimize``); user data is never modified.

The backend-specific probes live in ``storage/*_health.py``; the list of hot queries and their
indexes in :mod:`ctxdb.service.operations.query_plans`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ctxdb.domain.validation import check_non_negative_int
from ctxdb.errors import CtxdbError, DatabaseUnavailableError
from ctxdb.progress import NoProgress, Progress
from ctxdb.service.common import Service, audit
from ctxdb.service.operations.doctor_agents import check_reload_budget, check_stale_instances
from ctxdb.service.operations.doctor_audit import check_audit_chain, check_change_feed
from ctxdb.service.operations.doctor_report import (
    FAIL,
    PASS,
    SKIP,
    WARN,
    Check,
    DoctorReport,
    listed,
    mib,
)
from ctxdb.service.operations.maintenance import MaintenanceService, check_statistics
from ctxdb.service.operations.query_plans import HOT_QUERIES, plan_uses_index
from ctxdb.service.operations.row_security import RowSecurityService
from ctxdb.settings import Settings
from ctxdb.storage import Migrator, Storage, Tx
from ctxdb.storage.health import Health, IndexDefinition, declared_indexes

if TYPE_CHECKING:
    from ctxdb.service.usecases.instances import InstanceService

WAL_WARN_BYTES = 64 * 1024 * 1024
# A table the planner's statistics show smaller than this is read in a few pages whatever
# the plan: a hot query that skips its index there is no finding.
SMALL_TABLE_ROWS = 1_000
SEARCH_TABLE = "search_documents"  # the full-text index's documents (migration 0008)


class SearchIndex(Protocol):
    """What the doctor needs of the full-text search service."""

    def index_status(self) -> dict[str, tuple[int, int]]:
        """Per source: (rows, index entries)."""

    def rebuild_index(self) -> dict[str, int]:
        """Rebuild the index from the rows; per source, the entries written."""


class _RollBack(Exception):
    """Ends the doctor's write probe: its transaction is rolled back, nothing is kept."""


def _table_reads(plan: list[str]) -> list[str]:
    """The steps of a plan that read a table (SQLite SCAN/SEARCH, PostgreSQL … Scan)."""
    reads = [step.strip() for step in plan if "scan" in step.lower() or "search" in step.lower()]
    return reads or [step.strip() for step in plan]


class DoctorService(Service):
    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        instances: InstanceService,
        search: Callable[[], SearchIndex | None] = lambda: None,
    ) -> None:
        super().__init__(storage, settings)
        self.instances = instances
        self._search = search

    @property
    def health(self) -> Health:
        return self.storage.health()

    def _has_table(self, name: str) -> bool:
        return self.health.has_table(name)

    def run(
        self, fix: bool = False, thorough: bool = False, wal_warn_bytes: int = WAL_WARN_BYTES,
        progress: Progress | None = None,
    ) -> DoctorReport:
        """Run every check (``thorough``: the complete, slower integrity check); ``progress``
        hears of one ``doctor`` phase counting the checks."""
        from ctxdb.service.operations.schema import location

        check_non_negative_int(wal_warn_bytes, "wal_warn_bytes")

        def report(checks: list[Check | None]) -> DoctorReport:
            return DoctorReport(self.storage.dialect.name, location(self.settings), fix,
                                thorough, tuple(check for check in checks if check is not None))

        try:
            connection = self.check_connection()
        except CtxdbError as exc:
            # A file that is no database, a server that refuses us: nothing else can run.
            return report([Check("connection", FAIL, f"cannot use the database: {exc.message}")])
        checks: list[tuple[str, Callable[[], Check | None]]] = [
            ("schema", self.check_schema),
            ("writable", self.check_writable),
            ("integrity", lambda: self.check_integrity(fix, thorough)),
            ("foreign_keys", self.check_foreign_keys),
            ("indexes", lambda: self.check_indexes(fix)),
            ("query_plans", self.check_query_plans),
            ("search_index", lambda: self.check_search_index(fix)),
            ("stale_instances", lambda: check_stale_instances(self.storage, self.settings,
                                                              self.instances, fix)),
            ("reload_budget", lambda: check_reload_budget(self.storage, self.settings)),
            ("audit_chain", lambda: check_audit_chain(self.storage, self.settings)),
            ("change_feed", lambda: check_change_feed(self.storage)),
            ("row_security", RowSecurityService(self.storage, self.settings).check),
            ("size", lambda: self.check_size(fix, wal_warn_bytes)),
            ("statistics", lambda: check_statistics(
                MaintenanceService(self.storage, self.settings), fix)),
        ]
        progress = progress or NoProgress()
        progress.start("doctor", len(checks))
        done: list[Check | None] = [connection]
        for name, check in checks:
            done.append(self._guarded(name, check))
            progress.advance(1)
        return report(done)

    @staticmethod
    def _guarded(name: str, check: Callable[[], Check | None]) -> Check | None:
        # A damaged or unreachable database makes some probes fail outright: that is a
        # finding of its check, and the other checks still run.
        try:
            return check()
        except CtxdbError as exc:
            return Check(name, FAIL, f"could not run the check: {exc.message}")

    # --- connection and schema -----------------------------------------------------------

    def check_connection(self) -> Check:
        probes = self.health.connection_settings()
        data = {probe.name: probe.actual for probe in probes}
        wrong = [f"{p.name} is {p.actual}, ctxdb requires {p.expected}"
                 for p in probes if not p.ok]
        if wrong:
            return Check("connection", FAIL, listed(wrong), data=data)
        detail = ", ".join(f"{p.name}={p.actual}" for p in probes)
        if risks := [p.risk for p in probes if p.risk]:
            return Check("connection", WARN, "; ".join([detail, *risks]), data=data)
        return Check("connection", PASS, detail, data=data)

    def check_schema(self) -> Check:
        migrator = Migrator(self.storage)
        status = migrator.status()
        current, latest = migrator.current_version(), migrator.latest_version
        data = {"current_version": current, "latest_version": latest,
                "migrations": {f"{m['version']:04d}": m["state"] for m in status}}

        def named(state: str) -> list[str]:
            return [f"{m['version']:04d}_{m.get('name', '')}" for m in status
                    if m["state"] == state]

        if modified := named("modified"):
            return Check("schema", FAIL, f"migration {listed(modified)} changed after it was "
                         "applied (stored checksum differs): the schema may not be what ctxdb "
                         "expects; see docs/doctor.md", data=data)
        if unknown := named("unknown"):
            return Check("schema", FAIL, f"the database has migrations this ctxdb does not "
                         f"know ({listed(unknown)}): upgrade ctxdb", data=data)
        if pending := named("pending"):
            detail = (f"schema version {current} of {latest}, {len(pending)} migration(s) "
                      "pending: run `ctxdb db upgrade`")
            if self.settings.migrates_automatically and current > 0:
                return Check("schema", WARN, detail + " (or open it: it upgrades itself)",
                             data=data)
            return Check("schema", FAIL, detail, data=data)
        return Check("schema", PASS, f"schema version {current} of {latest}, every migration's "
                     "checksum matches", data=data)

    def check_writable(self) -> Check | None:
        """A write, rolled back: a database that reads fine may refuse every write (a
        read-only file or directory, a read-only mount, a standby or read-only PostgreSQL)."""
        if not self._has_table("schema_migrations"):
            return None  # nothing migrated: the schema check says so

        def unit(tx: Tx) -> None:
            tx.execute("write_probe")
            raise _RollBack

        try:
            self.storage.write(unit)
        except _RollBack:
            return Check("writable", PASS, "a write succeeds (the probe was rolled back)")
        except CtxdbError as exc:
            return Check("writable", FAIL, f"every write fails: {exc.message}",
                         data={"error": exc.code})
        raise AssertionError("the write probe returned without rolling back")

    # --- integrity -----------------------------------------------------------------------

    def check_integrity(self, fix: bool, thorough: bool) -> Check:
        report = self.health.integrity(thorough)
        if not report.method:
            return Check("integrity", SKIP, f"not verified: {report.unavailable}")
        if not report.problems:
            return Check("integrity", PASS, f"{report.method}: ok",
                         data={"method": report.method})
        data = {"method": report.method, "problems": list(report.problems),
                "damaged_indexes": list(report.damaged_indexes)}
        if not report.only_indexes_damaged:
            return Check("integrity", FAIL, f"{report.method} found {len(report.problems)} "
                         f"problem(s): {listed(list(report.problems))}. The database file is "
                         "damaged: restore a backup (see docs/doctor.md)", data=data)
        if not fix:
            return Check("integrity", FAIL, f"{report.method}: damaged index(es) "
                         f"{listed(list(report.damaged_indexes))}; `ctxdb doctor --fix` "
                         "rebuilds them from their tables", data=data)
        for index in report.damaged_indexes:
            self._rebuild_index(index)
        after = self.check_integrity(fix=False, thorough=thorough)
        return dataclasses.replace(
            after, fixed=f"rebuilt index(es) {', '.join(report.damaged_indexes)}")

    def _rebuild_index(self, index: str) -> None:
        health = self.health

        def unit(tx: Tx) -> None:
            health.rebuild_index(tx, index)
            audit(tx, self.settings.actor, "doctor.reindex", "index", index, None)

        self.storage.write(unit)

    def check_foreign_keys(self) -> Check:
        problems = self.health.foreign_key_problems()
        if problems:
            return Check("foreign_keys", FAIL, f"{len(problems)} problem(s): "
                         f"{listed(problems)}", data={"problems": problems})
        return Check("foreign_keys", PASS, self.health.foreign_key_guarantee)

    # --- indexes and query plans ---------------------------------------------------------

    def check_indexes(self, fix: bool) -> Check:
        migrator = Migrator(self.storage)
        current = migrator.current_version()
        declared = declared_indexes(m for m in migrator.migrations if m.version <= current)
        missing = sorted(set(declared) - self.health.index_names())
        data = {"declared": len(declared), "missing": missing}
        if not missing:
            return Check("indexes", PASS, f"all {len(declared)} indexes the migrations "
                         "declare are present", data=data)
        if not fix:
            return Check("indexes", FAIL, f"missing index(es) {listed(missing)}: "
                         "`ctxdb doctor --fix` recreates them as their migration declares",
                         data=data)
        for name in missing:
            self._create_index(declared[name])
        after = self.check_indexes(fix=False)
        return dataclasses.replace(after, fixed=f"recreated index(es) {', '.join(missing)}")

    def _create_index(self, index: IndexDefinition) -> None:
        health = self.health

        def unit(tx: Tx) -> None:
            health.create_index(tx, index)
            audit(tx, self.settings.actor, "doctor.create_index", "index", index.name, None,
                  sql=index.sql)

        self.storage.write(unit)

    def check_query_plans(self) -> Check:
        health = self.health
        current = Migrator(self.storage).current_version()
        rows, wrong, full_text, small = [], [], True, 0
        for hot in (hot for hot in HOT_QUERIES if hot.since <= current):
            index = health.index_name(hot.index)
            try:
                plan = health.query_plan(hot.query, hot.params)
            except CtxdbError as exc:
                plan = [f"cannot be planned: {exc.message}"]
            uses = plan_uses_index(plan, index)
            # With statistics that show its table tiny, the planner rightly prefers another
            # plan; the index is still there (the indexes check) for when the table grows.
            estimate = None if uses else health.estimated_rows(index)
            tiny = estimate is not None and estimate < SMALL_TABLE_ROWS
            small += tiny
            rows.append({"label": hot.label, "query": hot.query, "index": index,
                         "uses_index": uses, "small_table": tiny, "plan": plan})
            if not uses and not tiny:
                full_text = full_text and hot.index.full_text
                wrong.append(f"{hot.label} ({hot.query}) does not use {index}: "
                             f"{' / '.join(_table_reads(plan)[:2])}")
        if wrong and full_text and RowSecurityService(self.storage, self.settings).applies_to(
                SEARCH_TABLE):
            return Check("query_plans", WARN, listed(wrong) + "; expected under row-level "
                         "security, whose policies come before the full-text match (not "
                         "leakproof): see docs/server.md", data={"queries": rows})
        if wrong:
            return Check("query_plans", FAIL, listed(wrong), data={"queries": rows})
        note = (f" ({small} on tables of under {SMALL_TABLE_ROWS} rows, planned without "
                "them for now)") if small else ""
        return Check("query_plans", PASS, f"all {len(rows)} hot queries use their indexes"
                     + note, data={"queries": rows})

    # --- derived data and housekeeping ---------------------------------------------------

    def check_search_index(self, fix: bool) -> Check | None:
        search = self._search()
        if search is None or not self._has_table(SEARCH_TABLE):
            return None  # no full-text index in this ctxdb, or not yet in this database
        status = search.index_status()
        data = {source: {"rows": rows, "entries": entries}
                for source, (rows, entries) in status.items()}
        off = [f"{source}: {rows} rows, {entries} index entries"
               for source, (rows, entries) in status.items() if rows != entries]
        if not off:
            return Check("search_index", PASS, "the full-text index agrees with its rows "
                         f"({', '.join(status) or 'no sources'})", data=data)
        if not fix:
            return Check("search_index", FAIL, f"the full-text index disagrees with its rows "
                         f"({listed(off)}): `ctxdb doctor --fix` rebuilds it", data=data)
        rebuilt = search.rebuild_index()
        after = self.check_search_index(fix=False)
        if after is None:  # pragma: no cover - the search service cannot vanish meanwhile
            return None
        return dataclasses.replace(after, fixed="rebuilt the full-text index: " + ", ".join(
            f"{source} {count}" for source, count in rebuilt.items()))

    def check_size(self, fix: bool, wal_warn_bytes: int) -> Check:
        size = self.health.size()
        data = {"database_bytes": size.database_bytes, "wal_bytes": size.wal_bytes,
                "wal_warn_bytes": wal_warn_bytes}
        if size.wal_bytes is None:
            return Check("size", PASS, f"database {mib(size.database_bytes)} (the "
                         "write-ahead log is the server's)", data=data)
        detail = f"database {mib(size.database_bytes)}, WAL {mib(size.wal_bytes)}"
        if size.wal_bytes <= wal_warn_bytes:
            return Check("size", PASS, detail, data=data)
        if not fix:
            return Check("size", WARN, f"{detail}, over {mib(wal_warn_bytes)}: a reader "
                         "held a snapshot for long; `ctxdb doctor --fix` checkpoints it",
                         data=data)
        self.health.checkpoint()
        after = self.check_size(fix=False, wal_warn_bytes=wal_warn_bytes)
        if after.status != PASS:
            return dataclasses.replace(after, fixed="could not truncate the WAL: another "
                                       "connection is using it; run again when it is idle")
        return dataclasses.replace(after, fixed=f"checkpointed the WAL ({mib(size.wal_bytes)}"
                                   " → " + mib(after.data["wal_bytes"] or 0) + ")")


def diagnose(
    settings: Settings, fix: bool = False, thorough: bool = False,
    wal_warn_bytes: int = WAL_WARN_BYTES, progress: Progress | None = None,
) -> DoctorReport:
    """Run the doctor on the database the settings name.

    The database is opened without the schema check and never upgraded: a doctor must be able
    to examine a database that is outdated, modified or damaged, and report what it finds.
    """
    from ctxdb.service import Ctxdb
    from ctxdb.service.operations.schema import location
    from ctxdb.storage import absent_database, connect_storage, dialect_of

    def unreachable(detail: str) -> DoctorReport:
        return DoctorReport(dialect_of(settings).name, location(settings), fix, thorough,
                            (Check("connection", FAIL, detail),))

    if (missing := absent_database(settings)) is not None:
        # Opening would create an empty file: nothing to examine, and nothing to leave behind.
        return unreachable(f"no database at {missing}: create it with `ctxdb init`")
    try:
        storage = connect_storage(settings)
    except DatabaseUnavailableError as exc:
        return unreachable(exc.message)
    with Ctxdb(storage, settings) as db:
        return db.doctor.run(fix, thorough, wal_warn_bytes, progress)
