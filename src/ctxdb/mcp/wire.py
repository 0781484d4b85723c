"""Checking each JSON-RPC message a client sends before the MCP SDK reads it.

Why this exists: the SDK drops a line it cannot parse or validate (``params`` a string,
``method`` a number, ``"jsonrpc": "1.0"``, truncated JSON, a lone surrogate, arguments
nested 300 levels deep) without answering, even when the line carries a request id, so the
client waits forever for its answer. :func:`refusal` says what is wrong with such a line and
which id to answer; every other line goes on to the SDK unchanged. Standard library and
``ctxdb.domain`` only: it decides, the transport (``stdio.py``) answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ctxdb.domain.validation import load_json
from ctxdb.errors import ValidationError

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
# The id of a line that is not JSON (truncated, say), read from its text so that the client
# waiting for that id gets its answer; JSON-RPC's own rule (id null) would leave it waiting.
# A number must be followed by what ends it: a line cut inside id 12 holds "1", whose
# answer would go to another request.
_ID_IN_TEXT = re.compile(r'"id"\s*:\s*(-?\d{1,18}(?=\s*[,}\]])|"(?:[^"\\]|\\.){0,200}")')
RequestId = str | int


@dataclass(frozen=True)
class Refusal:
    """The answer to a line the SDK would drop: an error for ``request_id`` (None: the id
    could not be read), or nothing at all for a notification (``answered`` false)."""

    request_id: RequestId | None
    code: int
    message: str
    answered: bool = True

    def reply(self) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": self.request_id,
                "error": {"code": self.code, "message": self.message}}


def refusal(line: str) -> Refusal | None:
    """None when the SDK can take ``line``; else how to answer it."""
    try:
        message = load_json(line, "the message", ValidationError)
    except ValidationError as exc:  # over the depth or integer limit of ctxdb's JSON
        return Refusal(_id_in_text(line), INVALID_REQUEST, f"invalid request: {exc.message}")
    except ValueError as exc:
        return Refusal(_id_in_text(line), PARSE_ERROR, f"parse error: not JSON ({exc})")
    if not isinstance(message, dict):
        return Refusal(None, INVALID_REQUEST, "invalid request: a message is a JSON object")
    request_id = message.get("id")
    problem = _problem(message)
    if problem is None:
        return None
    valid_id = _is_id(request_id)
    return Refusal(request_id if valid_id else None, INVALID_REQUEST,
                   f"invalid request: {problem}", answered=valid_id or "id" in message)


def _problem(message: dict[str, Any]) -> str | None:
    if message.get("jsonrpc") != "2.0":
        return 'jsonrpc must be "2.0"'
    if "id" in message and not _is_id(message["id"]):
        return "id must be a string or an integer"
    if "method" in message:
        if not isinstance(message["method"], str):
            return "method must be a string"
        if "params" in message and not isinstance(message["params"], dict):
            return "params must be an object"
    elif "result" not in message and "error" not in message:
        return "neither a request (method) nor a response (result or error)"
    if _has_lone_surrogate(message):
        return "a string holds a lone surrogate (\\ud800-\\udfff alone is not Unicode text)"
    return None


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _id_in_text(line: str) -> RequestId | None:
    found = _ID_IN_TEXT.search(line)
    if found is None:
        return None
    text = found.group(1)
    if text.startswith('"'):
        value = load_json(text, "the id", ValidationError)
        return value if isinstance(value, str) and not _has_lone_surrogate(value) else None
    return int(text)


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            if any("\ud800" <= char <= "\udfff" for char in current):
                return True
        elif isinstance(current, dict):
            stack.extend(current.keys())
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return False
