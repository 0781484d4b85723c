"""Hash chains over the audit log: seal the entries written so far, verify the sealed ones.

Sealing an entry stores the SHA-256 of its canonical record (the checksum an export bundle
gives it, the same from SQLite and PostgreSQL) and a chain hash, the SHA-256 of the previous
seal's chain hash followed by this record's; each project has its own chain, and entries of
no project form the chain ``''``. A project's chain therefore travels whole with it in a
project bundle.

Writers of audit rows pay nothing for this: sealing is a separate step (``ctxdb audit seal``,
and every ``ctxdb gc``). It takes entries in id order as they become visible; on PostgreSQL an
entry with a lower id can commit after a higher one was sealed, and is then sealed later, so a
chain is ordered by its seals, not by entry ids.

Verifying recomputes every chain: an entry changed after it was sealed no longer matches its
seal, a removed entry leaves its seal alone, and a rewritten seal no longer follows from the
one before it. Consecutive removed entries are one finding, and when they are a chain's
newest sealed ones it says so: that is how writes lost after they were sealed look (a
damaged SQLite write-ahead log that recovery cut short, an older copy restored).

Someone who can write to the database could rewrite a whole chain from some point on; the
chain heads that ``verify`` prints change then, so keeping them elsewhere (a ticket, a commit
message) makes that visible too.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ctxdb.domain.validation import check_identifier
from ctxdb.progress import NoProgress, Progress
from ctxdb.service.common import Service
from ctxdb.service.operations.records import RowCodec
from ctxdb.storage import Row, Tx
from ctxdb.storage.dialect import LOCK_AUDIT_SEALING
from ctxdb.storage.tables import table_named

GENESIS = "0" * 64  # what the first seal of a chain follows
SEAL_BATCH = 2_000  # entries sealed per transaction
MAX_PROBLEMS = 100  # problems listed by verify (all are counted)

_AUDIT = table_named("audit_log")
assert _AUDIT is not None
_COLUMNS = tuple(column for column, _kind in _AUDIT.columns)
_CODEC = RowCodec(_AUDIT, _COLUMNS)


def entry_sha256(entry: Row) -> str:
    """The checksum of an audit entry's canonical record."""
    return _CODEC.checksum(_CODEC.canonical([entry[column] for column in _COLUMNS]))


def link_sha256(previous: str, entry_hash: str) -> str:
    return hashlib.sha256(f"{previous}{entry_hash}".encode("ascii")).hexdigest()


def chain_of(entry: Row) -> str:
    return str(entry["project_id"] or "")


@dataclass
class ChainState:
    seals: int = 0
    head: str = GENESIS
    # The run of consecutive seals whose entries are gone, reported as one problem when it
    # ends: (first seal, first entry id, last seal, last entry id).
    removed: tuple[int, int, int, int] | None = None


@dataclass
class Verification:
    chains: dict[str, ChainState] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    unsealed: int = 0

    def problem(self, text: str, count: int = 1) -> None:
        self.problem_count += count
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def end_removed_run(self, chain: str, last_of_chain: bool) -> None:
        """Report the run of sealed entries found gone just before (one problem a run)."""
        state = self.chains[chain]
        if state.removed is None:
            return
        first_seal, first_id, last_seal, last_id = state.removed
        state.removed = None
        where = _chain_name(chain)
        if first_seal == last_seal:
            self.problem(f"{where}: audit entry {first_id} was removed after it was sealed")
            return
        count = last_seal - first_seal + 1
        text = (f"{where}: audit entries {first_id} to {last_id} ({count} entries, seals "
                f"{first_seal} to {last_seal}) were removed after they were sealed")
        if last_of_chain:
            # What a lost tail of writes looks like (a damaged write-ahead log that SQLite's
            # recovery cut short, a restored older copy): the seals promise more than is there.
            text += ("; they were the newest sealed entries of the chain: acknowledged "
                     "writes were lost (a damaged write-ahead log, an older copy restored) "
                     "or deleted")
        self.problem(text, count)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.problem_count == 0,
            "sealed": sum(state.seals for state in self.chains.values()),
            "unsealed": self.unsealed,
            "chains": {chain: {"seals": state.seals, "head": state.head}
                       for chain, state in sorted(self.chains.items())},
            "problems": self.problems,
            "problem_count": self.problem_count,
        }


class AuditChainService(Service):
    def unsealed(self, project_id: str | None = None) -> int:
        """How many audit entries (of one project's chain) are not sealed yet."""
        scope = "" if project_id is None else check_identifier(project_id, "project_id")
        return int(self.storage.read(
            lambda tx: tx.value("count_unsealed_audit", project_id=scope)))

    def seal(self, project_id: str | None = None,
             progress: Progress | None = None) -> dict[str, Any]:
        """Seal every audit entry written so far (of one project's chain with
        ``project_id``); returns how many, and the heads of the chains."""
        sealed = self.seal_new(project_id, progress)
        scope = project_id or ""
        heads = self.storage.read(lambda tx: tx.all("audit_chain_heads"))
        return {"sealed": sealed,
                "chains": {row["chain"]: {"seals": row["seal_seq"], "head": row["chain_sha256"]}
                           for row in sorted(heads, key=lambda row: str(row["chain"]))
                           if not scope or row["chain"] == scope}}

    def seal_new(self, project_id: str | None = None,
                 progress: Progress | None = None) -> int:
        """:meth:`seal` without the report of the chain heads (a walk of every seal):
        how many entries it sealed."""
        progress = progress or NoProgress()
        unsealed = self.unsealed(project_id)
        progress.start("audit seal", unsealed)
        scope = project_id or ""
        sealed = after_id = 0
        while unsealed:
            count, after_id = self.storage.write(
                functools.partial(self._seal_batch, scope=scope, after_id=after_id))
            sealed += count
            progress.advance(count)
            if count < SEAL_BATCH:
                break
        return sealed

    @staticmethod
    def _seal_batch(tx: Tx, scope: str, after_id: int) -> tuple[int, int]:
        """Seals up to a batch of entries after ``after_id``; returns how many, and the id
        to go on after."""
        # Two sealers at once (PostgreSQL) would both extend the same chain heads.
        tx.lock(LOCK_AUDIT_SEALING)
        entries = tx.all("unsealed_audit", project_id=scope, after_id=after_id,
                         limit=SEAL_BATCH)
        heads: dict[str, ChainState] = {}
        for entry in entries:
            chain = chain_of(entry)
            if chain not in heads:
                head = tx.one("audit_chain_head", chain=chain)
                heads[chain] = ChainState() if head is None else ChainState(
                    int(head["seal_seq"]), str(head["chain_sha256"]))
            state = heads[chain]
            entry_hash = entry_sha256(entry)
            state.seals += 1
            state.head = link_sha256(state.head, entry_hash)
            tx.defer("insert_audit_seal", audit_id=entry["audit_id"], chain=chain_of(entry),
                     seal_seq=state.seals, row_sha256=entry_hash, chain_sha256=state.head)
        return len(entries), int(entries[-1]["audit_id"]) if entries else after_id

    def verify(self, project_id: str | None = None,
               progress: Progress | None = None) -> dict[str, Any]:
        """Recompute every chain (or one project's) from its entries; ``ok`` is false when a
        sealed entry was changed or removed, or a seal rewritten. Entries not sealed yet are
        only counted."""
        if project_id is not None:
            check_identifier(project_id, "project_id")
        progress = progress or NoProgress()

        def unit(tx: Tx) -> Verification:
            result = Verification(unsealed=int(tx.value("count_unsealed_audit",
                                                        project_id=project_id or "")))
            step = _counting(progress)
            for seal in tx.stream("audit_seals_in_order", chain=project_id):
                _verify_seal(result, seal)
                step()
            for chain in result.chains:  # a run of removed entries up to a chain's end
                result.end_removed_run(chain, last_of_chain=True)
            return result

        return self.storage.read(unit).to_dict()


def _counting(progress: Progress) -> Callable[[], None]:
    progress.start("audit verify", None)
    count = 0

    def step() -> None:
        nonlocal count
        count += 1
        if count % 1_000 == 0:
            progress.advance(1_000)

    return step


def _chain_name(chain: str) -> str:
    return f"chain {chain!r}" if chain else "the chain of entries of no project"


def _verify_seal(result: Verification, seal: Row) -> None:
    chain = str(seal["chain"])
    state = result.chains.setdefault(chain, ChainState())
    where = _chain_name(chain)
    audit_id = seal["audit_id"]
    if seal["seal_seq"] != state.seals + 1:
        result.end_removed_run(chain, last_of_chain=False)
        result.problem(f"{where}: seal {state.seals + 1} is missing (the next one is "
                       f"{seal['seal_seq']}): seals were removed")
    if seal["entry_id"] is None:
        seal_seq, entry_id = int(seal["seal_seq"]), int(audit_id)
        first_seal, first_id = state.removed[:2] if state.removed else (seal_seq, entry_id)
        state.removed = (first_seal, first_id, seal_seq, entry_id)
    else:
        result.end_removed_run(chain, last_of_chain=False)
        entry = {column: seal[column] for column in _COLUMNS if column != "audit_id"}
        entry["audit_id"] = seal["entry_id"]
        if entry_sha256(entry) != seal["row_sha256"]:
            result.problem(f"{where}: audit entry {audit_id} was changed after it was sealed")
    if link_sha256(state.head, seal["row_sha256"]) != seal["chain_sha256"]:
        result.problem(f"{where}: seal {seal['seal_seq']} (entry {audit_id}) does not follow "
                       "from the seal before it: the seals were rewritten")
    state.seals = int(seal["seal_seq"])
    state.head = str(seal["chain_sha256"])
