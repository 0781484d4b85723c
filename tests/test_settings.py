"""Settings: defaults, the config file, environment variables, explicit overrides, validation.

These tests need no database: settings are plain values built from an explicit environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ctxdb.errors import ConfigError
from ctxdb.settings import Settings, load_settings


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def env_of(home: Path, **variables: str) -> dict[str, str]:
    """An environment with its own HOME, so the user's real config file is never read."""
    return {"HOME": str(home), **variables}


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(home: Path) -> None:
    settings = load_settings(env=env_of(home))
    expected = home / ".local" / "share" / "ctxdb" / "ctxdb.db"
    assert Path(settings.url).is_absolute()
    assert settings.sqlite_path == expected.resolve()
    assert settings.context_window == 200_000
    assert settings.clear_threshold == 0.85
    assert settings.heartbeat_interval == 30
    assert settings.stale_after == 600
    assert settings.sqlite_synchronous == "FULL"
    assert settings.busy_timeout_ms == 30_000
    assert settings.max_instances_per_project == 1_000
    assert settings.pack_budget_fraction == 0.25
    assert not settings.is_postgres
    assert settings.migrates_automatically


def test_default_path_follows_xdg_data_home(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = load_settings(env=env_of(home, XDG_DATA_HOME=str(data)))
    assert settings.sqlite_path == (data / "ctxdb" / "ctxdb.db").resolve()
    assert Path(settings.url) == settings.sqlite_path


def test_config_file_then_environment_then_arguments(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "ctxdb.toml", """
[ctxdb]
context_window = 1000
clear_threshold = 0.7
stale_after = 120.5
""")
    env = env_of(home, CTXDB_CONFIG=str(config), CTXDB_CONTEXT_WINDOW="2000",
                 CTXDB_MAX_PROJECTS="7")
    settings = load_settings(env=env, max_projects=9, heartbeat_interval=None)
    assert settings.context_window == 2_000  # the environment beats the file
    assert settings.clear_threshold == 0.7  # the file beats the default
    assert settings.stale_after == 120.5
    assert settings.max_projects == 9  # an explicit argument beats the environment
    assert settings.heartbeat_interval == 30  # None means "not given"


def test_default_config_file_location(home: Path, tmp_path: Path) -> None:
    write_config(home / ".config" / "ctxdb" / "config.toml", "max_projects = 3\n")
    assert load_settings(env=env_of(home)).max_projects == 3
    xdg = tmp_path / "xdg"
    write_config(xdg / "ctxdb" / "config.toml", "max_projects = 4\n")
    assert load_settings(env=env_of(home, XDG_CONFIG_HOME=str(xdg))).max_projects == 4


def test_explicit_config_file_argument(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "given.toml", "context_window = 4096\n")
    assert load_settings(env=env_of(home), config_file=config).context_window == 4_096


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("CTXDB_CONTEXT_WINDOW", "lots", "CTXDB_CONTEXT_WINDOW"),
        ("CTXDB_CLEAR_THRESHOLD", "high", "CTXDB_CLEAR_THRESHOLD"),
        ("CTXDB_AUTO_MIGRATE", "maybe", "CTXDB_AUTO_MIGRATE"),
        ("CTXDB_CLEAR_THRESHOLD", "1.5", "CTXDB_CLEAR_THRESHOLD"),
        ("CTXDB_CONTEXT_WINDOW", "0", "CTXDB_CONTEXT_WINDOW"),
        ("CTXDB_BUSY_TIMEOUT_MS", "1000", "CTXDB_BUSY_TIMEOUT_MS"),
        ("CTXDB_SQLITE_SYNCHRONOUS", "off", "CTXDB_SQLITE_SYNCHRONOUS"),
        ("CTXDB_STALE_AFTER", "-1", "CTXDB_STALE_AFTER"),
        ("CTXDB_PACK_BUDGET_FRACTION", "0", "CTXDB_PACK_BUDGET_FRACTION"),
        ("CTXDB_URL", "db\x00.sqlite", "CTXDB_URL"),
    ],
)
def test_bad_environment_values_name_the_variable(
    home: Path, variable: str, value: str, named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env=env_of(home, **{variable: value}))


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("CTXDB_CONTEXT_WINDOW", "99999999999999999999",
     "context_window must be in -9223372036854775807..9223372036854775807"),
    ("CTXDB_CONTEXT_WINDOW", "4294967296", "context_window must be in 1..2147483647 tokens"),
    ("CTXDB_CONTEXT_WINDOW", "9" * 5_000, "context_window expects int, got '999"),
    ("CTXDB_MAX_PROJECTS", "-" + "9" * 30, "max_projects must be in -9223372036854775807"),
    # nan passed every range check (each comparison with it is false).
    ("CTXDB_STALE_AFTER", "nan", "stale_after must be a finite number, got 'nan'"),
    ("CTXDB_HEARTBEAT_INTERVAL", "inf", "heartbeat_interval must be a finite number"),
    ("CTXDB_URL", "postgresql://me:secret@[::1/ctxdb",
     "PostgreSQL URL 'postgresql://me:***@[::1/ctxdb' is malformed: Invalid IPv6 URL"),
])
def test_numbers_out_of_range_and_malformed_urls_are_refused_when_loaded(
    home: Path, variable: str, value: str, message: str
) -> None:
    """Refused with the range named when the settings load, not accepted and then failing
    every launch (or an internal error); the password of a malformed URL stays masked."""
    with pytest.raises(ConfigError) as refused:
        load_settings(env=env_of(home, **{variable: value}))
    assert message in refused.value.message and "secret" not in refused.value.message
    assert len(refused.value.message) < 300


@pytest.mark.parametrize(("content", "message"), [
    (bytes(range(128, 256)), "is not valid TOML"),
    (b"a = " + b"[" * 5_000 + b"]" * 5_000, "nests arrays or tables too deep to read"),
    (None, "cannot be read: Is a directory"),
])
def test_a_binary_deep_or_folder_config_file_is_a_config_error(
    home: Path, tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "ctxdb.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as refused:
        load_settings(env=env_of(home, CTXDB_CONFIG=str(path)))
    assert str(path) in refused.value.message


def test_bad_config_file_values_name_the_file(home: Path, tmp_path: Path) -> None:
    wrong_type = write_config(tmp_path / "wrong.toml", 'context_window = "big"\n')
    with pytest.raises(ConfigError, match=r"wrong\.toml: context_window expects int"):
        load_settings(env=env_of(home), config_file=wrong_type)
    out_of_range = write_config(tmp_path / "range.toml", "clear_threshold = 2.0\n")
    with pytest.raises(ConfigError, match=r"range\.toml.*clear_threshold"):
        load_settings(env=env_of(home), config_file=out_of_range)
    for line, setting in (("context_window = 2.5", "context_window"),
                          ("max_projects = true", "max_projects"),
                          ("clear_threshold = true", "clear_threshold"),
                          ("url = 5", "url"), ("actor = ['a']", "actor")):
        lossy = write_config(tmp_path / "lossy.toml", line + "\n")
        with pytest.raises(ConfigError, match=rf"lossy\.toml: {setting} expects"):
            load_settings(env=env_of(home), config_file=lossy)
    whole = write_config(tmp_path / "whole.toml", "stale_after = 60\nauto_migrate = false\n")
    loaded = load_settings(env=env_of(home), config_file=whole)
    assert (loaded.stale_after, loaded.auto_migrate) == (60.0, False)
    unknown = write_config(tmp_path / "unknown.toml", "colour = 'blue'\n")
    with pytest.raises(ConfigError, match="unknown settings colour"):
        load_settings(env=env_of(home), config_file=unknown)
    broken = write_config(tmp_path / "broken.toml", "context_window = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(env=env_of(home), config_file=broken)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env=env_of(home, CTXDB_CONFIG=str(tmp_path / "missing.toml")))


def test_bad_argument_is_a_config_error(home: Path) -> None:
    with pytest.raises(ConfigError, match="max_instances_per_project"):
        load_settings(env=env_of(home), max_instances_per_project=0)
    settings = load_settings(env=env_of(home))
    with pytest.raises(ConfigError, match="context_window"):
        settings.replace(context_window=0)


def test_normal_synchronous_only_by_explicit_opt_in(home: Path, tmp_path: Path) -> None:
    assert load_settings(env=env_of(home)).sqlite_synchronous == "FULL"
    opted = load_settings(env=env_of(home, CTXDB_SQLITE_SYNCHRONOUS="normal"))
    assert opted.sqlite_synchronous == "NORMAL"
    config = write_config(tmp_path / "c.toml", 'sqlite_synchronous = "extra"\n')
    assert load_settings(env=env_of(home), config_file=config).sqlite_synchronous == "EXTRA"


def test_boolean_spellings(home: Path) -> None:
    for text, value in (("1", True), ("yes", True), ("ON", True), ("0", False), ("off", False)):
        assert load_settings(env=env_of(home, CTXDB_AUTO_MIGRATE=text)).auto_migrate is value


def test_relative_path_is_resolved_once(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    settings = load_settings(env=env_of(home, CTXDB_URL="data/ctxdb.db"))
    assert Path(settings.url).is_absolute()
    monkeypatch.chdir(second)  # a later change of directory does not move the database
    assert settings.sqlite_path == (first / "data" / "ctxdb.db").resolve()
    prefixed = load_settings(env=env_of(home), url="sqlite:///other.db")
    assert prefixed.sqlite_path == (second / "other.db").resolve()


def test_postgres_url_is_kept_and_not_migrated_implicitly(home: Path) -> None:
    url = "postgresql://ctxdb@db.internal:5432/ctxdb"
    settings = load_settings(env=env_of(home, CTXDB_URL=url))
    assert settings.url == url
    assert settings.is_postgres
    assert not settings.migrates_automatically
    assert load_settings(env=env_of(home, CTXDB_URL=url, CTXDB_AUTO_MIGRATE="yes")) \
        .migrates_automatically


def test_settings_are_values(home: Path) -> None:
    settings = load_settings(env=env_of(home))
    changed = settings.replace(context_window=1_000)
    assert (settings.context_window, changed.context_window) == (200_000, 1_000)
    assert isinstance(changed, Settings)
    with pytest.raises(AttributeError):
        settings.context_window = 5  # type: ignore[misc]
    with pytest.raises(TypeError, match="unexpected settings: no_such_setting"):
        settings.replace(no_such_setting=1)
    assert settings == load_settings(env=env_of(home)) and hash(settings) == hash(
        load_settings(env=env_of(home)))


def test_the_token_is_kept_out_of_the_repr(home: Path) -> None:
    settings = load_settings(env=env_of(home, CTXDB_TOKEN="s3cret-token"))
    assert settings.token == "s3cret-token"
    assert "s3cret-token" not in repr(settings) and "url=" in repr(settings)


def test_default_actor_comes_from_the_environment_given() -> None:
    load = load_settings
    assert load(env={"USER": "ada", "HOME": "/nonexistent-home"}).actor == "user:ada"
    assert load(env={"HOME": "/nonexistent-home"}).actor == "user:unknown"
    assert load(env={"USER": "ada", "HOME": "/nonexistent-home", "CTXDB_ACTOR": "bot"}).actor \
        == "bot"


def test_postgres_waits_are_bounded_by_default_and_configurable(home: Path) -> None:
    settings = load_settings(env=env_of(home))
    assert (settings.pg_connect_timeout, settings.pg_statement_timeout,
            settings.pg_socket_timeout) == (1.0, 30.0, 40.0)
    assert (settings.pool_min_size, settings.pool_max_size) == (1, 4)
    chosen = load_settings(env=env_of(home, CTXDB_PG_CONNECT_TIMEOUT="0.5",
                                      CTXDB_PG_STATEMENT_TIMEOUT="0",
                                      CTXDB_PG_SOCKET_TIMEOUT="5"))
    assert (chosen.pg_connect_timeout, chosen.pg_statement_timeout,
            chosen.pg_socket_timeout) == (0.5, 0.0, 5.0)


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"CTXDB_PG_CONNECT_TIMEOUT": "0"}, "CTXDB_PG_CONNECT_TIMEOUT"),
        ({"CTXDB_PG_CONNECT_TIMEOUT": "nan"}, "CTXDB_PG_CONNECT_TIMEOUT"),
        ({"CTXDB_PG_SOCKET_TIMEOUT": "inf"}, "CTXDB_PG_SOCKET_TIMEOUT"),
        ({"CTXDB_PG_STATEMENT_TIMEOUT": "-1"}, "CTXDB_PG_STATEMENT_TIMEOUT"),
        # The client must not give up on a statement the server may still run.
        ({"CTXDB_PG_STATEMENT_TIMEOUT": "60"},
         "pg_socket_timeout must be longer than pg_statement_timeout"),
    ],
)
def test_unbounded_or_contradictory_postgres_waits_are_refused(
    home: Path, variables: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env=env_of(home, **variables))
