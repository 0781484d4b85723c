"""``ctxdb.connect(url, token=…)``: the facade of ``ctxdb.open()`` over a ``ctxdb serve``.

The same services by the same names (``db.context.store``, ``db.tasks.claim``, …), taking the
same arguments and answering the same records, over the HTTP API (docs/api.md); errors are
the same :mod:`ctxdb.errors` classes. A script moves from a local database to a team server
by changing the line that opens it; the ``ctxdb`` CLI runs its everyday commands through it
when ``CTXDB_URL`` is ``http(s)://…``. Needs the ``client`` extra (``pip install
'ctxdb[client]'``: httpx). What differs: ``actor`` is taken but left unused (the server audits
every write as the token), ``context.pack`` answers the pack's JSON form, a service or method
of the database file itself (backups, migrations, retention, …) raises
:class:`ctxdb.errors.LocalOnlyError`, and a record named
by id alone (a phase, an item, a task) is looked up in the connection's project: the one
given to :func:`connect`, else the only project the token sees, else pass ``project_id``.
"""

from __future__ import annotations

from typing import Any

from ctxdb.client import records as r
from ctxdb.client import workflow as w
from ctxdb.client.records import not_offered
from ctxdb.client.transport import Transport


class RemoteCtxdb:
    """The services of a ``ctxdb serve``, named as :class:`ctxdb.service.Ctxdb` names them."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        t = transport
        self.projects, self.phases = r.RemoteProjects(t), r.RemotePhases(t)
        self.instances, self.tokens = r.RemoteInstances(t), r.RemoteTokens(t)
        self.context, self.memories = r.RemoteContext(t), r.RemoteMemories(t)
        self.tasks, self.messages = w.RemoteTasks(t), w.RemoteMessages(t)
        self.conversations, self.approvals = w.RemoteConversations(t), w.RemoteApprovals(t)
        self.commands, self.checkpoints = w.RemoteCommands(t), w.RemoteCheckpoints(t)
        self.search, self.audit_chain = w.RemoteSearch(t), w.RemoteAuditChain(t)
        self.retention, self.observations = r.RemoteRetention(t), w.RemoteObservations(t)
        self.sessions, self.continuity = r.RemoteSessions(t), r.RemoteContinuity(t)

    @property
    def url(self) -> str:
        return self.transport.url

    def __getattr__(self, name: str) -> Any:
        # Only reached for a service of the local facade alone (db.bundles, db.retention, …).
        if name.startswith("_") or name == "transport":
            raise AttributeError(name)
        raise not_offered(f"db.{name}", self.transport.url)

    def audit_log(self, project_id: str | None = None, entity_id: str | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
        """The project's newest audit entries first (a server shows one project's)."""
        return list(self.transport.call(
            "GET", self.transport.path(project_id, "audit"),
            params={"entity_id": entity_id, "limit": limit}))

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RemoteCtxdb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(url: str, token: str, *, project_id: str | None = None,
            timeout: float = 30.0) -> RemoteCtxdb:
    """The services of the server at ``url`` (``http(s)://host:port``), as ``token``."""
    return RemoteCtxdb(Transport(url, token, timeout=timeout, project_id=project_id))
