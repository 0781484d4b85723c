"""The storage interface every backend implements.

A unit of work is a function of a :class:`Tx`. The service layer hands it to
:meth:`Storage.write` or :meth:`Storage.read`; the backend runs it in exactly one transaction
and commits before returning. ``write`` may run the function again after a transient failure
(a dropped PostgreSQL connection, a serialization failure), so units of work must be safe to
repeat: every insert that could have committed carries an idempotency key or a
caller-chosen primary key.

Errors: backends raise only :mod:`ctxdb.errors` types. Driver errors are translated by the
backend; ``TransientStorageError`` is raised when retries are exhausted.

:class:`Tx` is what a unit of work sees: named queries, deferred statements and locks, the
verbs use cases need. Literal SQL (catalog probes, migrations, whole-table statements built
from the table registry) is storage work: those methods are on :class:`RawTx`, the type every
backend's transaction really has, which only code inside ``ctxdb.storage`` reaches, through
:func:`raw`.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ctxdb.errors import UnsupportedFeatureError
from ctxdb.storage.dialect import Dialect

if TYPE_CHECKING:
    from ctxdb.storage.change_signal import ChangeSignal
    from ctxdb.storage.health import Health
    from ctxdb.storage.row_security import RowSecurity
    from ctxdb.storage.search_engine import SearchEngine

T = TypeVar("T")
Row = dict[str, Any]
# Documents given their terms per round: bounds the memory a re-index of a large database
# holds (the migration that adds terms, a rebuild). Here, not in search_engine.py, so that a
# write's look (Storage.indexing) names it without an import statement per write.
PENDING_BATCH = 500
_SIGNAL_GUARD = threading.Lock()


class Tx(abc.ABC):
    """One open transaction. Queries are referred to by name (see ``queries/*.sql``)."""

    # Whether one statement may write several tables (PostgreSQL's data-modifying WITH), so
    # that a use case may send its writes as one statement where a query says so; SQLite's
    # statements write one table each.
    chains_writes = False
    # Whether the schema lets a store write its item's search document itself, with its
    # terms (migration 0023: the trigger then writes none); set by the storage per
    # transaction where one statement writes several tables.
    documents_written_once = False
    # Whether the schema lets a memory put write its memory's search document itself, with
    # its terms (SQLite's migration 0024, PostgreSQL's 0026: the put claims it in the row it
    # writes, and the trigger then leaves it); set by the storage per transaction where a
    # dialect has it.
    memory_documents_once = False
    # Whether the schema lets a store write its item's search document itself, first, with
    # its terms (SQLite's migration 0025: the item's trigger then writes none); set by the
    # storage per transaction where a dialect has it.
    item_documents_once = False
    # Whether a store draws its number from a sequence, with gaps (PostgreSQL's migration
    # 0029; Dialect.item_numbers_probe); set by the storage per transaction.
    item_numbers_drawn = False
    # How many search documents may wait for their index terms after a write commits (SQLite:
    # DEFER_LIMIT, storage/dialect.py): a write unit leaves the documents it writes without
    # terms, and gives every waiting document its terms, in one batch, once this many wait;
    # a search brings the index current first (docs/architecture.md). 0: every write unit
    # gives their terms to the documents it leaves (PostgreSQL). Set by the storage per
    # transaction.
    pending_limit = 0

    @abc.abstractmethod
    def all(self, query: str, **params: Any) -> list[Row]:
        """Every row of a named query."""

    @abc.abstractmethod
    def one(self, query: str, **params: Any) -> Row | None:
        """The first row of a named query, or ``None``."""

    @abc.abstractmethod
    def stream(self, query: str, **params: Any) -> Iterator[Row]:
        """Rows of a named query, fetched lazily; stop iterating to stop reading."""

    @abc.abstractmethod
    def execute(self, query: str, **params: Any) -> int:
        """Run a named statement; returns the number of rows it changed."""

    def defer(self, query: str, **params: Any) -> None:
        """Run a named statement whose outcome nobody reads (an audit row, a history row),
        at the latest before the transaction commits and before any later statement of
        this transaction. A backend with network round trips sends deferred statements
        together with the next statement or the COMMIT; an error in one still fails the
        unit of work, which then commits nothing."""
        self.execute(query, **params)

    def commit_with(self, query: str, **params: Any) -> Row | None:
        """The first row of a named statement that is the unit's last: nothing may run in
        this transaction after it. A backend with network round trips may send the COMMIT
        with it, before its answer is back, so that the rows it locks are not held for a
        round trip of the client (PostgreSQL; see docs/architecture.md). So:

        - the statement must write nothing when it answers with no row: it is committed
          all the same (a unit that wants another way then raises, and runs a new unit);
        - when the COMMIT's answer is lost and the transaction did commit, the row is lost
          with it, and the unit is run again to learn it: the statement must write nothing
          the second time (an idempotency key), and answer so.

        Elsewhere this is :meth:`one`, and the storage commits when the unit returns."""
        return self.one(query, **params)

    def prefetch(self, reads: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Announce the named reads (query, parameters) the unit is about to make, in that
        order, none depending on another's answer nor on a write between them. A backend
        with network round trips sends them together, in one round trip, and answers each
        :meth:`one` or :meth:`all` of the same query and parameters from what came back,
        taken in order; any other statement first drops what is left (it may write what
        they read), so a read announced but not made, or made after another statement, is
        simply sent again. Elsewhere nothing: the reads run as they come."""
        del reads  # nothing to send ahead where a read costs no round trip

    @abc.abstractmethod
    def documents_indexed(self) -> None:
        """Say that no search document is without its index terms at this point of the
        transaction, or, where documents may wait (:attr:`pending_limit`), fewer than that
        many (the unit asked the database so in a statement of its own, and has written none
        since), so that the storage spares the look for them after the unit
        (:meth:`Storage.indexing`) unless a later statement may write one."""

    @abc.abstractmethod
    def documents_pending(self) -> None:
        """Say that documents without their index terms were found in the database (written
        by another connection), or, where documents may wait (:attr:`pending_limit`), that
        as many wait as may, for the storage to give them their terms before the COMMIT,
        as it does after a statement that may leave such a document (Storage.indexing)."""

    @abc.abstractmethod
    def lock(self, key: int) -> None:
        """Hold a transaction-scoped lock on ``key`` (no-op where writes are serialized)."""

    def value(self, query: str, **params: Any) -> Any:
        row = self.one(query, **params)
        return None if row is None else next(iter(row.values()))


class RawTx(Tx):
    """A transaction with literal SQL too: the type of every backend's transaction, for code
    inside ``ctxdb.storage`` only (services are typed against :class:`Tx`)."""

    # Whether a statement of this transaction may have written a search document: a named
    # query of ``queries.document_writers()``, or any literal SQL. Backends set it.
    may_write_documents = False
    # Whether the unit said that the waiting documents reached Tx.pending_limit (so the
    # storage need not count them again).
    pending_limit_reached = False

    def documents_indexed(self) -> None:
        self.may_write_documents = False

    def documents_pending(self) -> None:
        self.may_write_documents = True
        self.pending_limit_reached = True

    def look_ahead(self, query: str, **params: Any) -> None:
        """Ask ``query`` right after each statement that may write a search document, in the
        same round trip, where a backend saves one that way (PostgreSQL's pipelines): the
        look for the documents still without index terms (see :meth:`Storage.indexing`).
        Elsewhere nothing: the look is made when it is needed."""

    def set_terms(self, terms: Sequence[tuple[int, str]]) -> None:
        """Give documents their index terms, (doc_id, terms) in increasing doc_id order: one
        ``search_set_terms`` each, sent together where a backend pipelines them."""
        for doc_id, text in terms:
            self.defer("search_set_terms", doc_id=doc_id, terms=text)

    def looked(self, query: str, **params: Any) -> list[Row] | None:
        """The answer to ``query`` with ``params`` asked by :meth:`look_ahead`, once: ``None``
        when it was not asked so, or when a statement that may write a document came after."""
        return None

    @abc.abstractmethod
    def one_raw(self, sql: str, params: dict[str, Any]) -> Row | None:
        """The first row of literal SQL already in this backend's parameter style."""

    @abc.abstractmethod
    def all_raw(self, sql: str, params: dict[str, Any]) -> list[Row]:
        """Every row of literal SQL already in this backend's parameter style."""

    @abc.abstractmethod
    def execute_raw(self, sql: str, params: dict[str, Any]) -> int:
        """Run one statement of literal SQL; returns the number of rows it changed."""

    @abc.abstractmethod
    def rows_raw(self, sql: str, params: dict[str, Any], batch: int) -> Iterator[tuple[Any, ...]]:
        """Rows of literal SQL as tuples, fetched ``batch`` at a time (whole-table reads)."""

    @abc.abstractmethod
    def execute_many_raw(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run literal SQL with positional placeholders once per row (bulk inserts)."""

    def copy_raw(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Load rows with a ``COPY … FROM STDIN`` statement (PostgreSQL only)."""
        raise NotImplementedError(f"{type(self).__name__} has no bulk copy")

    @abc.abstractmethod
    def script(self, sql: str) -> None:
        """Run literal SQL text of one or more statements (migrations, index repairs)."""


def raw(tx: Tx) -> RawTx:
    """The literal-SQL side of a transaction a backend opened (storage-internal code only)."""
    if not isinstance(tx, RawTx):
        raise TypeError(f"{type(tx).__name__} is not a transaction a storage backend opened")
    return tx


class Storage(abc.ABC):
    dialect: Dialect
    url: str
    # Whether the schema has search_documents.terms (the search_terms migration), found out
    # by the first write; None: not known (yet, or since a migration ran).
    search_terms: bool | None = None
    # Whether the schema has migration 0023 (see Tx.documents_written_once), found out by
    # the first write that chains its statements; None: not known (yet, or since a migration).
    documents_written_once: bool | None = None
    # Likewise for Tx.memory_documents_once (SQLite's migration 0024, PostgreSQL's 0026) and
    # Tx.item_documents_once (SQLite's migration 0025).
    memory_documents_once: bool | None = None
    item_documents_once: bool | None = None
    item_numbers_drawn: bool | None = None  # likewise (PostgreSQL's migration 0029)
    # Tx.pending_limit where the schema allows it (Dialect.pending_probe), else 0; None: not
    # known (yet, or since a migration ran).
    pending_limit: int | None = None
    # The storage a scoped one was made from (see scoped()): it learns what its copies learn,
    # so that the per-request copies of a server do not each probe the schema again.
    origin: Storage | None = None
    # Whether an index keeps the entries of the documents given their terms (PostgreSQL
    # until a vacuum), so that finding those still without terms must not start from the
    # first document; see :meth:`indexing`.
    keeps_dead_index_entries = False
    # The highest search document id given its terms by a write of this storage: ids are
    # handed out in increasing order, so a document written by a transaction that begins
    # after that write has a higher one (a document whose body changes gets a new id).
    _indexed_up_to = 0

    def indexing(self, unit: Callable[[Tx], T]) -> Callable[[Tx], T]:
        """``unit``, then the index terms of the search documents it wrote (see
        storage/search_engine.py): a write unit as the backends run it, so that no write
        path can commit a document the full-text index does not hold. A unit that ran no
        statement able to write one (``RawTx.may_write_documents``) costs no look.

        Where documents may wait for their terms (``Dialect.pending_limit``, SQLite), a write
        gives them their terms only once that many wait, all in its transaction: the engine
        then writes its index once for them all. Until then a search brings the index
        current before it reads it (SQLiteTx), so that every search still finds every
        committed document.

        Where the index keeps dead entries, the documents without terms are looked for
        above the highest id this storage indexed before the unit began, so that a write
        never steps over the entries of every document indexed before: their number grows
        with the database, and which plan the server uses for the look-up (one that skips
        entries known dead, or one that visits each) must not decide how long a write takes.
        """
        def run(tx: Tx) -> T:
            floor = self._indexed_up_to if self.keeps_dead_index_entries else 0
            limit = tx.pending_limit = self._documents_may_wait(tx)
            if tx.chains_writes:
                tx.documents_written_once = self._probed(tx, "documents_written_once",
                                                      self.dialect.documents_once_probe)
                tx.memory_documents_once = self._probed(tx, "memory_documents_once",
                                                     self.dialect.memory_documents_probe)
                tx.item_numbers_drawn = self._probed(tx, "item_numbers_drawn",
                                                  self.dialect.item_numbers_probe)
            elif self.dialect.memory_documents_probe is not None:
                tx.memory_documents_once = self._probed(tx, "memory_documents_once",
                                                     self.dialect.memory_documents_probe)
                tx.item_documents_once = self._probed(tx, "item_documents_once",
                                                   self.dialect.item_documents_probe)
            if self.search_terms and not limit:
                raw(tx).look_ahead("search_pending_documents", after=floor,
                                   limit=PENDING_BATCH)
            result = unit(tx)
            if not raw(tx).may_write_documents:  # nothing to look for: spare the statement
                return result
            if self.search_terms is None:  # the first write, or the schema changed: all
                self.search_terms = raw(tx).one_raw(self.dialect.search_terms_probe,
                                                    {}) is not None
                if self.origin is not None:
                    self.origin.search_terms = self.search_terms
                floor = 0
            if (self.search_terms and limit and not raw(tx).pending_limit_reached
                    and int(tx.value("search_pending_count", limit=limit)) < limit):
                return result  # they wait for a later write, or a search
            if self.search_terms:
                from ctxdb.storage.search_engine import index_pending

                highest = index_pending(tx, after=floor)
                self._indexed_up_to = max(self._indexed_up_to, highest)
                if self.origin is not None:  # a server's per-request copy tells its origin
                    self.origin._indexed_up_to = max(self.origin._indexed_up_to, highest)
            return result

        return run

    def _probed(self, tx: Tx, name: str, probe: str | None) -> bool:
        """Whether the schema has what ``probe`` looks for (one of the ``…_once`` switches
        above, named ``name``): asked on the first write and again once a migration has reset
        the switch to ``None``, and told to the origin of a server's per-request copy."""
        found: bool | None = getattr(self, name)
        if found is None:
            found = probe is not None and raw(tx).one_raw(probe, {}) is not None
            setattr(self, name, found)
            if self.origin is not None:
                setattr(self.origin, name, found)
        return found

    def _documents_may_wait(self, tx: Tx) -> int:
        if self.pending_limit is None:  # the first write, or the schema changed
            return self.probed_pending_limit(lambda probe: raw(tx).one_raw(probe, {}))
        return self.pending_limit

    def probed_pending_limit(self, first_row: Callable[[str], object | None]) -> int:
        """:attr:`pending_limit` asked of the schema (``Dialect.pending_probe``, run by
        ``first_row``, which answers its first row or ``None``): by a write unit, and by a
        storage that must know before its transaction is made (SQLiteStorage); told to the
        origin of a server's per-request copy."""
        probe = self.dialect.pending_probe
        allowed = probe is not None and first_row(probe) is not None
        self.pending_limit = self.dialect.pending_limit if allowed else 0
        if self.origin is not None:
            self.origin.pending_limit = self.pending_limit
        return self.pending_limit

    @abc.abstractmethod
    def write(self, unit: Callable[[Tx], T]) -> T:
        """Run ``unit`` in one write transaction and commit; may retry on transient errors."""

    @abc.abstractmethod
    def read(self, unit: Callable[[Tx], T]) -> T:
        """Run ``unit``, which only reads, in one transaction. SQLite reads one snapshot from
        the unit's first read on; PostgreSQL (READ COMMITTED) lets each statement see what
        was committed before it started: a unit whose statements must agree with each other
        uses :meth:`snapshot`."""

    def read_one(self, query: str, **params: Any) -> Row | None:
        """The first row of one named read query: a unit of work of a single statement.

        One statement sees one consistent snapshot by itself, so the backends run it without
        BEGIN and COMMIT (two statements, or round trips, fewer); retries and errors are as
        for :meth:`read`.
        """
        return self.read(lambda tx: tx.one(query, **params))

    def scoped(self, project_ids: Sequence[str] | None) -> Storage:
        """This storage with each of its transactions limited to ``project_ids`` (``None``:
        every project, a fleet-wide caller) by the database's row-level security, a second
        wall under the services' own project checks (``ctxdb db secure``, docs/server.md).

        The scope is set per transaction, never per connection, so that a pooled connection
        never carries one caller's projects into another's transaction. The scoped storage
        shares this one's connections; closing it leaves them open. SQLite has no row-level
        security: it answers itself, and only the services' checks apply.
        """
        return self

    def row_security(self) -> RowSecurity:
        """Setting up and inspecting row-level security (``ctxdb db secure``, doctor)."""
        raise UnsupportedFeatureError(
            f"row-level security is a PostgreSQL feature; this database is {self.dialect.name}"
            " (on SQLite the server's own project checks are the isolation)",
            backend=self.dialect.name)

    @abc.abstractmethod
    def health(self) -> Health:
        """The probes ``ctxdb doctor`` runs against this backend (see storage/health.py)."""

    def search_engine(self) -> SearchEngine:
        """The full-text engine's query syntax and index upkeep (see storage/search_engine.py)."""
        from ctxdb.storage.search_engine import engine_of

        return engine_of(self.dialect)

    def snapshot(self, unit: Callable[[Tx], T]) -> T:
        """Run ``unit`` in a read-only transaction that sees one consistent snapshot of every
        table, however long it takes (exports and copies of a database in use)."""
        statement = self.dialect.snapshot

        def in_snapshot(tx: Tx) -> T:
            if statement:
                raw(tx).execute_raw(statement, {})
            return unit(tx)

        return self.read(in_snapshot)

    _change_signal: ChangeSignal | None = None

    def change_signal(self) -> ChangeSignal:
        """What wakes this process's readers of the change feed when the audit log may have
        grown (see change_signal.py): one per storage, made on first use, closed with it."""
        with _SIGNAL_GUARD:
            if self._change_signal is None:
                self._change_signal = self._new_change_signal()
            return self._change_signal

    @abc.abstractmethod
    def _new_change_signal(self) -> ChangeSignal:
        """This backend's change signal."""

    def _close_change_signal(self) -> None:
        with _SIGNAL_GUARD:
            signal, self._change_signal = self._change_signal, None
        if signal is not None:
            signal.close()

    @abc.abstractmethod
    def close(self) -> None:
        """Release every connection; the storage cannot be used afterwards."""

    def describe(self) -> str:
        return f"{self.dialect.name}: {self.url}"

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
