"""Row-level security: the database's own wall between projects, under the services' checks.

Only PostgreSQL has it (``storage/pg_row_security.py``); :meth:`Storage.row_security` of
another backend raises :class:`ctxdb.errors.UnsupportedFeatureError`. What is secured and why
is told in docs/server.md; the service that uses this is ``service/operations/row_security.py``.

A table *holds project data* when it has a ``project_id`` column, or a foreign key to a table
that holds project data (a memory's versions, a session's events, an audit entry's seal): the
tables are found in the catalog, not listed by hand, so a table a later migration adds cannot
be left out unnoticed.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

# The names of the two policies ctxdb puts on every table that holds project data.
APP_POLICY = "ctxdb_app_scope"
OWNER_POLICY = "ctxdb_owner_scope"


@dataclass(frozen=True)
class ProtectedTable:
    """A table that holds project data, and how row-level security stands on it.

    ``via`` is ``project_id`` for a table with that column, else ``<column> ->
    <parent>.<column>``: its rows belong to the project of the parent row they name.
    """

    name: str
    owner: str
    via: str
    enabled: bool
    forced: bool
    policies: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> roles

    @property
    def secured(self) -> bool:
        """Enabled and forced, with ctxdb's policy for an application role and for the owner
        (when the owner changed since, the owner's policy names someone else)."""
        return (self.enabled and self.forced and bool(self.policies.get(APP_POLICY))
                and self.owner in self.policies.get(OWNER_POLICY, ()))


@dataclass(frozen=True)
class RoleInfo:
    """A database role, and whether row-level security applies to it."""

    name: str
    superuser: bool
    bypass_rls: bool
    owns_tables: bool  # owns (or is a member of the owner of) a table that holds project data

    @property
    def escapes(self) -> str:
        """Why row-level security does not confine this role (empty: it does)."""
        if self.superuser:
            return f"{self.name} is a superuser"
        if self.bypass_rls:
            return f"{self.name} has BYPASSRLS"
        if self.owns_tables:
            return f"{self.name} owns the tables"
        return ""


@dataclass(frozen=True)
class RowSecurityState:
    tables: tuple[ProtectedTable, ...]
    app_roles: tuple[RoleInfo, ...]  # the roles ctxdb's application policies name
    connected: RoleInfo  # the role of this connection

    def to_dict(self) -> dict[str, Any]:
        return {"tables": {t.name: {"via": t.via, "enabled": t.enabled, "forced": t.forced,
                                    "secured": t.secured} for t in self.tables},
                "app_roles": [r.name for r in self.app_roles],
                "connected_role": self.connected.name}


class RowSecurity(abc.ABC):
    @abc.abstractmethod
    def secure(self, role: str, password: str | None) -> dict[str, Any]:
        """Create or update the application role ``role`` (never a superuser, without
        BYPASSRLS, owning nothing), grant it what ``ctxdb serve`` needs, and enable and force
        row-level security with ctxdb's policies on every table that holds project data. In
        one transaction; running it again changes nothing more. ``password`` (when given) is
        sent to the server already hashed (SCRAM), never in clear."""

    @abc.abstractmethod
    def applies_to(self, table: str) -> bool:
        """Whether row-level security filters this connection's reads of ``table``."""

    @abc.abstractmethod
    def state(self) -> RowSecurityState:
        """What is secured, and which roles row-level security applies to."""
