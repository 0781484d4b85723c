"""The bad-input corpus through ``ctxdb hook``, in process (see ``bad_input_corpus.py``).

The hook's contract with the agent clients: exit 0 whatever it is given, print nothing or one
JSON object, never block. Each case feeds :func:`ctxdb.hooks.command.run_hook_command` (what
``ctxdb hook`` runs) one bad event on stdin: bytes that are not UTF-8 or not JSON, JSON over
the depth or integer limits, events that are not objects or lack their name or session,
known events whose session id no row may carry, and events naming a transcript ctxdb cannot
read. Each must be logged as a typed ctxdb error
(never an exception of another kind), or, for an event ctxdb does not handle, skipped without
a word; nothing printed, and the database as it was.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bad_input_corpus import (
    CORPUS_SETTINGS,
    EXAMPLES,
    LONE_SURROGATE,
    ODD_TEXT,
    Unchanged,
    build_world,
    counted,
)
from ctxdb.domain.agents import CLIENTS
from ctxdb.domain.hook_events import EVENTS, GEMINI_EVENTS
from ctxdb.errors import CtxdbError
from ctxdb.hooks import command, dispatch, logfile

DEADLINE = 30.0  # explicit: the per-event defaults (1 s for SessionEnd) assume an idle machine


class Payload:
    """Bytes for stdin, and what ctxdb must do with them: log them as refused, skip them
    without a word (``ignored``), or ``either`` (bytes that are not UTF-8 are read with
    replacement characters, as documented, and the event then goes its way)."""

    def __init__(self, data: bytes, label: str, outcome: str = "refused",
                 event_name: str = "") -> None:
        self.data = data
        self.label = label
        self.outcome = outcome
        self.event_name = event_name

    def outcome_for(self, client: str) -> str:
        """Each client knows its own event names only (Gemini CLI's differ)."""
        if self.event_name:
            known = GEMINI_EVENTS if client == "gemini" else EVENTS
            return self.outcome if self.event_name in known else "ignored"
        return self.outcome

    def __repr__(self) -> str:
        return f"Payload({self.label!r}, {self.data[:120]!r})"


def event(name: str, session_id: Any, **fields: Any) -> dict[str, Any]:
    return {"hook_event_name": name, "session_id": session_id, "cwd": "/nowhere",
            "transcript_path": None, **fields}


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def _deep(levels: int, as_object: bool) -> bytes:
    inner = (b'{"a":' * levels + b"1" + b"}" * levels) if as_object else (
        b"[" * levels + b"]" * levels)
    return b'{"hook_event_name": "SessionStart", "session_id": "s1", "x": ' + inner + b"}"


EVENT_NAMES = st.sampled_from([*EVENTS, *GEMINI_EVENTS])
SESSION_POISONS = st.one_of(
    st.builds(lambda text: text + "\x00", ODD_TEXT),  # a NUL travels as \u0000 in JSON
    st.builds(lambda s, text: text + s, LONE_SURROGATE, ODD_TEXT),
    st.integers(201, 2_000).map(lambda n: "s" * n),
)
PAYLOADS = st.one_of(
    st.builds(lambda data: Payload(data, "random bytes"),
              st.binary(max_size=200).filter(lambda b: not b.strip().startswith(b"{"))),
    st.builds(lambda data, cut: Payload(data[:cut], "truncated event"),
              st.builds(dumps, st.builds(event, EVENT_NAMES, st.just("s1"))),
              st.integers(1, 60)),
    st.builds(lambda bad: Payload(b'{"hook_event_name": "Stop", "session_id": "s' + bad + b'"}',
                                  "invalid UTF-8", "either"),
              st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80"])),
    st.builds(lambda n, o: Payload(_deep(n, o), f"nested {n}"), st.integers(101, 5_000),
              st.booleans()),
    st.builds(lambda n: Payload(b'{"hook_event_name": "Stop", "session_id": "s1", "n": '
                                + b"9" * n + b"}", f"{n}-digit integer"),
              st.integers(4_301, 8_000)),
    st.builds(lambda value: Payload(dumps(value), "not an object"),
              st.one_of(st.lists(st.integers(), max_size=3), ODD_TEXT, st.integers(),
                        st.none(), st.booleans())),
    st.builds(lambda name, sid: Payload(dumps({"hook_event_name": name, "session_id": sid}),
                                        "no name or no session"),
              st.one_of(st.none(), st.just(""), st.integers(), st.lists(st.text(max_size=3))),
              st.one_of(st.none(), st.just(""), st.integers(), st.just("s1"))),
    st.builds(lambda name, sid: Payload(dumps(event(name, sid)), "a session id no row holds",
                                        event_name=name),
              EVENT_NAMES, SESSION_POISONS),
    # Events ctxdb does not handle: documented to do nothing, say nothing.
    st.builds(lambda name: Payload(dumps(event(name, "s1")), "an event ctxdb ignores",
                                   "ignored"),
              st.sampled_from(["PreToolUse", "PostToolUse", "Notification", "BeforeTool",
                               "sessionstart", "SessionStart "])),
)


# Transcripts ctxdb must refuse to read (an empty one is a session that has said nothing yet).
BAD_TRANSCRIPTS = {
    "garbage.jsonl": b"\xff\xfe\x00garbage\n{not json\n",
    "not-a-transcript.jsonl": b'{"a": 1}\n[1, 2]\n"x"\n',
    "deep.jsonl": b"[" * 500 + b"]" * 500 + b"\n",
    "digits.jsonl": b'{"type": "user", "n": ' + b"9" * 5_000 + b"}\n",
}
TRANSCRIPT_EVENTS = ["Stop", "SubagentStop", "PostCompact", "AfterAgent"]


def transcript_payloads(folder: Path) -> st.SearchStrategy[Payload]:
    """Events that name a transcript ctxdb cannot read: missing, a folder, a path no file
    system holds, or a file that is not a transcript."""
    for name, data in BAD_TRANSCRIPTS.items():
        (folder / name).write_bytes(data)
    paths = st.one_of(
        st.sampled_from([str(folder / name) for name in BAD_TRANSCRIPTS]),
        st.just(str(folder)),
        st.builds(lambda tail: str(folder / "missing" / tail), st.text("abc", min_size=1)),
        st.builds(lambda text: f"{folder}/{text}\x00.jsonl", ODD_TEXT),
        st.integers(4_097, 6_000).map(lambda n: "/" + "p" * n),
    )
    return st.builds(
        lambda name, path: Payload(dumps(event(name, "s1", transcript_path=path)),
                                   "a transcript ctxdb cannot read", event_name=name),
        st.sampled_from(TRANSCRIPT_EVENTS), paths)


class Recorder:
    """What the hook logged: (what it was doing, the exception, the message)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, BaseException | None, str]] = []

    def __call__(self, context: str, exc: BaseException | None = None,
                 message: str = "") -> None:
        self.entries.append((context, exc, message))


def run_hook(client: str, data: bytes, load_settings: Any) -> tuple[int, bytes]:
    """``ctxdb hook --client CLIENT`` with ``data`` on stdin; its status and stdout."""
    stdin, stdout = sys.stdin, sys.stdout
    sys.stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    out = io.BytesIO()
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8")
    try:
        status = command.run_hook_command(client, DEADLINE, load_settings)
        sys.stdout.flush()
        printed = out.getvalue()
    finally:
        sys.stdin, sys.stdout = stdin, stdout
    return status, printed


def _left(*_: Any) -> None:
    raise AssertionError("the hook ran out of its deadline (it would have left the agent)")


def test_bad_hook_input_is_logged_as_typed_and_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world(str(tmp_path / "corpus.db"), tmp_path)
    unchanged = Unchanged(world.db)
    recorder = Recorder()
    monkeypatch.setattr(dispatch, "log_failure", recorder)
    monkeypatch.setattr(logfile, "log_failure", recorder)
    monkeypatch.setattr(dispatch, "_leave_now", _left)
    count = counted("hook")
    ran = 0

    @settings(CORPUS_SETTINGS, max_examples=EXAMPLES["hook"])
    @given(client=st.sampled_from(sorted(CLIENTS)),
           payload=PAYLOADS | transcript_payloads(tmp_path))
    def corpus(client: str, payload: Payload) -> None:
        nonlocal ran
        recorder.entries.clear()
        status, output = run_hook(client, payload.data, lambda: world.settings)
        unchanged.check(f"{client} hook {payload.label}")
        assert status == 0
        assert output == b"", f"{payload.label}: printed {output[:200]!r}"
        errors = [exc for _context, exc, _message in recorder.entries if exc is not None]
        assert all(isinstance(exc, CtxdbError) for exc in errors), (
            f"{payload.label}: {[repr(exc) for exc in errors]}")
        outcome = payload.outcome_for(client)
        if outcome == "refused":
            assert errors, f"{payload.label}: not logged as refused: {recorder.entries}"
        elif outcome == "ignored":
            assert recorder.entries == [], f"{payload.label}: {recorder.entries}"
        ran += 1
        count()

    try:
        corpus()
    finally:
        world.db.close()
    assert ran >= EXAMPLES["hook"], f"only {ran} of {EXAMPLES['hook']} cases ran"
