"""A project's file-based memory, read into records (see docs/imports.md for the mapping).

:func:`scan` walks the folder (or reads the one file) it is given and returns a
:class:`FilesPlan`: context items, memories, and the files it skipped with the reason. It
reads only inside the folder: a symlink or an ``@path`` reference that leads out raises
:class:`UnsafePathError` before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ctxdb.errors import ImportSourceError, MalformedImportFileError
from ctxdb.importers import markdown
from ctxdb.importers.client_files import (
    ONLY_CTXDB_HOOKS,
    client_loaded_reason,
    without_ctxdb_hooks,
)
from ctxdb.importers.json_items import MalformedItems, load, looks_like_items, parse_items
from ctxdb.importers.mcp_memory import (
    MEMORY_FILE_NAMES,
    MalformedGraph,
    looks_like_graph,
    parse_graph,
)
from ctxdb.importers.paths import (
    SYMLINK_LOOP,
    check_inside,
    file_type_problem,
    read_text,
    relative,
    resolve_root,
    walk,
)
from ctxdb.importers.records import FilesPlan, ItemRecord, MemoryRecord, Skip, digest
from ctxdb.progress import Progress

INSTRUCTION_FILES = frozenset({"CLAUDE.md", "CLAUDE.local.md", "AGENTS.md", "GEMINI.md"})
MARKDOWN = (".md", ".markdown")
SQLITE_HEADER = b"SQLite format 3\x00"
MAX_IMPORT_DEPTH = 5  # Claude Code follows @imports five hops deep

# .claude/<folder>/… → (namespace, memory type) of the memories its markdown files become.
PROCEDURES = {
    "commands": ("claude:commands", "procedural"),
    "agents": ("claude:agents", "procedural"),
    "output-styles": ("claude:output-styles", "procedural"),
}
LOGS_REASON = ("logs are not imported (for Claude Code transcripts use "
               "`ctxdb ingest-transcript`)")
LOCAL_SETTINGS_REASON = "personal settings (may hold secrets); not imported"
SQLITE_REASON = ("a SQLite database; if it has the seed's schema, use "
                 "`ctxdb import legacy` on it")

def scan(path: str, progress: Progress | None = None, *,
         include_instructions: bool = False) -> FilesPlan:
    """Read everything importable under ``path`` (a folder, or one file); ``progress`` is told
    of the phase ``read`` (its total unknown) and of each file read.

    In a folder, the instruction files agent clients load by themselves (CLAUDE.md,
    AGENTS.md, …) are skipped unless ``include_instructions``; one named as ``path`` is read.
    """
    root = resolve_root(path)
    if progress is not None:
        progress.start("read", None)
    plan = FilesPlan(root=str(root))
    scanner = _Scanner(root, plan, progress, include_instructions)
    problem = None if root.is_dir() else file_type_problem(root)
    if problem is not None:
        raise ImportSourceError(f"{path} is {problem}: give a folder or a file", path=path)
    if root.is_file():
        scanner.single_file(root)
    else:
        scanner.tree()
    return plan


class _Scanner:
    def __init__(self, root: Path, plan: FilesPlan, progress: Progress | None,
                 include_instructions: bool) -> None:
        self.root = root
        self.include_instructions = include_instructions
        self.plan = plan
        self.progress = progress
        self.done: set[Path] = set()  # resolved paths already read (symlinks, @imports)

    # --- walking ---------------------------------------------------------------------------

    def tree(self) -> None:
        candidates = [(p, kind) for p in walk(self.root)
                      if (kind := classify(relative(self.root, p))) is not None]
        # Real files first, so that a symlink to one (AGENTS.md -> CLAUDE.md) is the
        # duplicate, not the original; instruction files first, so that their items come
        # first in the project's sequence.
        candidates.sort(key=lambda c: (c[0].is_symlink(), c[1] != "instructions",
                                       relative(self.root, c[0])))
        for path, kind in candidates:
            if kind == "instructions" and not self.include_instructions:
                rel = relative(self.root, path)
                self.skip("instructions", rel, client_loaded_reason(rel))
                continue
            self.file(path, kind)

    def single_file(self, path: Path) -> None:
        """The one file the user named: a malformed one is an error, not a skip."""
        name = path.name
        if name in INSTRUCTION_FILES:
            kind = "instructions"
        elif name.endswith((".json", ".jsonl")):
            kind = "json"
        elif name.endswith(MARKDOWN):
            kind = "context_md"
        elif name.endswith(".txt"):
            kind = "context_text"
        else:
            raise ImportSourceError(
                f"{name}: not a kind of file ctxdb imports (a folder, an agent instruction "
                "file, markdown or text, a JSON file of context items, or memory.json)",
                path=name)
        self.file(path, kind, strict=True)

    def file(self, path: Path, kind: str, *, strict: bool = False,
             repository_wide: bool | None = None, depth: int = 0) -> None:
        rel = relative(self.root, path)
        problem = file_type_problem(path)  # before anything opens it: a FIFO would block
        if problem == SYMLINK_LOOP:  # resolving it would fail: nothing to check inside
            self.skip(_skip_kind(rel), rel, problem)
            return
        resolved = check_inside(self.root, path, rel)
        if problem is not None:
            self.skip(_skip_kind(rel), rel, problem)
            return
        if resolved in self.done:
            if path.is_symlink():
                self.skip(kind, rel, f"same file as {relative(self.root, resolved)}")
            return
        self.done.add(resolved)
        if _is_sqlite(resolved):
            self.skip("files", rel, SQLITE_REASON)
            return
        if kind.startswith("skip:"):
            self.skip(_skip_kind(rel), rel, kind.removeprefix("skip:"))
            return
        text, reason = read_text(self.root, path)
        if text is None:
            self.skip(_skip_kind(rel), rel, reason or "unreadable")
            return
        self.plan.files_read += 1
        if self.progress is not None:
            self.progress.advance(1)
        wide = _repository_wide(rel) if repository_wide is None else repository_wide
        self.dispatch(rel, resolved, kind, text, strict, wide, depth)

    def dispatch(self, rel: str, resolved: Path, kind: str, text: str, strict: bool,
                 wide: bool, depth: int) -> None:
        if kind == "instructions":
            self.instructions(rel, resolved, text, wide, depth)
        elif kind == "context_md":
            self.markdown_items(rel, text, "context", "MEDIUM", "context")
        elif kind == "context_text":
            self.add_item(ItemRecord("context", rel, rel, text.strip(), "MEDIUM", "context",
                                     {"import": {"source": rel, "kind": "context"}}))
        elif kind == "json":
            self.json_file(rel, text, strict)
        elif kind == "graph":
            self.graph(rel, text, strict)
        elif kind == "claude_settings":
            self.settings_file(rel, text)
        elif kind.startswith("memory:"):
            self.memory_file(rel, kind.removeprefix("memory:"), text)

    def skip(self, kind: str, rel: str, reason: str) -> None:
        self.plan.skipped.append(Skip(kind, rel, reason))

    # --- kinds of file ---------------------------------------------------------------------

    def instructions(self, rel: str, resolved: Path, text: str, wide: bool,
                     depth: int) -> None:
        _, body = markdown.split_front_matter(text)
        for section in markdown.sections(body):
            self.add_item(_section_item(rel, section, "instructions",
                                        markdown.instruction_priority(section, wide)))
        if depth >= MAX_IMPORT_DEPTH:
            return
        for target in markdown.at_imports(body, resolved.parent):
            # A reference is read only when it exists (as Claude Code does); one that
            # exists outside the import folder refuses the import.
            if not target.exists():
                continue
            check_inside(self.root, target, f"{rel}: @{_shown(target, resolved.parent)}")
            if target.is_file():
                self.file(target, "instructions", repository_wide=wide, depth=depth + 1)

    def markdown_items(self, rel: str, text: str, kind: str, priority: str,
                       content_type: str) -> None:
        _, body = markdown.split_front_matter(text)
        found = markdown.sections(body)
        if not found:
            self.skip(kind, rel, "no text")
        for section in found:
            self.add_item(_section_item(rel, section, content_type, priority, kind))

    def json_file(self, rel: str, text: str, strict: bool) -> None:
        if looks_like_graph(text):
            self.graph(rel, text, strict)
            return
        try:
            if not looks_like_items(load(text)):
                raise MalformedItems("not a list of context items, an object with an 'items' "
                                     "list, or an object keyed by priority")
            items = parse_items(rel, text)
        except json.JSONDecodeError as exc:
            self.malformed("context_items", rel, f"not valid JSON: {exc}", strict)
            return
        except MalformedItems as exc:
            self.malformed("context_items", rel, str(exc), strict)
            return
        for item in items:
            self.add_item(item)

    def graph(self, rel: str, text: str, strict: bool) -> None:
        try:
            entities, relations = parse_graph(rel, text)
        except MalformedGraph as exc:
            self.malformed("mcp_entities", rel, str(exc), strict)
            return
        self.plan.memories += entities + relations

    def memory_file(self, rel: str, target: str, text: str) -> None:
        namespace, key, memory_type = target.split("|")
        value: dict[str, Any] = {"source": rel}
        if rel.endswith(".json"):
            loaded, value["json"] = self.json_memory(rel, text)
            if not loaded:
                return
        elif rel.endswith(MARKDOWN):
            front_matter, body = markdown.split_front_matter(text)
            value.update(front_matter=front_matter, text=body.strip())
        else:
            value["text"] = text
        self.plan.memories.append(MemoryRecord("memories", rel, namespace, key, value,
                                               memory_type))

    def json_memory(self, rel: str, text: str) -> tuple[bool, Any]:
        """``(True, the value)`` of a JSON memory file; ``(False, None)`` once it is skipped
        as not JSON or too deep."""
        try:
            return True, load(text)
        except json.JSONDecodeError as exc:
            self.skip("memories", rel, f"not valid JSON: {exc}")
        except MalformedItems as exc:
            self.skip("memories", rel, str(exc))
        return False, None

    def settings_file(self, rel: str, text: str) -> None:
        """Claude Code's settings.json without ctxdb's own hooks; skipped when that is all."""
        loaded, data = self.json_memory(rel, text)
        if not loaded:
            return
        settings, ctxdb_hooks = without_ctxdb_hooks(data)
        if ctxdb_hooks and settings == {}:
            self.skip("memories", rel, ONLY_CTXDB_HOOKS)
            return
        value: dict[str, Any] = {"source": rel, "json": settings}
        if ctxdb_hooks:
            value["ctxdb_hooks_left_out"] = ctxdb_hooks
        self.plan.memories.append(MemoryRecord("memories", rel, "claude:settings",
                                               "settings.json", value, "semantic"))

    def malformed(self, kind: str, rel: str, reason: str, strict: bool) -> None:
        if strict:
            raise MalformedImportFileError(f"{rel}: {reason}", path=rel, reason=reason)
        self.skip(kind, rel, f"malformed: {reason}")

    def add_item(self, item: ItemRecord) -> None:
        self.plan.items.append(item)


# --- classification ------------------------------------------------------------------------


def classify(rel: str) -> str | None:
    """What a file found in the walk is, by where it is (``None``: not for an import).

    The answer is a kind (``instructions``, ``context_md``, ``context_text``, ``json``,
    ``graph``), ``memory:<namespace>|<key>|<type>``, or ``skip:<reason>``.
    """
    parts = rel.split("/")
    if ".claude" not in parts:
        if parts[-1] in INSTRUCTION_FILES:
            return "instructions"
        if len(parts) == 1 and parts[0] in MEMORY_FILE_NAMES:
            return "graph"
        return None
    inner = parts[len(parts) - parts[::-1].index(".claude"):]
    return _classify_claude(inner)


def _classify_claude(inner: list[str]) -> str:
    name, top = inner[-1], inner[0]
    rest = "/".join(inner[1:])
    if inner == ["CLAUDE.md"] or (top == "rules" and name.endswith(MARKDOWN)):
        return "instructions"
    if len(inner) == 1 and name in MEMORY_FILE_NAMES:
        return "graph"
    if top == "context" and len(inner) > 1:
        if name.endswith(MARKDOWN):
            return "context_md"
        if name.endswith(".txt"):
            return "context_text"
        if name.endswith((".json", ".jsonl")):
            return "json"
        return "skip:not a context file type (markdown, text or JSON)"
    if top in PROCEDURES and len(inner) > 1 and name.endswith(MARKDOWN):
        namespace, memory_type = PROCEDURES[top]
        return f"memory:{namespace}|{_key(rest)}|{memory_type}"
    if top == "skills" and len(inner) == 3 and name == "SKILL.md":
        return f"memory:claude:skills|{inner[1]}|procedural"
    if top == "skills":
        return "skip:skill resource (only each skill's SKILL.md is imported)"
    if inner == ["settings.json"]:
        return "claude_settings"
    if inner == ["settings.local.json"]:
        return f"skip:{LOCAL_SETTINGS_REASON}"
    if top == "config" and len(inner) > 1:
        return f"memory:claude:config|{_key(rest, strip=False)}|semantic"
    if top == "logs":
        return f"skip:{LOGS_REASON}"
    return "skip:not a kind of file ctxdb imports"


def _key(rest: str, strip: bool = True) -> str:
    key = rest
    if strip:
        for suffix in MARKDOWN:
            key = key.removesuffix(suffix)
    return key if len(key) <= 200 else key[:182] + "~" + digest(key)


def _skip_kind(rel: str) -> str:
    parts = rel.split("/")
    if ".claude" in parts:
        inner = parts[len(parts) - parts[::-1].index(".claude"):]
        if inner[0] == "logs":
            return "logs"
        if inner[0] == "context":
            return "context"
    return "files"


def _repository_wide(rel: str) -> bool:
    """Whether an instruction file applies to the whole repository (it is at the root)."""
    parts = rel.split("/")
    return len(parts) == 1 or (parts[0] == ".claude" and (len(parts) == 2 or
                                                          parts[1] == "rules"))


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def _shown(target: Path, base: Path) -> str:
    try:
        return target.relative_to(base).as_posix()
    except ValueError:
        return str(target)


def _section_item(rel: str, section: markdown.Section, content_type: str, priority: str,
                  kind: str = "instructions") -> ItemRecord:
    """A section as a context item: its text, headed by the file and the heading path."""
    title = section.title or "(top)"
    slot = f"{rel}#{title}#{section.occurrence}"
    content = f"{rel} › {title}\n\n{section.body}" if section.headings else \
        f"{rel}\n\n{section.body}"
    metadata = {"import": {"source": rel, "kind": kind, "section": list(section.headings),
                           "occurrence": section.occurrence}}
    return ItemRecord(kind, rel, slot, content, priority, content_type, metadata)
