"""The names of the settings and where their config file is: what a process must look at to
know whether it has any settings beyond the defaults.

``ctxdb.settings`` loads and checks the settings; the remote hook's short path
(``hooks.remote_entry``) only needs to know that nothing but ``CTXDB_URL`` and
``CTXDB_TOKEN`` (and settings no value of which can be wrong) is set, without importing the
settings' modules. ``SETTING_NAMES`` lists ``settings_sources.SETTINGS_HELP`` in its order
(a test keeps the two equal).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing's own import costs the remote hook more than this module
if TYPE_CHECKING:
    from collections.abc import Mapping

ENV_PREFIX = "CTXDB_"
CONFIG_ENV = "CTXDB_CONFIG"
SETTING_NAMES = (
    "url", "context_window", "clear_threshold", "heartbeat_interval", "stale_after",
    "max_projects", "max_instances_per_project", "sqlite_synchronous", "busy_timeout_ms",
    "sqlite_group_commit", "max_content_bytes", "pack_budget_fraction", "auto_migrate",
    "pool_min_size", "pool_max_size", "memory_ttl_semantic", "memory_ttl_episodic",
    "memory_ttl_procedural", "retention_instances", "retention_session_events",
    "retention_context_items", "retention_context_priorities", "retention_idempotency_keys",
    "resume_window", "resume_siblings", "resume_share", "recall", "recall_max_chars", "actor",
    "pg_connect_timeout", "pg_statement_timeout", "pg_socket_timeout", "token",
)


def home(env: Mapping[str, str]) -> str:
    # The HOME of the environment given, not of this process: load_settings(env=...) must not
    # read another environment's files.
    return env["HOME"] if env.get("HOME") else os.path.expanduser("~")


def config_file(env: Mapping[str, str]) -> str:
    """The config file read when ``CTXDB_CONFIG`` names none (if it exists)."""
    base = env.get("XDG_CONFIG_HOME") or os.path.join(home(env), ".config")
    return os.path.join(os.path.expanduser(base), "ctxdb", "config.toml")
