"""The observations of a transcript: what its session did, one plain value per thing done.

Deterministic (no language model): the same chunk always gives the same observations, each
with a natural ``key`` made from the record it comes from (a record's uuid, a tool call's id),
so that storing them again adds nothing. Rules (docs/timeline.md):

- ``prompt``: each text the user typed (:mod:`ctxdb.transcripts.prompts`);
- ``read`` / ``edit``: each call of a tool that reads / changes a file, with its path; a call
  whose result is an error read or changed nothing and is an ``error`` only;
- ``command``: each shell command, with its exit code when its result says it (0 for a result
  that is no error, N for Claude Code's "Exit code N"; unknown otherwise);
- ``error``: each tool call whose result is an error, with the start of what it reported;
- ``todo``: each change of the todo list (TodoWrite, write_todos, update_plan, TaskCreate,
  TaskUpdate), with the list or the change;
- ``decision``: the user's answers to AskUserQuestion and the decision sentences of the
  main chain's text (:mod:`ctxdb.transcripts.decisions`);
- ``compaction``: each compaction boundary; ``summary``: the summary written after one.

Subagents' calls (sidechains) count: they are the session's doing too. Texts are bounded by
``MAX_OBSERVATION_CHARS``; keys by ``MAX_KEY_PART_CHARS`` per part (a longer id is hashed).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ctxdb.domain.vocabulary import ObservationKind as Kind
from ctxdb.transcripts.decisions import decision_sentences
from ctxdb.transcripts.models import (
    TODO_LIST_TOOLS,
    ToolResult,
    ToolUse,
    TranscriptChunk,
    todos_from_input,
)
from ctxdb.transcripts.text import clip, one_line

MAX_OBSERVATION_CHARS = 2_000
MAX_KEY_PART_CHARS = 120
# Shell tools: Claude Code's Bash, Codex's shell and exec_command, Gemini CLI's
# run_shell_command.
COMMAND_TOOLS = frozenset({"Bash", "shell", "local_shell", "exec_command", "run_shell_command"})
# Tools that read one file: Claude Code's Read and NotebookRead, Gemini CLI's read_file.
READ_TOOLS = frozenset({"Read", "NotebookRead", "read_file"})
READ_PATH_KEYS = ("file_path", "notebook_path", "absolute_path", "path")
PLAN_TOOL = "update_plan"  # Codex's todo list: the whole plan each call
EXIT_CODE = re.compile(r"^(?:Error: )?Exit code (\d{1,9})\b")


@dataclass(frozen=True)
class Observation:
    kind: Kind
    key: str  # unique across sessions: the session id, the kind, the record it comes from
    text: str
    timestamp: str | None
    offset: int
    tool: str | None = None
    exit_code: int | None = None


def observations_of(chunk: TranscriptChunk, session_id: str,
                    file_label: str) -> list[Observation]:
    """The observations of ``chunk``, in file order. ``file_label`` names the file within the
    session (its name), for the keys of records that carry no id of their own."""
    keys = _Keys(session_id, file_label)
    results = {result.tool_use_id: result for result in chunk.tool_results}
    found = [Observation(Kind.PROMPT, keys.of(Kind.PROMPT, p.uuid, p.offset),
                         _bounded(p.text), p.timestamp, p.offset)
             for p in chunk.user_prompts]
    found.extend(_decisions(chunk, keys))  # a record's text comes before its tool calls
    for use in chunk.tool_uses:
        found.extend(_of_tool_use(use, results.get(use.id), keys))
    used = {use.id for use in chunk.tool_uses}
    found.extend(_error(result, None, keys) for result in chunk.tool_results
                 if result.is_error and result.tool_use_id not in used)
    found.extend(
        Observation(Kind.COMPACTION, keys.of(Kind.COMPACTION, c.uuid, c.offset),
                    _compaction_text(c.trigger, c.pre_tokens), c.timestamp, c.offset)
        for c in chunk.compactions)
    found.extend(
        Observation(Kind.SUMMARY, keys.of(Kind.SUMMARY, s.uuid, s.offset),
                    _bounded(s.text.strip() or "(empty summary)"), s.timestamp, s.offset)
        for s in chunk.compact_summaries)
    found.sort(key=lambda observation: observation.offset)  # stable: call order kept
    return found


def command_exit_code(result: ToolResult | None) -> int | None:
    """A shell command's exit code, when its result says it."""
    if result is None:
        return None
    if not result.is_error:
        return 0
    code = EXIT_CODE.match(result.error_text or "")
    return int(code.group(1)) if code else None


def command_key(session_id: str, tool_use_id: str) -> str:
    """The key of a command's observation (to complete it when its result comes later)."""
    return _Keys(session_id, "").of(Kind.COMMAND, tool_use_id, 0)


class _Keys:
    def __init__(self, session_id: str, file_label: str) -> None:
        self.session = _part(session_id)
        self.file = _part(file_label)

    def of(self, kind: Kind, record_id: str | None, offset: int, suffix: str = "") -> str:
        where = _part(record_id) if record_id else f"{self.file}@{offset}"
        return f"{self.session}/{kind.value}:{where}{suffix}"


def _part(text: str) -> str:
    if len(text) <= MAX_KEY_PART_CHARS:
        return text
    return "sha256-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _bounded(text: str) -> str:
    return clip(text, MAX_OBSERVATION_CHARS)


def _of_tool_use(use: ToolUse, result: ToolResult | None, keys: _Keys) -> list[Observation]:
    failed = result is not None and result.is_error
    found = [_error(result, use, keys)] if result is not None and failed else []
    observed = _observed_call(use, result, failed)
    if observed is not None:
        kind, text, exit_code = observed
        found.insert(0, Observation(kind, keys.of(kind, use.id, use.offset), _bounded(text),
                                    use.timestamp, use.offset, use.name, exit_code))
    return found


def _observed_call(use: ToolUse, result: ToolResult | None,
                   failed: bool) -> tuple[Kind, str, int | None] | None:
    """What a tool call was (kind, text, exit code), or None for a call the timeline skips."""
    if use.name in COMMAND_TOOLS:
        command = _command_text(use.input)
        return None if command is None else (Kind.COMMAND, command, command_exit_code(result))
    if failed:
        return None  # a failed read or edit read or changed nothing: its error says it
    if use.edited_path is not None:
        return Kind.EDIT, use.edited_path, None
    if use.name in READ_TOOLS:
        path = _first_text(use.input, READ_PATH_KEYS)
        return None if path is None else (Kind.READ, path, None)
    if use.name in TODO_LIST_TOOLS or use.name == PLAN_TOOL:
        return Kind.TODO, _todo_text(use), None
    return None


def _error(result: ToolResult, use: ToolUse | None, keys: _Keys) -> Observation:
    what = use.name if use is not None else "a tool call"
    report = one_line(result.error_text or "")
    text = f"{what} failed" + (f": {report}" if report else "")
    return Observation(Kind.ERROR, keys.of(Kind.ERROR, result.tool_use_id, result.offset),
                       _bounded(text), result.timestamp, result.offset,
                       use.name if use is not None else None)


def _command_text(tool_input: dict[str, Any]) -> str | None:
    command = tool_input.get("command", tool_input.get("cmd"))
    if isinstance(command, list) and all(isinstance(part, str) for part in command):
        command = " ".join(command)  # Codex's shell takes an argument vector
    return command if isinstance(command, str) and command.strip() else None


def _first_text(tool_input: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _todo_text(use: ToolUse) -> str:
    """The todo list a call wrote, or the change it made to it."""
    if use.name == PLAN_TOOL:
        plan = use.input.get("plan")
        steps = [item for item in plan if isinstance(item, dict)] if isinstance(plan, list) else []
        return "; ".join(f"[{step.get('status', 'pending')}] {step.get('step', '')}"
                         for step in steps) or "(empty plan)"
    if use.name in ("TaskCreate", "TaskUpdate"):
        subject, status = use.input.get("subject"), use.input.get("status")
        task = use.input.get("taskId")
        parts = [f"task {task}" if isinstance(task, str) else "new task",
                 f"[{status}]" if isinstance(status, str) else "",
                 subject if isinstance(subject, str) else ""]
        return " ".join(part for part in parts if part)
    todos = todos_from_input(use.input)
    return "; ".join(f"[{todo.status}] {todo.content}" for todo in todos) or "(empty list)"


def _decisions(chunk: TranscriptChunk, keys: _Keys) -> list[Observation]:
    """Each decision numbered within its record (a record is read whole, so the numbers do
    not depend on where a read started)."""
    numbers: Counter[tuple[str | None, int]] = Counter()

    def key(record_id: str | None, offset: int) -> str:
        number = numbers[(record_id, offset)]
        numbers[(record_id, offset)] += 1
        return keys.of(Kind.DECISION, record_id, offset, f"#{number}")

    found = [Observation(Kind.DECISION, key(a.uuid, a.offset),
                         _bounded(f"User chose: {one_line(a.answer)} "
                                  f"(asked: {one_line(a.question)})"),
                         a.timestamp, a.offset)
             for a in chunk.user_answers]
    for text in chunk.assistant_texts:
        if not text.sidechain:
            found.extend(Observation(Kind.DECISION, key(text.uuid, text.offset),
                                     _bounded(sentence), text.timestamp, text.offset)
                         for sentence in decision_sentences(text.text))
    return found


def _compaction_text(trigger: str | None, pre_tokens: int | None) -> str:
    size = f" at {pre_tokens:,} tokens" if pre_tokens is not None else ""
    return f"{trigger or 'unknown'} compaction{size}"
