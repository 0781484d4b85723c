"""Settings: loaded once per entry point from ``CTXDB_*`` variables and an optional TOML file.

Precedence, lowest first: built-in defaults, the config file, environment variables, explicit
overrides passed by the caller. The resulting :class:`Settings` is passed down explicitly;
no module keeps a global copy.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ctxdb.database_url import database_kind, normalised_url, server_refusal
from ctxdb.domain.models import PRIORITY_ORDER, choices
from ctxdb.domain.render import MAX_INJECTION_CHARS
from ctxdb.domain.validation import MAX_INTEGER
from ctxdb.errors import ConfigError
from ctxdb.settings_names import CONFIG_ENV as CONFIG_ENV  # where callers look
from ctxdb.settings_names import ENV_PREFIX
from ctxdb.settings_names import config_file as _config_file
from ctxdb.settings_names import home as _home
from ctxdb.settings_sources import SETTINGS_HELP as SETTINGS_HELP  # where callers look
from ctxdb.settings_sources import Setting as Setting
from ctxdb.settings_sources import from_env, from_file

if TYPE_CHECKING:
    from pathlib import Path

SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")
PRIORITY_NAMES = tuple(choices(PRIORITY_ORDER))
MIN_RECALL_CHARS = 300  # a heading and one line


# pathlib is imported where a Path is made, not at the top: a hook process forwarding to a
# server (CTXDB_URL=http(s)://…) without a config file never makes one, and the import costs
# it more than its request (docs/benchmarks.md).


def default_data_dir(env: Mapping[str, str]) -> Path:
    from pathlib import Path

    base = env.get("XDG_DATA_HOME") or os.path.join(_home(env), ".local", "share")
    return Path(base).expanduser().resolve() / "ctxdb"


def default_config_file(env: Mapping[str, str]) -> Path:
    from pathlib import Path

    return Path(_config_file(env))


# Named tuples rather than dataclasses: every hook process builds these classes, and a
# dataclass of 40 fields costs it more than its whole database work (docs/hooks.md).
class Settings(NamedTuple):
    url: str = ""
    context_window: int = 200_000
    clear_threshold: float = 0.85
    heartbeat_interval: float = 30.0
    stale_after: float = 600.0
    max_projects: int = 100
    max_instances_per_project: int = 1_000
    sqlite_synchronous: str = "FULL"
    busy_timeout_ms: int = 30_000
    # SQLite group commit (docs/configuration.md); None: on for `ctxdb serve` only.
    sqlite_group_commit: bool | None = None
    max_content_bytes: int = 1024 * 1024
    pack_budget_fraction: float = 0.25
    auto_migrate: bool | None = None
    pool_min_size: int = 1
    # A hook or CLI process uses one connection; only the MCP server's threads share more.
    pool_max_size: int = 4
    # Lifecycle policy of memories: seconds until a memory of each type expires unless its
    # put names a TTL; 0 means never.
    memory_ttl_semantic: int = 0
    memory_ttl_episodic: int = 90 * 24 * 3600
    memory_ttl_procedural: int = 0
    # Retention (`ctxdb gc`, docs/retention.md): seconds after which ended instances are
    # removed, the events of closed sessions are removed, and context items of the listed
    # priorities are archived; 0 means never.
    retention_instances: int = 30 * 24 * 3600
    retention_session_events: int = 90 * 24 * 3600
    retention_context_items: int = 180 * 24 * 3600
    retention_context_priorities: str = "MEDIUM,LOW"
    # ... and after which the idempotency keys of creates are removed (a retry comes sooner).
    retention_idempotency_keys: int = 7 * 24 * 3600
    # Continuity (docs/hooks.md): a new session is offered the latest handoff saved in the
    # last ``resume_window`` seconds (0: never) and told of the live siblings; both blocks
    # together take at most ``resume_share`` of the client's injection limit.
    resume_window: int = 3 * 24 * 3600
    resume_siblings: bool = True
    resume_share: float = 0.4
    # Prompt-time recall (docs/hooks.md): UserPromptSubmit injects the records that match the
    # prompt and were not injected yet in the generation, in at most ``recall_max_chars``.
    recall: bool = True
    recall_max_chars: int = 1_500
    # load_settings reads $USER of the environment it is given; this default, of the process
    # when ctxdb.settings was imported, is for settings made without it.
    actor: str = "user:" + os.environ.get("USER", "unknown")
    # PostgreSQL waits, in seconds (docs/configuration.md): nothing waits on the server without
    # bound. Connecting (a refused server fails at once, a silent one after this); one
    # statement, ended by the server (0: no limit); and one answer of the server, after which
    # the client gives the connection up (a frozen server or a lost network: the server's own
    # statement timeout cannot help then). Also the TCP keepalive and tcp_user_timeout.
    pg_connect_timeout: float = 1.0
    pg_statement_timeout: float = 30.0
    pg_socket_timeout: float = 40.0
    # The bearer token a remote client sends to the server that ``url`` names (http(s)://…).
    # Kept out of the repr: settings end up in tracebacks and logs.
    token: str = ""

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self,
                                                                      strict=True)
                          if name != "token")
        return f"Settings({shown})"

    @property
    def is_postgres(self) -> bool:
        return database_kind(self.url) == "postgres"

    @property
    def is_server(self) -> bool:
        """The URL names a ctxdb server (http(s)://…), which only remote clients talk to."""
        return database_kind(self.url) == "server"

    @property
    def sqlite_path(self) -> Path:
        """Absolute path of the SQLite file; relative paths are resolved once, here. A
        server URL is no file: asking for it is the refusal that says so."""
        if self.is_server:
            raise server_refusal(self.url)
        from pathlib import Path

        sqlite_url = self.url[:len("sqlite:///")].lower() == "sqlite:///"
        raw = self.url[len("sqlite:///"):] if sqlite_url else self.url
        return Path(raw).expanduser().resolve()

    @property
    def migrates_automatically(self) -> bool:
        """Embedded SQLite upgrades itself; a shared PostgreSQL is upgraded on purpose."""
        if self.auto_migrate is not None:
            return self.auto_migrate
        return not self.is_postgres

    @property
    def archivable_priorities(self) -> tuple[str, ...]:
        """The priorities whose old context items gc archives (CRITICAL only if listed)."""
        names = (p.strip().upper() for p in self.retention_context_priorities.split(","))
        return tuple(dict.fromkeys(name for name in names if name))

    def replace(self, **changes: Any) -> Settings:
        unknown = sorted(set(changes) - set(self._fields))
        if unknown:  # what a keyword the class does not take raises
            raise TypeError(f"Settings got unexpected settings: {', '.join(unknown)}")
        merged = self._replace(**changes)
        merged.validate()
        return merged.with_settled_url() if "url" in changes else merged

    def with_settled_url(self) -> Settings:
        """The settings with the URL as ctxdb keeps and shows it: a SQLite path made absolute
        (resolved once, here: changing directory later must not move the database), a
        PostgreSQL URL with the scheme libpq reads."""
        url = normalised_url(self.url) if self.is_postgres or self.is_server \
            else str(self.sqlite_path)
        return self._replace(url=url)

    def validate(self) -> None:
        """Refuse impossible values; the error's ``setting`` detail names the culprit."""
        if not self.url:
            raise _invalid("url", "database URL is empty")
        if "\x00" in self.url:
            raise _invalid("url", "database URL contains a NUL byte")
        database_kind(self.url)
        if self.sqlite_synchronous not in SYNCHRONOUS_MODES:
            raise _invalid(
                "sqlite_synchronous",
                f"sqlite_synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, "
                f"got {self.sqlite_synchronous!r}",
            )
        for name in ("clear_threshold", "pack_budget_fraction", "resume_share"):
            if not 0 < getattr(self, name) <= 1:
                raise _invalid(name, f"{name} must be in (0, 1], got {getattr(self, name)}")
        for name in ("context_window", "max_projects", "max_instances_per_project",
                     "max_content_bytes", "pool_min_size", "pool_max_size"):
            if getattr(self, name) < 1:
                raise _invalid(name, f"{name} must be at least 1, got {getattr(self, name)}")
        if self.context_window > MAX_INTEGER:  # an instance stores it in an INTEGER column
            raise _invalid("context_window", f"context_window must be in 1..{MAX_INTEGER} "
                                             f"tokens, got {self.context_window}")
        if self.busy_timeout_ms < 30_000:
            raise _invalid("busy_timeout_ms",
                           "busy_timeout_ms below 30000 lets writers fail with 'locked'")
        for name in ("memory_ttl_semantic", "memory_ttl_episodic", "memory_ttl_procedural"):
            if getattr(self, name) < 0:
                raise _invalid(name, f"{name} must be 0 (never) or more seconds, "
                                     f"got {getattr(self, name)}")
        for name in ("retention_instances", "retention_session_events",
                     "retention_context_items", "retention_idempotency_keys", "resume_window"):
            if getattr(self, name) < 0:
                raise _invalid(name, f"{name} must be 0 (never) or more seconds, "
                                     f"got {getattr(self, name)}")
        unknown = set(self.archivable_priorities) - set(PRIORITY_NAMES)
        if unknown:
            raise _invalid("retention_context_priorities",
                           "retention_context_priorities must list priorities among "
                           f"{', '.join(PRIORITY_NAMES)}, "
                           f"got {self.retention_context_priorities!r}")
        if not MIN_RECALL_CHARS <= self.recall_max_chars <= MAX_INJECTION_CHARS:
            raise _invalid("recall_max_chars", "recall_max_chars must be in "
                           f"{MIN_RECALL_CHARS}..{MAX_INJECTION_CHARS} characters, "
                           f"got {self.recall_max_chars}")
        for name in ("heartbeat_interval", "stale_after"):
            if getattr(self, name) <= 0:
                raise _invalid(name, f"{name} must be positive, got {getattr(self, name)}")
        self._validate_postgres_waits()

    def _validate_postgres_waits(self) -> None:
        for name in ("pg_connect_timeout", "pg_socket_timeout"):
            if not 0 < getattr(self, name) < math.inf:
                raise _invalid(name, f"{name} must be a positive number of seconds, "
                                     f"got {getattr(self, name)}")
        if not 0 <= self.pg_statement_timeout < math.inf:
            raise _invalid("pg_statement_timeout",
                           "pg_statement_timeout must be 0 (no limit) or more seconds, "
                           f"got {self.pg_statement_timeout}")
        if self.pg_socket_timeout <= self.pg_statement_timeout:
            # Else the client would give up on a statement the server is still allowed to run.
            raise _invalid("pg_socket_timeout",
                           "pg_socket_timeout must be longer than pg_statement_timeout "
                           f"({self.pg_socket_timeout} <= {self.pg_statement_timeout})")


def _invalid(setting: str, message: str) -> ConfigError:
    return ConfigError(message, setting=setting)


def load_settings(
    env: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings for one entry point.

    ``config_file`` defaults to ``$CTXDB_CONFIG`` or ``~/.config/ctxdb/config.toml`` when it
    exists. Explicit ``overrides`` whose value is ``None`` are ignored.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # where each value came from, to name it in errors

    def take(found: dict[str, Any], source: Callable[[str], str]) -> None:
        values.update(found)
        sources.update({name: source(name) for name in found})

    explicit = config_file or env.get(CONFIG_ENV)
    if explicit or os.path.exists(_config_file(env)):
        from pathlib import Path

        path = Path(explicit or _config_file(env))
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        take(from_file(path), lambda _name: str(path))
    take(from_env(env), lambda name: ENV_PREFIX + name.upper())
    take({k: v for k, v in overrides.items() if v is not None}, lambda name: f"argument {name}")
    if not values.get("url"):
        values["url"] = str(default_data_dir(env) / "ctxdb.db")
    values.setdefault("actor", "user:" + (env.get("USER") or "unknown"))
    settings = Settings(**values)
    try:
        settings.validate()
    except ConfigError as exc:
        source = sources.get(exc.details.get("setting", ""))
        if source is None:
            raise
        raise ConfigError(f"{source}: {exc.message}", **exc.details) from None
    return settings.with_settled_url()
