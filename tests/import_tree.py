"""A realistic repository tree with file-based agent memory, for the import tests."""

from __future__ import annotations

import json
from pathlib import Path

CLAUDE_MD = """\
# Shop

E-commerce rewrite: a Django backend and a React storefront. Also read @docs/conventions.md.

## Build and test

- `make test` runs ruff, mypy and pytest.
- `make dev` starts the stack with docker compose.

```bash
# this line is code, not a heading
make test
```

## Critical rules

- Never commit secrets; they live in 1Password.
- Money is `Decimal`, never `float`.

## Architecture

### Payments

IMPORTANT: payments go through Stripe only; YOU MUST NOT call the bank API directly.

### Cart

Cart totals are cached for 60 s in Redis.
"""

AGENTS_MD = """\
# AGENTS.md

## Dev environment tips
- Use `uv sync` to install dependencies.

## Testing instructions
- Run `pytest -q` before every commit and fix what fails.

## PR instructions
- Title format: [shop] <title>
"""

GEMINI_MD = """\
# Gemini notes

Prefer small pull requests.
"""

CONVENTIONS_MD = """\
# Conventions

Type hints everywhere; docstrings say why.
"""

FRONTEND_CLAUDE_MD = """\
# Frontend

## Rules

Components are function components with hooks.
"""

REVIEW_COMMAND = """\
---
description: Review the staged diff
allowed-tools: Bash(git diff:*)
---
Review the staged changes for bugs and missing tests: $ARGUMENTS
"""

REVIEWER_AGENT = """\
---
name: code-reviewer
description: Reviews code for quality
tools: Read, Grep
---
You are a senior reviewer. Be specific.
"""

SKILL = """\
---
name: release
description: Cut a release
---
Bump the version, tag, push.
"""

ARCHITECTURE_MD = """\
# Services

api, worker and storefront.

# Data

PostgreSQL 16; Redis for caches.
"""

ITEMS = [
    {"content": {"decision": "Stripe for payments"}, "priority": "CRITICAL",
     "content_type": "decision", "key": "payments"},
    {"content": "Orders are soft-deleted", "priority": "MEDIUM", "type": "note"},
    {"content": {"todo": "migrate sessions to Redis"}, "priority": "LOW",
     "metadata": {"owner": "ana"}},
]

MEMORY_GRAPH = [
    {"type": "entity", "name": "Ana_Lima", "entityType": "person",
     "observations": ["Leads the payments team", "Prefers async reviews"]},
    {"type": "entity", "name": "Shop", "entityType": "project",
     "observations": ["Django backend", "React storefront"]},
    {"type": "entity", "name": "Stripe", "entityType": "payment provider",
     "observations": ["Used for card payments"]},
    {"type": "relation", "from": "Ana_Lima", "to": "Shop", "relationType": "works_on"},
    {"type": "relation", "from": "Shop", "to": "Stripe", "relationType": "depends on"},
]


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def build_repository(root: Path) -> Path:
    """The repository at ``root``; returns it."""
    write(root / "CLAUDE.md", CLAUDE_MD)
    write(root / "AGENTS.md", AGENTS_MD)
    write(root / "GEMINI.md", GEMINI_MD)
    write(root / "docs" / "conventions.md", CONVENTIONS_MD)
    write(root / "frontend" / "CLAUDE.md", FRONTEND_CLAUDE_MD)
    write(root / "node_modules" / "left-pad" / "CLAUDE.md", "# Not ours\n\nIgnored.\n")
    write(root / "src" / "shop" / "models.py", "class Order: ...\n")
    claude = root / ".claude"
    write(claude / "settings.json", json.dumps(
        {"permissions": {"allow": ["Bash(make test)"], "deny": ["Read(./.env)"]}}, indent=2))
    write(claude / "settings.local.json", json.dumps({"env": {"STRIPE_KEY": "sk_test_x"}}))
    write(claude / "commands" / "review.md", REVIEW_COMMAND)
    write(claude / "agents" / "code-reviewer.md", REVIEWER_AGENT)
    write(claude / "skills" / "release" / "SKILL.md", SKILL)
    write(claude / "skills" / "release" / "scripts" / "bump.sh", "#!/bin/sh\necho bump\n")
    write(claude / "context" / "architecture.md", ARCHITECTURE_MD)
    write(claude / "context" / "decisions.json", json.dumps(ITEMS, indent=2))
    write(claude / "context" / "blob.txt", b"\x89PNG\x00\x00binary")
    write(claude / "context" / "huge.md", "# Huge\n\n" + "x" * (1024 * 1024 + 10))
    write(claude / "config" / "team.json", json.dumps({"reviewers": ["ana", "bo"]}))
    write(claude / "logs" / "2025-11-19.log", "12:00 session started\n")
    write(claude / "state.db", b"SQLite format 3\x00" + b"\x00" * 100)
    write(root / "memory.json", "".join(json.dumps(r) + "\n" for r in MEMORY_GRAPH))
    return root
