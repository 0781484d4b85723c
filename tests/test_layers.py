"""Imports point downward only: the layers of docs/architecture.md, enforced.

Every ``import`` of every module under ``src/ctxdb`` is read (those inside functions and
under ``TYPE_CHECKING`` too: a type is a dependency as well) and checked against what its
layer may import:

    front ends   cli/ hooks/ mcp/ compat/ http/ web/, and ctxdb/__init__.py
        |        never storage, never another front end
    service      service/: never a front end; inside it usecases/ never imports
                 operations/, and common.py neither of them
        |
    domain       domain/: pure values and rules, imports neither service nor storage;
                 beside it the readers of foreign formats, importers/ and transcripts/
    storage      storage/: nothing above it

    settings     settings.py: read by front ends, services and storage; it checks the domain's
                 words (priorities) with the domain's own vocabulary, so it may import domain/
                 (which never imports it)

    foundation   errors.py and progress.py: imported by every layer, import nothing of
                 ctxdb; beside them private_files.py (files and folders created private),
                 standard library only
    clients/     what ``ctxdb install`` writes into agent clients' settings files: plain file
                 editing for the CLI, importing only the foundation

``ctxdb.__version__`` is a constant, importable from anywhere; the rest of ``ctxdb/__init__``
(``ctxdb.open``) is the library's front end. Front ends start each other only where one
executable serves another's protocol (``ctxdb hook``, ``ctxdb mcp``), and where the server
serves the dashboard beside its API: listed in
:data:`LAUNCHERS`.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "ctxdb"

FRONT_ENDS = {"cli", "hooks", "mcp", "compat", "http", "web", "client", "ctxdb"}
LAYER_OF = {
    **dict.fromkeys(FRONT_ENDS, "front end"),
    "service": "service",
    "domain": "domain", "importers": "domain", "transcripts": "domain",
    # The repository identity (git remote and root commit) of a working directory: read by
    # the hooks and the CLI alike, so it sits below both, beside the domain's types it fills.
    "repo_identity": "domain",
    # ... which reads git's files for it when it can (git_files.py, standard library only).
    "git_files": "domain",
    "storage": "storage",
    # The settings, and the database URL forms they accept (database_url.py, beside them).
    "settings": "settings", "database_url": "settings", "settings_sources": "settings",
    # The settings' names and where they are read from (importing nothing: the remote hook's
    # short path reads them without the settings module).
    "settings_names": "settings",
    "errors": "foundation", "__version__": "foundation",
    # How long operations report progress: a protocol every layer may call or implement.
    "progress": "foundation",
    "private_files": "foundation",
    # Removing hook entries from a client's settings: for install and for import alike.
    "hook_entries": "foundation",
    # Loggers every layer may log through, and the setting up of logging its entry points call.
    "logs": "foundation", "log_setup": "foundation",
    "clients": "clients",
}
# What each layer may import besides its own package (a front end: not another front end).
MAY_IMPORT = {
    "front end": {"service", "domain", "clients", "settings", "foundation"},
    "service": {"domain", "storage", "settings", "foundation"},
    "domain": {"domain", "foundation"},
    "storage": {"settings", "foundation"},
    "settings": {"settings", "domain", "foundation"},
    "clients": {"foundation"},
    "foundation": {"foundation"},
}
# A front end that starts another: the one `ctxdb` executable runs the hooks and serves MCP,
# and the HTTP server serves MCP at /mcp.
LAUNCHERS = {
    ("ctxdb.cli.main", "ctxdb.hooks.command"),
    ("ctxdb.cli.main", "ctxdb.hooks.invocation"),
    ("ctxdb.cli.main", "ctxdb.hooks.remote_entry"),
    ("ctxdb.cli.hook", "ctxdb.hooks.command"),
    ("ctxdb.cli.mcp", "ctxdb.mcp"),
    ("ctxdb.cli.mcp", "ctxdb.mcp.server"),
    ("ctxdb.cli.serve", "ctxdb.http.server"),
    ("ctxdb.http.mcp_endpoint", "ctxdb.mcp"),
    ("ctxdb.http.mcp_endpoint", "ctxdb.mcp.server"),
    ("ctxdb.http.mcp_endpoint", "ctxdb.mcp.tools"),
    # ctxdb.connect() opens the remote facade (client/) as ctxdb.open() opens the local one.
    ("ctxdb", "ctxdb.client"),
    # With a server URL the CLI runs its commands through that same ctxdb.connect().
    ("ctxdb.cli.application", "ctxdb"),
    # The server serves the dashboard's pages beside its API.
    ("ctxdb.http.app", "ctxdb.web.app"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    """The top-level part of ctxdb a module belongs to: ``ctxdb.service.usecases.x`` -> service."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ctxdb"


def imported(path: Path) -> set[str]:
    """Every ctxdb module (or name of one) ``path`` imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (ctxdb imports absolutely)"
            module = node.module or ""
            if module == "ctxdb":  # from ctxdb import X: X is a module or the version
                names |= {f"ctxdb.{alias.name}" for alias in node.names}
            else:
                names.add(module)
    return {name for name in names if name == "ctxdb" or name.startswith("ctxdb.")}


def violations(edges: dict[str, set[str]]) -> list[str]:
    found = []
    for source, targets in sorted(edges.items()):
        own = package_of(source)
        layer = LAYER_OF[own]
        for target in sorted(targets):
            theirs = package_of(target)
            if theirs == own or (source, target) in LAUNCHERS:
                continue
            if LAYER_OF[theirs] not in MAY_IMPORT[layer]:
                found.append(f"{source} ({layer}) imports {target} ({LAYER_OF[theirs]})")
    return found


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): imported(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_package_has_a_layer() -> None:
    packages = {package_of(module) for module in import_graph()}
    assert packages <= set(LAYER_OF), sorted(packages - set(LAYER_OF))
    assert {"cli", "hooks", "mcp", "service", "domain", "storage"} <= packages


def test_imports_point_downward_only() -> None:
    graph = import_graph()
    assert sum(map(len, graph.values())) > 300  # the scan reads the package's imports
    assert violations(graph) == []


def test_the_rule_catches_imports_up_and_sideways() -> None:
    """Each kind of wrong import, as the check sees it (the package itself has none)."""
    wrong = {
        "ctxdb.cli.task": {"ctxdb.storage.base"},  # a front end reaching past the service
        "ctxdb.hooks.dispatch": {"ctxdb.mcp.render"},  # one front end using another
        "ctxdb.service.usecases.tasks": {"ctxdb.cli.output"},  # the service calling up
        "ctxdb.domain.models": {"ctxdb.storage", "ctxdb.service.common"},  # domain not pure
        "ctxdb.storage.sqlite": {"ctxdb.domain.search"},  # storage depending upward
        "ctxdb.errors": {"ctxdb.service"},
    }
    assert len(violations(wrong)) == 7
    fine = {
        "ctxdb.cli.task": {"ctxdb.service.usecases.tasks", "ctxdb.domain.models", "ctxdb.errors",
                            "ctxdb.__version__", "ctxdb.cli.output"},
        "ctxdb.service.usecases.tasks": {"ctxdb.storage", "ctxdb.domain.models", "ctxdb.settings"},
    }
    assert violations(fine) == []


def test_the_exceptions_are_still_needed() -> None:
    """An exception whose import is gone is deleted from the list (it must not outlive it)."""
    graph = import_graph()
    assert [pair for pair in LAUNCHERS if pair[1] not in graph.get(pair[0], set())] == []


# The service's two rooms (docs/architecture.md): the agents' use cases, and the operations on a
# whole database, which may use the use cases' rules. What both share stays in service/ itself.
SERVICE_ROOMS = {
    "usecases": {"usecases", "common"},
    "operations": {"operations", "usecases", "common"},
    "common": {"common"},
}


def service_room(module: str) -> str | None:
    """``ctxdb.service.usecases.tasks`` -> usecases; the facade (``ctxdb.service``) -> None."""
    parts = module.split(".")
    if parts[:2] != ["ctxdb", "service"] or len(parts) < 3:
        return None
    return parts[2] if parts[2] in ("usecases", "operations") else "common"


def room_violations(edges: dict[str, set[str]]) -> list[str]:
    found = []
    for source, targets in sorted(edges.items()):
        room = service_room(source)
        if room is None:
            continue
        for target in sorted(targets):
            theirs = service_room(target)
            if theirs is not None and theirs not in SERVICE_ROOMS[room]:
                found.append(f"{source} ({room}) imports {target} ({theirs})")
    return found


def test_service_rooms_point_one_way() -> None:
    graph = import_graph()
    rooms = {service_room(module) for module in graph} - {None}
    assert rooms == {"usecases", "operations", "common"}
    assert room_violations(graph) == []


def test_the_room_rule_catches_a_use_case_importing_an_operation() -> None:
    wrong = {
        "ctxdb.service.usecases.tasks": {"ctxdb.service.operations.retention"},
        "ctxdb.service.common": {"ctxdb.service.usecases.projects"},
    }
    assert len(room_violations(wrong)) == 2
    fine = {"ctxdb.service.operations.imports": {"ctxdb.service.usecases.memories",
                                                 "ctxdb.service.common", "ctxdb.service"}}
    assert room_violations(fine) == []
