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
from ctxdb.domain.validation import MAX_BIGINT, MAX_INTEGER
from ctxdb.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

ENV_PREFIX = "CTXDB_"
CONFIG_ENV = "CTXDB_CONFIG"
SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")
PRIORITY_NAMES = tuple(choices(PRIORITY_ORDER))
MIN_RECALL_CHARS = 300  # a heading and one line


# pathlib is imported where a Path is made, not at the top: a hook process forwarding to a
# server (CTXDB_URL=http(s)://…) without a config file never makes one, and the import costs
# it more than its request (docs/benchmarks.md).


def _home(env: Mapping[str, str]) -> str:
    # The HOME of the environment given, not of this process: load_settings(env=...) must not
    # read another environment's files.
    return env["HOME"] if env.get("HOME") else os.path.expanduser("~")


def default_data_dir(env: Mapping[str, str]) -> Path:
    from pathlib import Path

    base = env.get("XDG_DATA_HOME") or os.path.join(_home(env), ".local", "share")
    return Path(base).expanduser().resolve() / "ctxdb"


def default_config_file(env: Mapping[str, str]) -> Path:
    from pathlib import Path

    return Path(_config_file(env))


def _config_file(env: Mapping[str, str]) -> str:
    base = env.get("XDG_CONFIG_HOME") or os.path.join(_home(env), ".config")
    return os.path.join(os.path.expanduser(base), "ctxdb", "config.toml")


class Setting(NamedTuple):
    """Describes one setting: its environment variable, type and meaning (shown in --help)."""

    name: str
    kind: type
    help: str

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


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


def _from_file(path: Path) -> dict[str, Any]:
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


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values = {}
    for setting in SETTINGS_HELP:
        raw = env.get(setting.env_var)
        if raw is not None and raw != "":
            values[setting.name] = _convert(setting, raw, setting.env_var)
    return values


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
        take(_from_file(path), lambda _name: str(path))
    take(_from_env(env), lambda name: ENV_PREFIX + name.upper())
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
