"""Where settings come from: the list of settings (their names, kinds and meanings, shown in
``--help``), and reading them from a TOML config file and ``CTXDB_*`` variables, each raw
value converted to its setting's kind or refused with an error naming its source.
``settings.load_settings`` puts them together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ctxdb.domain.validation import MAX_BIGINT
from ctxdb.errors import ConfigError
from ctxdb.settings_names import ENV_PREFIX

if TYPE_CHECKING:
    from pathlib import Path



class Setting(NamedTuple):
    """Describes one setting: its environment variable, type and meaning (shown in --help)."""

    name: str
    kind: type
    help: str

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


SETTINGS_HELP: tuple[Setting, ...] = (
    Setting("url", str, "database: a SQLite path, sqlite:///path, or postgresql://…; or a "
            "ctxdb server, http(s)://host:port, for `ctxdb hook` and the everyday commands"),
    Setting("context_window", int, "default context window of an instance, in tokens"),
    Setting("clear_threshold", float, "fraction of the window at which to clear and reload"),
    Setting("heartbeat_interval", float, "seconds between instance heartbeats"),
    Setting("stale_after", float, "seconds without heartbeat before an instance is crashed"),
    Setting("max_projects", int, "most projects that may exist at once (not archived)"),
    Setting("max_instances_per_project", int, "most live instances per project"),
    Setting("sqlite_synchronous", str, "FULL (default, durable) or NORMAL (faster, riskier)"),
    Setting("busy_timeout_ms", int, "SQLite busy timeout in ms (at least 30000)"),
    Setting("sqlite_group_commit", bool, "SQLite: commit concurrent writes together"),
    Setting("max_content_bytes", int, "largest accepted context item, in bytes of JSON"),
    Setting("pack_budget_fraction", float, "share of the window a reload pack may fill"),
    Setting("auto_migrate", bool, "upgrade the schema on open (default: SQLite yes, PG no)"),
    Setting("pool_min_size", int, "PostgreSQL pool: connections kept open"),
    Setting("pool_max_size", int, "PostgreSQL pool: most connections"),
    Setting("memory_ttl_semantic", int, "seconds until a semantic memory expires (0: never)"),
    Setting("memory_ttl_episodic", int, "seconds until an episodic memory expires (0: never)"),
    Setting("memory_ttl_procedural", int,
            "seconds until a procedural memory expires (0: never)"),
    Setting("retention_instances", int,
            "gc: seconds after which completed/crashed instances are removed (0: never)"),
    Setting("retention_session_events", int,
            "gc: seconds after a session closed when its events are removed (0: never)"),
    Setting("retention_context_items", int,
            "gc: age in seconds at which context items are archived (0: never)"),
    Setting("retention_context_priorities", str,
            "gc: priorities whose old items are archived (default MEDIUM,LOW)"),
    Setting("retention_idempotency_keys", int,
            "gc: age in seconds at which idempotency keys are removed (0: never)"),
    Setting("resume_window", int,
            "seconds a handoff is offered to new sessions of its project (0: never)"),
    Setting("resume_siblings", bool, "tell a new session about the project's live sessions"),
    Setting("resume_share", float,
            "share of the injection limit the resume and siblings blocks may take"),
    Setting("recall", bool, "inject the records that match each prompt (UserPromptSubmit)"),
    Setting("recall_max_chars", int, "most characters of the block a prompt's recall injects"),
    Setting("actor", str, "who is recorded in the audit log for user actions"),
    Setting("pg_connect_timeout", float,
            "PostgreSQL: seconds to connect before the server counts as unreachable"),
    Setting("pg_statement_timeout", float,
            "PostgreSQL: seconds one statement may run on the server (0: no limit)"),
    Setting("pg_socket_timeout", float,
            "PostgreSQL: seconds to wait for any answer before the connection is dropped"),
    Setting("token", str, "bearer token sent to the ctxdb server that url names"),
)


def _convert(setting: Setting, raw: Any, source: str) -> Any:
    try:
        if setting.kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if not _lossless(setting.kind, raw):
            raise ValueError(raw)
        value = setting.kind(raw)
        if setting.kind is int and abs(value) > MAX_BIGINT:
            raise ConfigError(f"{source}: {setting.name} must be in "
                              f"-{MAX_BIGINT}..{MAX_BIGINT}, got {_shown(raw)}")
        # nan passes every range check below it (each comparison is false), and no setting
        # means anything by an infinite number of seconds or tokens.
        if setting.kind is float and not math.isfinite(value):
            raise ConfigError(f"{source}: {setting.name} must be a finite number, "
                              f"got {_shown(raw)}")
        if setting.name == "sqlite_synchronous":
            value = value.upper()
        return value
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source}: {setting.name} expects {setting.kind.__name__}, got {_shown(raw)}"
        ) from None


def _shown(raw: Any) -> str:
    """A setting's raw value for an error, cut short (a 5,000-digit number is not read)."""
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "…"


def _lossless(kind: type, raw: Any) -> bool:
    """Whether converting ``raw`` to ``kind`` keeps its meaning: a TOML 2.5 is not the int 2,
    ``true`` is not the number 1, and 5 is not the path "5"."""
    if isinstance(raw, str):
        return True
    if isinstance(raw, bool):
        return kind is bool
    if isinstance(raw, float):
        return kind is float
    if isinstance(raw, int):
        return kind in (int, float)
    return False


def from_file(path: Path) -> dict[str, Any]:
    import tomllib  # only when a config file exists: most hook processes have none

    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:  # binary is not TOML either
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config file {path} nests arrays or tables too deep to read "
                          "(no ctxdb setting is nested)") from None
    except OSError as exc:  # a folder, unreadable
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    table = data.get("ctxdb", data)
    known = {s.name: s for s in SETTINGS_HELP}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"config file {path}: unknown settings {', '.join(unknown)}")
    return {name: _convert(known[name], value, str(path)) for name, value in table.items()}


def from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values = {}
    for setting in SETTINGS_HELP:
        raw = env.get(setting.env_var)
        if raw is not None and raw != "":
            values[setting.name] = _convert(setting, raw, setting.env_var)
    return values
