"""The prompt hook's context in use (``tail``, read from the end) is what the parser gives.

``records.latest_usage`` reads a Claude Code block backwards and stops at the latest
main-chain response; ``parse_transcript`` reads every record. Each case below is a transcript
whose answer depends on one rule they share: the latest record of a response counts, a
subagent's does not, placeholders and unreadable or unstorable lines are skipped, odd
characters are cleaned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctxdb.transcripts.parser import parse_transcript
from ctxdb.transcripts.tail import latest_context_tokens


def assistant(message_id: str | None, tokens: int, *, sidechain: bool = False,
              model: str = "claude-opus-4-6", uuid: str | None = "u", usage: Any = None) -> bytes:
    message: dict[str, Any] = {
        "model": model, "role": "assistant", "content": [{"type": "text", "text": "ok"}],
        "usage": {"input_tokens": tokens, "output_tokens": 3,
                  "cache_creation_input_tokens": 10, "cache_read_input_tokens": 100}
        if usage is None else usage}
    if message_id is not None:
        message["id"] = message_id
    return json.dumps({"type": "assistant", "uuid": uuid, "isSidechain": sidechain,
                       "message": message}).encode() + b"\n"


USER = json.dumps({"type": "user", "message": {"role": "user", "content": "go"}}).encode() + b"\n"

CASES: dict[str, bytes] = {
    "the latest response": assistant("m1", 1) + USER + assistant("m2", 2) + USER,
    "a response's latest record": assistant("m1", 1) + assistant("m1", 5) + USER,
    "a subagent's response is passed": assistant("m1", 1) + assistant("s1", 9, sidechain=True),
    "a response whose latest record is a subagent's": (
        assistant("m1", 1) + assistant("m2", 2) + assistant("m2", 3, sidechain=True)),
    "only subagents": assistant("s1", 1, sidechain=True) + assistant("s2", 2, sidechain=True),
    "a placeholder": assistant("m1", 1) + assistant("m2", 0, model="<synthetic>"),
    "the uuid when there is no message id": assistant("m1", 1) + assistant(None, 7, uuid="u7"),
    "neither id nor uuid": assistant("m1", 1) + assistant(None, 7, uuid=None),
    "usage that is no object": assistant("m1", 1) + assistant("m2", 2, usage=[1, 2]),
    "odd counts": assistant("m1", 1) + assistant("m2", 2, usage={
        "input_tokens": -4, "cache_creation_input_tokens": True,
        "cache_read_input_tokens": "12"}),
    "an unstorable message id": assistant("m1", 1) + assistant("m" * 100_000, 2),
    # Cleaned (U+FFFD), as the parser stores them: still the latest response.
    "a NUL in the message id": assistant("m1", 1) + assistant("m\x002", 2),
    "a lone surrogate in the message id": assistant("m1", 1) + assistant("m\ud8002", 2),
    "malformed lines": (assistant("m1", 1) + b"{not json\n" + b"[1, 2]\n" + b"\n"
                        + b'{"type": "assistant", "message": ' + b"[" * 50_000 + b"]" * 50_000
                        + b"}\n"),
    "no responses": USER + USER,
    "nothing": b"",
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("block", [64, 256 * 1024])
def test_the_tail_reads_the_context_in_use_as_the_parser_does(
    tmp_path: Path, case: str, block: int
) -> None:
    path = tmp_path / "session.jsonl"
    path.write_bytes(CASES[case] + b'{"type": "assistant", "half written')
    assert latest_context_tokens(path, block) == parse_transcript(path).context_tokens


def test_the_cases_tell_the_rules_apart(tmp_path: Path) -> None:
    """Each case has the answer its name says (so that agreeing is no accident)."""
    answers = {}
    for case, data in CASES.items():
        path = tmp_path / "session.jsonl"
        path.write_bytes(data)
        answers[case] = latest_context_tokens(path)
    assert answers == {
        "the latest response": 112, "a response's latest record": 115,
        "a subagent's response is passed": 111,
        "a response whose latest record is a subagent's": 111, "only subagents": None,
        "a placeholder": 111, "the uuid when there is no message id": 117,
        "neither id nor uuid": 111, "usage that is no object": 111, "odd counts": 0,
        "an unstorable message id": 111, "a NUL in the message id": 112,
        "a lone surrogate in the message id": 112, "malformed lines": 111,
        "no responses": None, "nothing": None,
    }
