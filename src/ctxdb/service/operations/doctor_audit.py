"""The doctor's checks of the audit log and of what is built on it: its hash chains
(docs/audit.md), and the change feed (``GET /v1/events``, docs/server.md): the key that seals
its event ids, and on PostgreSQL the trigger whose NOTIFY wakes the servers' listeners (both
made by migration 0016)."""

from __future__ import annotations

from ctxdb.service.operations.doctor_report import FAIL, PASS, WARN, Check, listed
from ctxdb.settings import Settings
from ctxdb.storage import Storage

SEALS_TABLE = "audit_seals"  # the audit log's hash chains (migration 0011)
KEYS_TABLE = "change_feed_keys"  # the change feed's sealing key (migration 0016)


def check_audit_chain(storage: Storage, settings: Settings) -> Check | None:
    """The audit log's hash chains, recomputed (docs/audit.md). Nothing to fix: a changed
    entry cannot be changed back by ctxdb; the check says which it is."""
    if not storage.health().has_table(SEALS_TABLE):
        return None  # a schema from before the chains
    from ctxdb.service.operations.audit_chain import AuditChainService

    result = AuditChainService(storage, settings).verify()
    data = {key: result[key] for key in ("sealed", "unsealed", "problem_count")}
    detail = (f"{result['sealed']} sealed audit entries in {len(result['chains'])} "
              f"chain(s), {result['unsealed']} not sealed yet")
    if result["ok"]:
        return Check("audit_chain", PASS, detail + " (`ctxdb audit seal` or `ctxdb gc` "
                     "seals them)" if result["unsealed"] else detail, data=data)
    return Check("audit_chain", FAIL, f"{detail}; {result['problem_count']} problem(s): "
                 f"{listed(result['problems'])}", data=data)


def check_change_feed(storage: Storage) -> Check | None:
    """Fails without the sealing key (the feed cannot give an event id); warns when the
    NOTIFY trigger is missing, disabled or changed: nothing is lost then, but every change
    waits for the listeners' one-second fallback read."""
    health = storage.health()
    if not health.has_table(KEYS_TABLE):
        return None  # a schema from before the feed
    has_key = bool(storage.read(lambda tx: tx.value("change_feed_key_present")))
    wakeup = health.change_feed_wakeup_problems()
    data = {"sealing_key": has_key, "wakeup_problems": wakeup}
    if not has_key:
        return Check("change_feed", FAIL, f"the change feed's sealing key is missing from "
                     f"{KEYS_TABLE} (key_id 1): GET /v1/events cannot give event ids; restore "
                     "the table from a backup of this database (a new key would make every "
                     "id clients hold unknown)", data=data)
    if wakeup:
        return Check("change_feed", WARN, "; ".join(wakeup) + ": the servers' listeners are "
                     "not woken on writes, so changes reach /v1/events only by their "
                     "one-second fallback read (the trigger is migration 0016's "
                     "audit_log_notify)", data=data)
    woken = ("the NOTIFY trigger wakes the servers' listeners" if wakeup is not None
             else "the servers poll the database file")
    return Check("change_feed", PASS, f"the sealing key is there; {woken}", data=data)
