"""Audit seals in a bundle merge: each chain's seals placed once all are read (a chain is
ordered by its seals, not by entry ids), kept where the chain is new here, else the bundle's
chain verified and its entries sealed again over their content as stored here."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ctxdb.errors import BundleError
from ctxdb.service.operations.audit_chain import GENESIS, link_sha256
from ctxdb.service.operations.bundle_ids import project_name
from ctxdb.storage.bulk import find_row

if TYPE_CHECKING:
    from ctxdb.service.operations.bundle_merge import TableMerge


def place_seals(table: TableMerge, read: list[dict[str, Any]]) -> None:
    """Each chain's seals, once all are read (a chain is ordered by its seals, not by
    entry ids). Entries sealed here already keep their seals. The others are sealed at the
    end of their chain here: as the bundle holds them where the chain is new here and its
    entries unchanged (a copy, which verifies as its source does), else sealed again over
    the entries as stored here, once the bundle's chain is verified."""
    chains: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for seal in read:
        table.owner(seal)  # the entry it seals is the bundle's
        chains[str(seal["chain"])].append(seal)
    for chain in sorted(chains):
        seals = sorted(chains[chain], key=lambda seal: int(seal["seal_seq"]))
        hashes = [table.merge.audit_hashes[seal["audit_id"]] for seal in seals]
        unsealed = [index for index, seal in enumerate(seals) if find_row(
            table.tx, table.sql, {"audit_id": seal["audit_id"]}) is None]
        table.counts.skipped += len(seals) - len(unsealed)
        if not unsealed:
            continue
        head = table.tx.one("audit_chain_head", chain=chain)
        if head is None and all(entry[0] == entry[1] for entry in hashes):
            for seal in seals:
                table.insert(seal, seal)
            continue
        _verify_bundle_chain(chain, seals, hashes)
        _append(table, chain, [seals[i] for i in unsealed], [hashes[i][1] for i in unsealed],
                head, str(seals[-1]["chain_sha256"]))


def _verify_bundle_chain(chain: str, seals: list[dict[str, Any]],
                         hashes: list[tuple[str, str]]) -> None:
    """The chain as the bundle holds it, recomputed from the bundle's entries."""
    head = GENESIS
    for number, (seal, entry) in enumerate(zip(seals, hashes, strict=True), start=1):
        if seal["seal_seq"] != number or seal["row_sha256"] != entry[0] \
                or seal["chain_sha256"] != link_sha256(head, entry[0]):
            raise BundleError(
                f"the bundle's audit chain of {project_name(chain or None)} does not verify at "
                f"seal {number}; its entries are sealed again here (they get new ids, or "
                "join a chain this database has), which would hide that; nothing was "
                "imported", chain=chain, seal_seq=number)
        head = str(seal["chain_sha256"])


def _append(table: TableMerge, chain: str, seals: list[dict[str, Any]], entries: list[str],
            head: Any, bundle_head: str) -> None:
    """Seals of ``entries`` (their hashes as stored here) after the chain's head here."""
    number = 0 if head is None else int(head["seal_seq"])
    link = GENESIS if head is None else str(head["chain_sha256"])
    for seal, entry in zip(seals, entries, strict=True):
        number += 1
        link = link_sha256(link, entry)
        placed = {**seal, "seal_seq": number, "row_sha256": entry, "chain_sha256": link}
        table.insert(placed, placed)
    table.options.resealed[chain] = {"seals": len(seals), "bundle_head": bundle_head,
                                    "head": link}
