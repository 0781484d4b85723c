"""The clients' hook payloads in one vocabulary, and the one output shape they all read.

Claude Code and Codex use the same event names; Gemini CLI names its events differently and
they are mapped here. Every event carries ``session_id``, ``transcript_path``, ``cwd`` and
``hook_event_name``; the per-event fields are kept in ``fields``. Pure code below the front
ends: the local hook (``ctxdb.hooks``) and the server's hook route (``ctxdb.http``) both read
events and write outputs with it.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from ctxdb.domain.agents import AgentSession
from ctxdb.domain.client_rules import CONTEXT_EVENTS as CONTEXT_EVENTS
from ctxdb.domain.client_rules import EVENTS as EVENTS
from ctxdb.domain.client_rules import GEMINI_EVENTS as GEMINI_EVENTS
from ctxdb.domain.client_rules import event_role, injection_limit
from ctxdb.domain.validation import load_json
from ctxdb.errors import ValidationError


class HookEvent(NamedTuple):
    client: str
    name: str  # the client's own event name, echoed back in the output
    event: str  # the role, in Claude Code's vocabulary; "" when unknown
    session: AgentSession
    fields: dict[str, Any]

    def text(self, key: str) -> str | None:
        value = self.fields.get(key)
        return value if isinstance(value, str) else None


def parse_event(client: str, raw: str, parent_pid: int | None = None) -> HookEvent:
    """The event in ``raw`` (the hook's stdin); a typed error names what is wrong."""
    try:
        data = load_json(raw, "hook input", ValidationError)  # within the limits of all JSON
    except ValueError as exc:
        raise ValidationError(f"hook input is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationError(f"hook input must be a JSON object, got {type(data).__name__}")
    name = data.get("hook_event_name")
    if not isinstance(name, str) or not name:
        raise ValidationError("hook input has no hook_event_name")
    session_id = data.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise ValidationError(f"{name} hook input has no session_id")
    session = AgentSession(
        client=client, session_id=session_id,
        transcript_path=_optional_text(data, "transcript_path"),
        cwd=_optional_text(data, "cwd"), process_id=parent_pid,
    )
    return HookEvent(client, name, event_role(client, name), session, data)


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def context_output(event: HookEvent, text: str) -> str | None:
    """The one JSON object that hands ``text`` to the model, or None when there is nothing.

    The injected string is kept under its client's cap even if a caller passed more. The JSON
    is plain ASCII (other characters as ``\\uXXXX`` escapes), so it reaches the client intact
    whatever encoding the hook's stdout has (``PYTHONIOENCODING``, a C locale).
    """
    if not text or event.event not in CONTEXT_EVENTS:
        return None
    limit = injection_limit(event.client)
    if len(text) >= limit:
        text = text[: limit - 2] + "…"
    return json.dumps({"hookSpecificOutput": {"hookEventName": event.name,
                                              "additionalContext": text}},
                      ensure_ascii=True)
