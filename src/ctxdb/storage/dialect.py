"""Everything that differs between SQLite and PostgreSQL SQL, in one place.

Queries are written once, in files under ``queries/``, using ``:name`` parameters and a few
``$TOKENS`` for the real differences. Each backend compiles the text once per process:

- ``$NOW``            current time from the database clock, as the stored timestamp type
- ``$AGO(:param)``    the database clock minus ``:param`` seconds
- ``$IN(:param)``     the database clock plus ``:param`` seconds (NULL when ``:param`` is
                      NULL: an expiry time that may be absent)
- ``$FOR_UPDATE``     row lock on PostgreSQL; nothing on SQLite, whose write transactions
                      (BEGIN IMMEDIATE) already hold the database write lock
- ``$PROJECT_LOCK(:p)`` a lock on one project's registrations, held to the end of the
                      transaction: PostgreSQL's advisory lock on the project id's hash (not
                      the project's row, which every store reads under FOR KEY SHARE); on
                      SQLite the parameter alone, as BEGIN IMMEDIATE already holds the lock
- ``$SKIP_LOCKED``    ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; nothing on SQLite
- ``$SETTLED_XACT``   the change feed's line: audit rows whose ``xact_id`` is below it can no
                      longer be joined by a row before them (PostgreSQL: the oldest running
                      transaction of this database; SQLite, one writer committing in id
                      order: past every row)
- ``$AFTER_POSITION`` the audit rows after the position ``(:xact_id, :audit_id)``, and
  ``$POSITION_ORDER``, ``$POSITION_ORDER_DESC``: their order, (xact_id, audit_id). Written
                      as the engine walks them by an index: PostgreSQL's on (xact_id,
                      audit_id); on SQLite, where xact_id is always 0, the table's own key
                      (audit_id is the rowid), which a row comparison would not use

Full-text search (see docs/search.md) over ``search_documents``, aliased ``d``:

- ``$SEARCH_FROM``         the documents joined to the index (SQLite's FTS5 table), or alone
                           (PostgreSQL's index is a column of theirs)
- ``$SEARCH_MATCH(:p)``    the documents matching the engine query ``:p`` (FTS5 syntax, or
                           ``to_tsquery`` syntax; ``search_engine.py`` writes both)
- ``$SEARCH_SCORE(:p)``    relevance, higher is better (FTS5's bm25 negated, ``ts_rank``)
- ``$SEARCH_PROJECT(:p)``  the documents of the project ``:p`` as the index itself knows them
                           (schema version 21), so that the engine joins a word's matches
                           with one project's documents before reading or scoring any; the
                           exact ``d.project_id = :p`` still follows it
- ``$SEARCH_INDEXED``      the documents that are in the index

A memory put's search document (SQLite's migration 0024, PostgreSQL's 0026; see
``update_live_memory``):

- ``$CLAIM_MEMORY_DOCUMENT``  one more assignment of the put's ``UPDATE``, by which the row
                           says that its writer writes the memory's search document itself
                           (the trigger then leaves it): on SQLite in a statement of its own
                           after the ``UPDATE``, on PostgreSQL in the same statement
                           (``put_live_memory_recorded``)
- ``$MEMORY_DOCUMENT_BODY``   SQLite: more columns the put returns: ``search_body``, the
                           document's body, ``:search_body`` where the put made it
                           (storage/sqlite_body.py), else as ``search_memory_source`` makes
                           it of the row written, ``search_terms``, the terms the
                           document has (those of the previous put), and
                           ``documents_pending``, whether ``:waiting`` documents wait
                           for their terms (``DEFER_LIMIT - 1`` where the put leaves its
                           own waiting); nothing on PostgreSQL

Besides these: how to ask whether a table exists, transaction-scoped advisory locks
(PostgreSQL) where SQLite's single writer lock already serializes, how to rebuild the
full-text index, and how the engines word a query they cannot parse.

Whole-table work (bundles, ``db copy``; see ``bulk.py``) needs a few more: the positional
placeholder, bytewise ordering of text keys, a read-only snapshot, PostgreSQL's COPY,
moving an identity counter past explicitly inserted ids, and switching the triggers that keep
derived tables off and on again around a bulk load.
"""


from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

# Numbers of the advisory locks ctxdb takes; one place so that they never collide.
LOCK_MIGRATIONS = 4242001
LOCK_PROJECT_CREATION = 4242002
LOCK_AUDIT_SEALING = 4242003
LOCK_CHANGE_NOTIFY = 4242004  # taken by the audit log's NOTIFY trigger (migration 0016)
# The first half of a project's registration lock ($PROJECT_LOCK), whose second half is the
# project id's hash: PostgreSQL keeps two-number locks apart from the one-number ones above.
LOCK_PROJECT_INSTANCES = 4242005
# The first half of a project's item-number lock (PostgreSQL from migration 0029), whose
# second half is the project id's hash: a store holds it shared from before it draws its
# number to its COMMIT, and a reader that pages by number takes it exclusive before it reads
# (context.sql's store_drawn_item and await_item_draws; docs/architecture.md, "Writers of one
# project draw numbers with gaps").
LOCK_PROJECT_ITEMS = 4242006

# How many search documents may wait for their index terms on SQLite before a write gives them
# all their terms, in its own transaction (docs/architecture.md, "The SQLite search index
# brought current in batches"). FTS5 writes a segment of its index at the end of each
# statement that changed it: a third of a store's WAL frames and a tenth of its instructions.
# Left waiting, the documents of up to this many writes are entered by one statement, one
# segment for them all; a search first brings the index current (SQLiteTx), so it finds them
# all the same. 32: a search that meets a full batch then waits a few ms more (its terms, its
# segment and a COMMIT), once per batch, and each write's share of the segment is a
# thirty-second; a larger batch would make that search slower for a gain that has flattened.
DEFER_LIMIT = 32
_SQLITE_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_AGO = re.compile(r"\$AGO\((:[A-Za-z_]\w*)\)")
_IN = re.compile(r"\$IN\((:[A-Za-z_]\w*)\)")
_SEARCH_MATCH = re.compile(r"\$SEARCH_MATCH\((:[A-Za-z_]\w*)\)")
_SEARCH_SCORE = re.compile(r"\$SEARCH_SCORE\((:[A-Za-z_]\w*)\)")
_SEARCH_PROJECT = re.compile(r"\$SEARCH_PROJECT\((:[A-Za-z_]\w*)\)")
_PROJECT_LOCK = re.compile(r"\$PROJECT_LOCK\((:[A-Za-z_]\w*)\)")


class Dialect(NamedTuple):
    name: str
    now: str
    ago: Callable[[str], str]
    later: Callable[[str], str]
    for_update: str
    project_lock: Callable[[str], str]  # $PROJECT_LOCK (see the module's docstring)
    skip_locked: str
    param_style: Callable[[str], str]
    table_exists: str  # one parameter, :name; returns a count
    advisory_lock: Callable[[int], str]  # a transaction-scoped lock on a number
    placeholder: str  # positional parameter marker, for statements run over many rows
    bytewise: Callable[[str], str]  # a text column compared byte by byte, for ORDER BY
    snapshot: str  # first statement of a read that must see one consistent snapshot
    copy_in: Callable[[str, str], str] | None  # (table, columns) -> bulk load from the client
    # (table, identity column) -> move the column's counter past the ids the table holds
    advance_identity: Callable[[str, str], str] | None
    # (counter table, its identity column, holder table) -> statements moving the counter
    # past the ids another table holds in its key: archived items keep their item ids, so
    # context_items' counter must never hand one of them out again (tables.py, ``numbers``).
    advance_identity_past: Callable[[str, str, str], tuple[str, ...]]
    # (table, identity column) -> move its counter to at least :floor; and -> :count new
    # numbers drawn from it (rows imported next to others get new ids: bundle_merge.py).
    # None where the writer holds the database's one write lock and counts on its own.
    raise_identity: Callable[[str, str], str] | None
    next_identities: Callable[[str, str], str] | None
    # The connection's page cache in KiB (a query with one column), and a statement that sets
    # it: a bulk load enlarges it for its duration. None where the cache is the server's.
    cache_kib: str | None
    set_cache_kib: Callable[[int], str] | None
    # Triggers whose name starts with :prefix: name, table_name, sql (SQLite's CREATE text)
    # and whether this session may switch them off (PostgreSQL: it owns the table).
    triggers_named: str
    suspend_trigger: Callable[[str, str], str]  # (name, table) -> stop it firing
    resume_trigger: Callable[[str, str, str], str]  # (name, table, sql) -> fire again
    # Full-text search (docs/search.md): the $SEARCH_* tokens, then how to make the index
    # agree with the documents whatever state it is in (run before they are repaired; None
    # where the index is a generated column, which cannot disagree), and the messages by
    # which the engine refuses a query in its own syntax (raw searches).
    search_from: str
    search_match: Callable[[str], str]
    search_score: Callable[[str], str]
    search_project: Callable[[str], str]
    search_indexed: str
    search_rebuild: str | None
    search_query_errors: tuple[str, ...]
    # One row if the schema has search_documents.terms (the search_terms migration): a
    # transaction gives documents their terms only then (a database not yet upgraded, or
    # being downgraded).
    search_terms_probe: str
    settled_xact: str  # $SETTLED_XACT (see the module's docstring and the migration 0016)
    after_position: str  # $AFTER_POSITION (likewise)
    position_order: str  # $POSITION_ORDER (likewise; $POSITION_ORDER_DESC is derived)
    # One row if a store may write its item's search document itself (migration 0023, whose
    # trigger then writes none; Tx.documents_written_once); None where a store never does.
    # Asked of the catalog, so that it answers on a database of any version, even empty.
    documents_once_probe: str | None = None
    # $CLAIM_MEMORY_DOCUMENT and $MEMORY_DOCUMENT_BODY (see the module's docstring), and one
    # row if the schema has what they name (SQLite's migration 0024, PostgreSQL's 0026;
    # Tx.memory_documents_once); None where a put never writes its document itself.
    claim_memory_document: str = ""
    memory_document_body: str = ""
    memory_documents_probe: str | None = None
    # One row if a store may write its item's search document itself, before the item
    # (SQLite's migration 0025: the item's trigger then writes none; Tx.item_documents_once);
    # None where a store never does so.
    item_documents_probe: str | None = None
    # How many search documents may wait for their index terms across commits (Tx.pending_limit;
    # a write that finds this many gives them all their terms); 0 where each write gives their
    # terms to the documents it leaves (PostgreSQL, whose index is a column of the document).
    # Only where the schema says that its readers bring the index current (one row from
    # pending_probe: SQLite's migration 0027, which older versions refuse to open).
    pending_limit: int = 0
    pending_probe: str | None = None
    # One row if a store draws its item's number from the sequence context_item_numbers, with
    # gaps (PostgreSQL's migration 0029; Tx.item_numbers_drawn); None where numbers come from
    # the project's row (SQLite: one writer at a time, numbers 1..n). Where it has one:
    # whether a lower number may commit after a higher one (context.sql's await_item_draws),
    # and the statement that holds the sequence to the end of the transaction (bulk.py's
    # hold_item_numbers).
    item_numbers_probe: str | None = None
    numbers_commit_out_of_order: bool = False
    item_numbers_hold: str = ""

    def compile(self, sql: str) -> str:
        sql = _AGO.sub(lambda m: self.ago(m.group(1)), sql)
        sql = _IN.sub(lambda m: self.later(m.group(1)), sql)
        sql = _SEARCH_MATCH.sub(lambda m: self.search_match(m.group(1)), sql)
        sql = _SEARCH_SCORE.sub(lambda m: self.search_score(m.group(1)), sql)
        sql = _SEARCH_PROJECT.sub(lambda m: self.search_project(m.group(1)), sql)
        sql = _PROJECT_LOCK.sub(lambda m: self.project_lock(m.group(1)), sql)
        sql = (sql.replace("$NOW", self.now)
                  .replace("$FOR_UPDATE", self.for_update)
                  .replace("$SKIP_LOCKED", self.skip_locked)
                  .replace("$SETTLED_XACT", self.settled_xact)
                  .replace("$AFTER_POSITION", self.after_position)
                  .replace("$POSITION_ORDER_DESC", self.position_order.replace(",", " DESC,")
                           + " DESC")
                  .replace("$POSITION_ORDER", self.position_order)
                  .replace("$SEARCH_FROM", self.search_from)
                  .replace("$SEARCH_INDEXED", self.search_indexed)
                  .replace("$CLAIM_MEMORY_DOCUMENT", self.claim_memory_document)
                  .replace("$MEMORY_DOCUMENT_BODY", self.memory_document_body))
        return self.param_style(sql)


def _pyformat(sql: str) -> str:
    # psycopg reads % as the start of a placeholder, so literal percent signs are doubled first.
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


SQLITE = Dialect(
    name="sqlite",
    now=_SQLITE_NOW,
    ago=lambda p: f"strftime('%Y-%m-%dT%H:%M:%fZ','now','-'||{p}||' seconds')",
    later=lambda p: f"strftime('%Y-%m-%dT%H:%M:%fZ','now','+'||{p}||' seconds')",
    for_update="",
    project_lock=lambda p: p,
    skip_locked="",
    param_style=lambda sql: sql,  # sqlite3 understands :name natively
    table_exists="SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = :name",
    advisory_lock=lambda key: "",  # BEGIN IMMEDIATE already holds the one write lock
    placeholder="?",
    bytewise=lambda column: column,  # BINARY, SQLite's default collation
    snapshot="",  # a read transaction already sees one snapshot from its first read on
    copy_in=None,
    # A new rowid is past the largest id in the table (AUTOINCREMENT: ever inserted), explicit
    # ones included.
    advance_identity=None,
    # AUTOINCREMENT keeps its counter in sqlite_sequence (a row per table, once it numbered
    # one); that row is made if missing, then raised. Both run under the one write lock.
    advance_identity_past=lambda table, column, holder: (
        f"INSERT INTO sqlite_sequence (name, seq) SELECT '{table}', 0 WHERE NOT EXISTS "
        f"(SELECT 1 FROM sqlite_sequence WHERE name = '{table}')",
        f"UPDATE sqlite_sequence SET seq = max(seq, "
        f"(SELECT coalesce(max({column}), 0) FROM {holder})) WHERE name = '{table}'",
    ),
    raise_identity=None,
    next_identities=None,
    # cache_size is pages when positive, KiB when negative.
    cache_kib=("SELECT CASE WHEN cache_size < 0 THEN -cache_size "
               "ELSE cache_size * (SELECT page_size FROM pragma_page_size) / 1024 END AS kib "
               "FROM pragma_cache_size"),
    set_cache_kib=lambda kib: f"PRAGMA cache_size = -{int(kib)}",
    triggers_named=("SELECT name, tbl_name AS table_name, sql, 1 AS owned FROM sqlite_master "
                    "WHERE type = 'trigger' AND substr(name, 1, length(:prefix)) = :prefix "
                    "ORDER BY name"),
    # SQLite cannot switch a trigger off: it is dropped and made again from its own text, in
    # the same transaction (DDL is transactional in SQLite).
    suspend_trigger=lambda name, table: f"DROP TRIGGER {name}",
    resume_trigger=lambda name, table, sql: sql,
    search_from="search_fts JOIN search_documents d ON d.doc_id = search_fts.rowid",
    search_match=lambda p: f"search_fts MATCH {p}",
    # project_key (migration 0021) is weighed 0: it is in the query to narrow it, not to rank.
    search_score=lambda p: "-bm25(search_fts, 1.0, 0.0)",
    # One token per project ('p' and the hex of the id's bytes); FTS5 ANDs the two MATCHes.
    search_project=lambda p: f"search_fts.project_key MATCH ('p' || hex({p}))",
    # A document without terms may have an (empty) entry: FTS5's rebuild enters every row.
    search_indexed=("d.terms IS NOT NULL AND d.doc_id IN (SELECT id FROM search_fts_docsize)"),
    search_rebuild="INSERT INTO search_fts (search_fts) VALUES ('rebuild')",
    search_query_errors=("fts5: syntax error", "unterminated string", "unknown special query",
                         "no such column", "fts5: parser stack overflow"),
    search_terms_probe=("SELECT 1 AS found FROM pragma_table_info('search_documents') "
                        "WHERE name = 'terms'"),
    settled_xact="1",  # xact_id is always 0: every committed row is settled
    after_position="xact_id = :xact_id AND audit_id > :audit_id",
    position_order="audit_id",
    claim_memory_document=", document_version = version + 1",
    # RETURNING runs after the row is written (SQLite makes it a trigger on the row), so the
    # view reads the row as the put left it; the document, which the claim kept from the
    # trigger, still has the terms of the memory's previous put. With them, whether :waiting
    # documents wait for their terms (the partial index of search_pending_documents holds
    # exactly those; counted up to :waiting, as search_pending_count counts): the put passes
    # Tx.pending_limit - 1 where it leaves its own document waiting (schema 0027; 0028 keeps
    # the terms the index holds), else 1, and then knows whether it may spare the look
    # (Tx.documents_indexed) or must give them all their terms (Tx.documents_pending).
    memory_document_body=(", CASE WHEN :search_body IS NOT NULL THEN :search_body ELSE "
                          "(SELECT s.body FROM search_memory_source s "
                          "WHERE s.memory_id = memories.memory_id) END AS search_body"
                          ", (SELECT d.terms FROM search_documents d "
                          "WHERE d.memory_id = memories.memory_id) AS search_terms"
                          ", (SELECT count(*) FROM (SELECT 1 FROM search_documents d "
                          "WHERE d.terms IS NULL LIMIT :waiting)) >= :waiting"
                          " AS documents_pending"),
    memory_documents_probe=("SELECT 1 AS found FROM pragma_table_info('memories') "
                            "WHERE name = 'document_version'"),
    item_documents_probe=("SELECT 1 AS found FROM sqlite_master WHERE type = 'trigger' "
                          "AND name = 'search_context_insert' AND instr(sql, 'NOT EXISTS') > 0"),
    pending_limit=DEFER_LIMIT,
    # Migration 0027's marker: the database header's user_version, which a statement reads
    # on a database of any version, even empty.
    pending_probe="SELECT 1 AS found FROM pragma_user_version WHERE user_version >= 27",
)

POSTGRES = Dialect(
    name="postgres",
    now="date_trunc('milliseconds', now())",
    ago=lambda p: f"(date_trunc('milliseconds', now()) - {p} * interval '1 second')",
    later=lambda p: f"(date_trunc('milliseconds', now()) + {p} * interval '1 second')",
    for_update="FOR UPDATE",
    project_lock=lambda p: f"pg_advisory_xact_lock({LOCK_PROJECT_INSTANCES}, hashtext({p}))",
    skip_locked="FOR UPDATE SKIP LOCKED",
    param_style=_pyformat,
    table_exists=(
        "SELECT count(*) AS n FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name = %(name)s"
    ),
    advisory_lock=lambda key: f"SELECT pg_advisory_xact_lock({int(key)})",
    placeholder="%s",
    bytewise=lambda column: f'{column} COLLATE "C"',
    snapshot="SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    copy_in=lambda table, columns: f"COPY {table} ({columns}) FROM STDIN",
    # An identity column's sequence ignores explicit ids; never move it backwards (nextval
    # costs one number, which is harmless: ids only need to be unique and increasing).
    advance_identity=lambda table, column: (
        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
        f"GREATEST(nextval(pg_get_serial_sequence('{table}', '{column}')), "
        f"(SELECT coalesce(max({column}), 0) + 1 FROM {table})), false)"
    ),
    advance_identity_past=lambda table, column, holder: (
        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
        f"GREATEST(nextval(pg_get_serial_sequence('{table}', '{column}')), "
        f"(SELECT coalesce(max({column}), 0) + 1 FROM {holder})), false)",
    ),
    raise_identity=lambda table, column: (
        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
        f"GREATEST(nextval(pg_get_serial_sequence('{table}', '{column}')), %(floor)s), false)"
    ),
    next_identities=lambda table, column: (
        f"SELECT nextval(pg_get_serial_sequence('{table}', '{column}')) AS id "
        "FROM generate_series(1, %(count)s)"
    ),
    cache_kib=None,  # shared_buffers belong to the server
    set_cache_kib=None,
    triggers_named=(
        "SELECT t.tgname AS name, c.relname AS table_name, '' AS sql, "
        "pg_has_role(c.relowner, 'USAGE') AS owned FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND NOT t.tgisinternal "
        "AND left(t.tgname, length(%(prefix)s)) = %(prefix)s ORDER BY t.tgname"
    ),
    suspend_trigger=lambda name, table: f"ALTER TABLE {table} DISABLE TRIGGER {name}",
    resume_trigger=lambda name, table, sql: f"ALTER TABLE {table} ENABLE TRIGGER {name}",
    search_from="search_documents d",
    search_match=lambda p: f"d.search_vector @@ to_tsquery('simple', {p})",
    # Normalization 1 divides by 1 + log(length): a short record about the words ranks above
    # a long one that mentions them once, as with bm25.
    search_score=lambda p: f"ts_rank(d.search_vector, to_tsquery('simple', {p}), 1)",
    # The project's lexeme in every document's vector (migration 0021): letters and digits.
    search_project=lambda p: f"d.search_vector @@ CAST('p' || md5({p}) AS tsquery)",
    search_indexed="d.search_vector IS NOT NULL",
    search_rebuild=None,
    # "syntax error in tsquery", "no operand in …", "tsquery stack too small", and a <N>
    # over 16,384: "distance in phrase operator must be an integer value between zero and …"
    search_query_errors=("tsquery", "distance in phrase operator"),
    search_terms_probe=("SELECT 1 AS found FROM pg_attribute WHERE attrelid = "
                        "to_regclass('search_documents') AND attname = 'terms' "
                        "AND NOT attisdropped"),
    documents_once_probe=("SELECT 1 AS found FROM pg_description WHERE objoid = "
                          "to_regprocedure('ctxdb_search_context()') "
                          "AND strpos(description, 'written once') > 0"),
    # The oldest transaction of the statement's snapshot still running, not counting those
    # seen running in another database (they write no row here; unknown ones count), or the
    # snapshot's xmax when none runs: every transaction below it has ended, and no later one
    # can take a number below it. Not the snapshot's xmin, the whole cluster's: one slow
    # transaction in another database would hold every feed back.
    settled_xact=(
        "(SELECT coalesce(min(x::text::bigint), "
        "pg_snapshot_xmax(pg_current_snapshot())::text::bigint) "
        "FROM pg_snapshot_xip(pg_current_snapshot()) AS x WHERE NOT EXISTS ("
        "SELECT 1 FROM pg_stat_activity a WHERE a.backend_xid = xid(x) "
        "AND a.datname <> current_database()))"),
    after_position="(xact_id, audit_id) > (:xact_id, :audit_id)",
    position_order="xact_id, audit_id",
    # The put's document is one more part of its statement (put_live_memory_recorded), whose
    # trigger fires after it: the claim alone, no body to return.
    claim_memory_document=", document_version = version + 1",
    memory_documents_probe=("SELECT 1 AS found FROM pg_attribute WHERE attrelid = "
                            "to_regclass('memories') AND attname = 'document_version' "
                            "AND NOT attisdropped"),
    item_numbers_probe=("SELECT 1 AS found WHERE to_regclass('context_item_numbers') "
                        "IS NOT NULL"),
    numbers_commit_out_of_order=True,
    # ALTER SEQUENCE takes the sequence's SHARE ROW EXCLUSIVE lock, which waits for every
    # transaction that drew from it (nextval holds ROW EXCLUSIVE to its end) and holds back
    # every draw until this one ends: no number can be drawn between reading the sequence
    # and setting it (context.sql's raise_item_numbers), as with setval alone.
    item_numbers_hold="ALTER SEQUENCE context_item_numbers NO CYCLE",
)
