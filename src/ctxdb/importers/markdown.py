"""Markdown files split into sections at their headings, and the priority of a section.

A section is a heading with the text up to the next heading (of any level); the text
before the first heading is a section of its own, named after the file. Headings inside
fenced code blocks are text. A YAML front matter block at the top is kept apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_CLOSING = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")  # "## Title ##"; not the "#" of "C#"
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?---[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_MATTER_LINE = re.compile(r"^([A-Za-z0-9_-]+)[ \t]*:[ \t]*(.*?)[ \t]*$")

# The rule for CRITICAL (see docs/imports.md): in a file that applies to the whole
# repository, a section is CRITICAL when one of its headings names a rule the agent must
# not miss, or its text uses the capitalized emphasis Claude Code's own guidance recommends
# for such rules ("IMPORTANT", "YOU MUST"). Everything else is HIGH.
CRITICAL_HEADING = re.compile(
    r"\b(critical|important|must|never|always|rules?|required|mandatory|security)\b",
    re.IGNORECASE)
CRITICAL_EMPHASIS = re.compile(r"\b(IMPORTANT|CRITICAL|MUST|NEVER)\b")


@dataclass(frozen=True)
class Section:
    headings: tuple[str, ...]  # from the top-level heading down; () before the first one
    text: str  # the heading line and the body, trimmed
    body: str  # the body alone, trimmed
    occurrence: int  # 0, or n for the n+1-th section with the same headings in the file

    @property
    def title(self) -> str:
        return " > ".join(self.headings)


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """The ``key: value`` lines of a leading ``---`` block, and the text after it.

    Only flat ``key: value`` lines are read (the front matter of commands, agents and
    skills); anything else in the block stays in the returned mapping's ``_raw``.
    """
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, text
    block = match.group(1) or ""
    fields: dict[str, str] = {}
    for line in block.splitlines():
        found = _FRONT_MATTER_LINE.match(line)
        if found:
            fields[found.group(1)] = found.group(2).strip("\"'")
    if block.strip() and len(fields) != len([ln for ln in block.splitlines() if ln.strip()]):
        fields["_raw"] = block
    return fields, text[match.end():]


def sections(text: str) -> list[Section]:
    """The sections of a markdown text that have a body, in file order."""
    parts: list[tuple[tuple[str, ...], list[str]]] = [((), [])]
    stack: list[tuple[int, str]] = []
    fence: str | None = None
    for line in text.splitlines():
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence) \
                    and not line.strip()[len(opened.group(1)):].strip():
                fence = None
        elif opened:
            fence = opened.group(1)
        else:
            heading = _HEADING.match(line)
            if heading:
                level = len(heading.group(1))
                title = _CLOSING.sub("", (heading.group(2) or "").strip()).strip()
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, title))
                parts.append((tuple(t for _, t in stack), [line]))
                continue
        parts[-1][1].append(line)
    found: list[Section] = []
    seen: dict[tuple[str, ...], int] = {}
    for headings, lines in parts:
        body_lines = lines[1:] if headings else lines
        body = "\n".join(body_lines).strip()
        if not body:
            continue
        occurrence = seen.get(headings, 0)
        seen[headings] = occurrence + 1
        found.append(Section(headings, "\n".join(lines).strip(), body, occurrence))
    return found


def instruction_priority(section: Section, repository_wide: bool) -> str:
    """CRITICAL or HIGH for a section of an agent instruction file (see ``CRITICAL_HEADING``).

    Files in subfolders (``frontend/CLAUDE.md``) apply to part of the repository only, so
    their sections are HIGH whatever they say.
    """
    if repository_wide and (any(CRITICAL_HEADING.search(h) for h in section.headings)
                            or CRITICAL_EMPHASIS.search(section.body)):
        return "CRITICAL"
    return "HIGH"


# "@path" in an instruction file (Claude Code's import syntax), outside code.
_AT_IMPORT = re.compile(r"(?<![\w@`])@((?:~|\.{1,2})?/?[\w.\-/~]+)")
_CODE_SPAN = re.compile(r"`[^`]*`")


def at_imports(text: str, base: Path) -> list[Path]:
    """The files ``text`` references with Claude Code's ``@path`` syntax (outside code),
    resolved against ``base``."""
    targets: list[Path] = []
    fence: str | None = None
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            marker = stripped[:3]
            fence = None if fence == marker else (fence or marker)
            continue
        if fence is not None:
            continue
        for match in _AT_IMPORT.finditer(_CODE_SPAN.sub("", line)):
            reference = match.group(1).rstrip(".")
            if "/" not in reference and not reference.endswith((".md", ".markdown")):
                continue  # "@decorator", "@someone": not a path
            target = Path(reference).expanduser()
            targets.append(target if target.is_absolute() else base / target)
    return targets
