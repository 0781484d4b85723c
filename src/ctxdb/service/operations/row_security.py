"""``ctxdb db secure`` and the doctor's ``row_security`` check: PostgreSQL's row-level
security as a second wall between projects, under the server's own checks (docs/server.md).

The rules live here; the catalog work in ``storage/pg_row_security.py``. The policies are made
by ``db secure`` rather than by a migration: they name the application role, which is the
operator's choice, and a migration that forced row-level security on every PostgreSQL
database would change what each existing user's connections see. A table a later migration
adds is not silently left open: ``ctxdb serve``'s role has no privilege on it until ``db
secure`` runs again (so the server fails rather than leaks), and doctor fails naming it.
"""

from __future__ import annotations

import re
from typing import Any

from ctxdb.errors import UnsupportedFeatureError, ValidationError
from ctxdb.service.common import Service
from ctxdb.service.operations.doctor_report import FAIL, PASS, WARN, Check, listed
from ctxdb.storage.row_security import APP_POLICY, RowSecurityState

DEFAULT_ROLE = "ctxdb_app"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SETUP = ("as the database owner run `ctxdb db secure --role {role}`, then run `ctxdb serve` "
          "connected as {role} (docs/server.md)")


class RowSecurityService(Service):
    def secure(self, role: str = DEFAULT_ROLE, password: str | None = None) -> dict[str, Any]:
        """Create or update the application role and secure every table of project data
        (see ``RowSecurity.secure``). The result never holds the password."""
        if not isinstance(role, str) or not _ROLE_NAME.match(role):
            raise ValidationError(f"role must be a lower-case SQL name (letters, digits, _; "
                                  f"at most 63), got {role!r}", role=repr(role))
        if password is not None and (not password or "\x00" in password):
            raise ValidationError("password must not be empty or hold a NUL byte")
        return self.storage.row_security().secure(role, password)

    def applies_to(self, table: str) -> bool:
        """Whether row-level security filters this connection's reads of ``table``."""
        try:
            return self.storage.row_security().applies_to(table)
        except UnsupportedFeatureError:
            return False

    def check(self) -> Check | None:
        """The doctor's check; ``None`` on a backend without row-level security."""
        try:
            state = self.storage.row_security().state()
        except UnsupportedFeatureError:
            return None
        if not state.tables:
            return None  # nothing migrated: the schema check says so
        return _judged(state)


def server_warning(service: RowSecurityService) -> str | None:
    """What ``ctxdb serve`` should warn of at startup about its own connection: row-level
    security not set up, or set up but not confining the server's role; ``None`` when the
    server is confined, and on a backend without row-level security."""
    try:
        state = service.storage.row_security().state()
    except UnsupportedFeatureError:
        return None
    if not state.tables:
        return None
    judged = _judged(state)
    if judged.status == WARN:
        return judged.detail
    if judged.status == FAIL:
        return f"row-level security is not in order: {judged.detail}"
    if escapes := state.connected.escapes:
        return (f"this server connects as {state.connected.name} ({escapes}): row-level "
                f"security does not confine it; connect as {state.app_roles[0].name} "
                "(docs/server.md)")
    return None


def _judged(state: RowSecurityState) -> Check:
    data = state.to_dict()
    open_tables = [t.name for t in state.tables if not t.secured]
    named = {roles for t in state.tables if (roles := t.policies.get(APP_POLICY))}
    role = state.app_roles[0].name if state.app_roles else DEFAULT_ROLE
    if len(open_tables) == len(state.tables) and not named:
        return Check("row_security", WARN, "row-level security is not set up: the server's "
                     "project checks are the only wall between projects; "
                     + _SETUP.format(role=role), data=data)
    if open_tables:
        return Check("row_security", FAIL, f"tables with project data without row-level "
                     f"security (enabled, forced, ctxdb's policies for the application role "
                     f"and the owner): {listed(open_tables)}; a migration may have added them "
                     f"since: run `ctxdb db secure --role {role}` again", data=data)
    if len(named) != 1 or len(state.app_roles) != 1:
        return Check("row_security", FAIL, "the tables' policies do not name one existing "
                     f"application role ({listed(sorted({r for n in named for r in n}))}): "
                     f"run `ctxdb db secure --role {role}` again", data=data)
    if escapes := state.app_roles[0].escapes:
        return Check("row_security", FAIL, f"the application role is not confined: {escapes}; "
                     "use a role that is not a superuser, has no BYPASSRLS and owns nothing "
                     "(`ctxdb db secure --role <new name>`)", data=data)
    detail = (f"{len(state.tables)} tables with project data: row-level security enabled and "
              f"forced; application role {role} is confined (not a superuser, no BYPASSRLS, "
              "owns nothing)")
    if state.connected.name != role:
        detail += (f"; this connection ({state.connected.name}) is not the application role: "
                   f"`ctxdb serve` must connect as {role}")
    return Check("row_security", PASS, detail, data=data)
