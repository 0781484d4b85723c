"""The seed's public API, kept working on top of the service layer.

``SQLiteContextLoader``, ``MultiProjectManager``, ``TokenManager`` and ``AsyncContextLoader``
take ``db_path``: a SQLite path (relative paths are resolved at construction) or a
``postgresql://`` URL. See ``docs/compat.md`` for the mapping onto the services.
"""

from ctxdb.compat.async_loader import AsyncContextLoader
from ctxdb.compat.loader import SQLiteContextLoader
from ctxdb.compat.manager import MultiProjectManager
from ctxdb.compat.tokens import TokenManager

__all__ = ["AsyncContextLoader", "MultiProjectManager", "SQLiteContextLoader", "TokenManager"]
