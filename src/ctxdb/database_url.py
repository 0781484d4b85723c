"""Which database a URL names, in the forms ctxdb accepts, and the URL as ctxdb stores it.

Read by the settings when they are loaded (``url``); a URL of another form is a
:class:`~ctxdb.errors.ConfigError` naming the accepted ones. ``http(s)://host:port`` names
no database but a ctxdb server (``ctxdb serve``): only a remote client talks to one (today
``ctxdb hook``, docs/server.md); opening it as a database is refused with that said.
"""

from __future__ import annotations

import re

from ctxdb.errors import ConfigError

URL_FORMS = ("a SQLite file path (a relative one is resolved once, from the current "
             "directory), sqlite:///relative/path.db, sqlite:////absolute/path.db, or "
             "postgresql://user@host:port/database (postgres:// too); or http(s)://host:port, "
             "a ctxdb server, for a remote client")
POSTGRES_SCHEMES = ("postgresql", "postgres")
SERVER_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def _invalid(setting: str, message: str) -> ConfigError:
    return ConfigError(message, setting=setting)


def database_kind(url: str) -> str:
    """``"sqlite"``, ``"postgres"`` or ``"server"`` (a ctxdb server, not a database): what
    ``url`` names, in one of the accepted forms (:data:`URL_FORMS`); anything else is a
    :class:`ConfigError` naming them.

    A URL of another scheme must never be taken for a file name: ``mysql://x/y`` would
    quietly become a SQLite file ``./mysql:/x/y`` that nobody looks at.
    """
    found = _SCHEME.match(url)
    rest = url[found.end():] if found else ""
    scheme = found.group(1).lower() if found else ""
    base, _, driver = scheme.partition("+")
    if found is None or (not rest.startswith("//") and base not in ("sqlite", *POSTGRES_SCHEMES)):
        return "sqlite"  # a path (a colon in a file name, or C:\…, is no scheme)
    if base in POSTGRES_SCHEMES:
        _check_postgres_url(url)
        return "postgres"
    if base in SERVER_SCHEMES and not driver:
        server_address(url)
        return "server"
    if base == "sqlite":
        if driver or not rest.startswith("///") or not rest[3:]:
            raise _invalid("url", f"SQLite URL {url!r} is not of an accepted form: "
                                  "sqlite:///relative/path.db (three slashes, relative to the "
                                  "current directory) or sqlite:////absolute/path.db (four)")
        return "sqlite"
    hint = (" (did you mean postgresql://…?)" if base.startswith(("postg", "pg", "psql"))
            else "")
    raise _invalid("url", f"unknown database URL scheme {found.group(1) + ':'!r}{hint}; "
                          f"accepted are {URL_FORMS}")


def _check_postgres_url(url: str) -> None:
    from urllib.parse import urlsplit  # a prompt hook on SQLite never needs it

    if not url.partition(":")[2].startswith("//"):
        raise _invalid("url", f"PostgreSQL URL {_without_password(url)!r} must start with "
                              "postgresql:// (e.g. postgresql://user@host:5432/database)")
    try:
        urlsplit(url).port  # noqa: B018 (reading it checks it)
    except ValueError as exc:
        raise _invalid("url", f"PostgreSQL URL {_without_password(url)!r} is malformed: "
                              f"{exc}") from None


# http(s)://host[:port][/path]: a name or an IPv4 address, or an IPv6 one in brackets. Read
# with a pattern rather than urllib.parse, whose import a hook process would pay on every event.
_SERVER_URL = re.compile(r"(?i)(https?)://([A-Za-z0-9._~%-]+|\[[0-9A-Fa-f:.]+\])"
                         r"(?::([0-9]{1,5}))?(/[^?#]*)?")


def server_address(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of a server URL (the port defaults to the scheme's, the
    path has no trailing slash); a :class:`ConfigError` when ``url`` is not of that form."""
    found = _SERVER_URL.fullmatch(url)
    if found is None:
        raise _invalid("url", f"server URL {_without_password(url)!r} must be "
                              "http(s)://host[:port][/path] (the token goes in CTXDB_TOKEN, "
                              "not in the URL)")
    scheme, host, port, path = found.groups()
    scheme = scheme.lower()
    number = int(port) if port else (443 if scheme == "https" else 80)
    if not 0 < number < 65536:
        raise _invalid("url", f"server URL {url!r} is malformed: port {port} is out of range")
    return scheme, host.strip("[]"), number, (path or "").rstrip("/")


def server_refusal(url: str) -> ConfigError:
    """What opening a server URL as a database says: which client talks to a server."""
    return _invalid("url", f"{url} is a ctxdb server, not a database: reach it with "
                           "ctxdb.connect(url, token) (as the ctxdb command does), or give a "
                           "database URL (a SQLite path or postgresql://…) (docs/server.md)")


def _without_password(url: str) -> str:
    """``url`` with the password of its user part (if any) masked, fit for an error."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # a malformed URL ('[::1' host): mask what may be a password by hand
        return re.sub(r"(//[^/@:]*:)[^@/]*@", r"\1***@", url)
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def normalised_url(url: str) -> str:
    """``url`` as ctxdb stores it: a PostgreSQL URL with the scheme libpq reads
    (``postgresql+psycopg://…`` and ``postgres://…`` become ``postgresql://…``), a server
    URL without a trailing slash, anything else unchanged. Assumes ``url`` passed
    :func:`database_kind`."""
    kind = database_kind(url)
    if kind == "server":
        return url.rstrip("/")
    if kind != "postgres":
        return url
    return "postgresql:" + url.partition(":")[2]
