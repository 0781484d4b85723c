"""Plain values extracted from a Claude Code transcript.

Every extracted item carries ``offset``: the byte offset of the start of the JSONL line it came
from. Offsets order items across incremental reads of the same file and tell which items come
after a compaction boundary, without keeping the records themselves.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from ctxdb.transcripts.errors import InvalidTranscriptOffsetError

# Tools whose input names a file they change. NotebookEdit names it ``notebook_path``;
# Gemini CLI's write_file and replace name it ``file_path``, and so does Codex's apply_patch
# as the Codex parser reads it (the first file of the patch).
EDIT_TOOLS = frozenset({"Edit", "MultiEdit", "Write", "NotebookEdit", "write_file", "replace",
                        "apply_patch"})
EDIT_PATH_KEYS = ("file_path", "notebook_path")
TODO_TOOL = "TodoWrite"
# Gemini CLI's counterpart of TodoWrite: the whole list each call, ``description`` for content.
GEMINI_TODO_TOOL = "write_todos"
WHOLE_LIST_TOOLS = frozenset({TODO_TOOL, GEMINI_TODO_TOOL})
CLOSED_STATUSES = frozenset({"completed", "cancelled"})
# The task tools that keep the todo list in Claude Code 2.1.x (TaskGet, TaskList only read).
TASK_CREATE, TASK_UPDATE = "TaskCreate", "TaskUpdate"
TODO_LIST_TOOLS = frozenset({TODO_TOOL, GEMINI_TODO_TOOL, TASK_CREATE, TASK_UPDATE})


@dataclass(frozen=True)
class UsageEntry:
    """Token usage of one API response (one ``message.id``), from its latest record."""

    message_id: str
    model: str | None
    timestamp: str | None
    request_id: str | None
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    sidechain: bool
    offset: int

    @property
    def context_tokens(self) -> int:
        """Tokens the model had in its context window for this response."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


@dataclass(frozen=True)
class Compaction:
    """A ``system``/``compact_boundary`` record: the context was summarized here."""

    uuid: str | None
    timestamp: str | None
    trigger: str | None
    pre_tokens: int | None
    offset: int


@dataclass(frozen=True)
class CompactSummary:
    """The user record flagged ``isCompactSummary`` that carries the summary after a boundary."""

    uuid: str | None
    timestamp: str | None
    text: str
    offset: int


@dataclass(frozen=True)
class SessionSummary:
    """A 1.0.x leading ``summary`` record (a title for a conversation leaf)."""

    summary: str
    leaf_uuid: str | None
    offset: int


@dataclass(frozen=True)
class ToolUse:
    id: str
    name: str
    input: dict[str, Any]
    message_id: str | None
    uuid: str | None
    timestamp: str | None
    sidechain: bool
    offset: int

    @property
    def edited_path(self) -> str | None:
        if self.name not in EDIT_TOOLS:
            return None
        for key in EDIT_PATH_KEYS:
            value = self.input.get(key)
            if isinstance(value, str) and value:
                return value
        return None


@dataclass(frozen=True)
class ToolResult:
    tool_use_id: str
    is_error: bool
    uuid: str | None
    timestamp: str | None
    sidechain: bool
    offset: int
    # The id of the task a TaskCreate call created (``toolUseResult.task.id``); None when the
    # result's record says none, or holds several results and so cannot say whose it is.
    task_id: str | None = None
    # The start of what a failed call reported (Claude Code writes "Exit code N" first for a
    # failed command); None for a call that did not fail, or whose report is not text.
    error_text: str | None = None


@dataclass(frozen=True)
class UserAnswer:
    """The user's answer to an AskUserQuestion tool call: a decision made by the user."""

    question: str
    answer: str
    uuid: str | None
    timestamp: str | None
    offset: int


@dataclass(frozen=True)
class UserPrompt:
    """Text the user typed on the main chain (see :mod:`ctxdb.transcripts.prompts`)."""

    text: str
    uuid: str | None
    timestamp: str | None
    offset: int


@dataclass(frozen=True)
class AssistantText:
    text: str
    message_id: str | None
    uuid: str | None
    timestamp: str | None
    sidechain: bool
    offset: int


@dataclass(frozen=True)
class Todo:
    content: str
    status: str

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES


@dataclass(frozen=True)
class TranscriptChunk:
    """What one read of a transcript (from ``start_offset`` to ``end_offset``) contained."""

    path: str
    start_offset: int
    end_offset: int
    records: int = 0
    malformed_lines: int = 0  # not JSON objects, nested too deep or too long: skipped
    rejected_lines: int = 0  # JSON records whose key cannot be stored: skipped
    skipped_records: int = 0
    record_types: dict[str, int] = field(default_factory=dict)
    session_id: str | None = None
    version: str | None = None
    agent_id: str | None = None
    usage: list[UsageEntry] = field(default_factory=list)
    compactions: list[Compaction] = field(default_factory=list)
    compact_summaries: list[CompactSummary] = field(default_factory=list)
    summaries: list[SessionSummary] = field(default_factory=list)
    tool_uses: list[ToolUse] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    user_answers: list[UserAnswer] = field(default_factory=list)
    user_prompts: list[UserPrompt] = field(default_factory=list)
    assistant_texts: list[AssistantText] = field(default_factory=list)

    @property
    def context_tokens(self) -> int | None:
        """Context in use after the latest main-chain response, or None if there is none."""
        latest = self.latest_main_usage
        return None if latest is None else latest.context_tokens

    @property
    def latest_main_usage(self) -> UsageEntry | None:
        main = [entry for entry in self.usage if not entry.sidechain]
        return max(main, key=lambda entry: entry.offset) if main else None

    def files_edited(
        self,
        *,
        since_offset: int = -1,
        since_timestamp: str | None = None,
        include_sidechains: bool = True,
    ) -> list[str]:
        """Unique edited paths, most recently edited last; edits whose result was an error
        (the file was not changed) are left out, edits still waiting for a result are kept.

        ``since_timestamp`` keeps edits timestamped strictly after it (ISO-8601 UTC timestamps
        as Claude Code writes them sort as text).
        """
        failed = {result.tool_use_id for result in self.tool_results if result.is_error}
        latest_edit: dict[str, int] = {}
        for use in self.tool_uses:
            path = use.edited_path
            if path is None or use.offset <= since_offset or use.id in failed:
                continue
            if use.sidechain and not include_sidechains:
                continue
            if since_timestamp is not None and not (use.timestamp or "") > since_timestamp:
                continue
            latest_edit.pop(path, None)  # re-insert so dict order is "latest edit last"
            latest_edit[path] = use.offset
        return list(latest_edit)

    def todos(self) -> list[Todo] | None:
        """The session's todo list, or None if the main chain never wrote one.

        Claude Code keeps it with one of two sets of tools: TodoWrite, each call giving the
        whole list, or (2.1.x, unless turned off) the task tools, TaskCreate adding a task and
        TaskUpdate changing one; Gemini CLI with write_todos, like TodoWrite. Whichever was
        called last gives the list; a whole-list call whose result is an error changed
        nothing. Only the main chain's calls count: subagents keep their own lists.
        """
        failed = {result.tool_use_id for result in self.tool_results if result.is_error}
        calls = [use for use in self.tool_uses if use.name in TODO_LIST_TOOLS
                 and not use.sidechain
                 and not (use.name in WHOLE_LIST_TOOLS and use.id in failed)]
        if not calls:
            return None
        if calls[-1].name in WHOLE_LIST_TOOLS:
            return todos_from_input(calls[-1].input)
        return self._task_list([use for use in calls if use.name not in WHOLE_LIST_TOOLS])

    def _task_list(self, calls: list[ToolUse]) -> list[Todo]:
        """The tasks the TaskCreate and TaskUpdate ``calls`` leave, in creation order.

        TaskUpdate names its task by the id TaskCreate's result reported. A call whose result
        is an error changed nothing; a TaskCreate still waiting for its result counts (its
        task cannot be updated later in what was read); an update of a task created before
        what was read is left out, as is a deleted task.
        """
        results = {result.tool_use_id: result for result in self.tool_results}
        tasks: dict[str, Todo] = {}
        for use in calls:
            result = results.get(use.id)
            if result is not None and result.is_error:
                continue
            if use.name == TASK_CREATE:
                subject = use.input.get("subject")
                if isinstance(subject, str) and subject:
                    key = result.task_id if result is not None and result.task_id else None
                    tasks[key or f"call:{use.id}"] = Todo(subject, "pending")
                continue
            task_id = use.input.get("taskId")
            if not isinstance(task_id, str) or task_id not in tasks:
                continue
            task = tasks[task_id]
            status, subject = use.input.get("status"), use.input.get("subject")
            if status == "deleted":
                del tasks[task_id]
                continue
            tasks[task_id] = Todo(subject if isinstance(subject, str) and subject else task.content,
                                  status if isinstance(status, str) and status else task.status)
        return list(tasks.values())

    def followed_by(self, later: TranscriptChunk) -> TranscriptChunk:
        """The chunk a single read from ``self.start_offset`` to ``later.end_offset`` gives.

        One API response can straddle the two reads: its usage entry is replaced by the later
        one (Claude Code writes the growing output count on each record), in first-seen order.
        """
        if later.start_offset != self.end_offset:
            raise InvalidTranscriptOffsetError(
                f"chunk starting at {later.start_offset} does not follow a chunk ending at "
                f"{self.end_offset}",
                start_offset=later.start_offset,
                end_offset=self.end_offset,
            )
        usage = {entry.message_id: entry for entry in self.usage}
        usage.update({entry.message_id: entry for entry in later.usage})
        types = Counter(self.record_types)
        types.update(later.record_types)
        return replace(
            self,
            end_offset=later.end_offset,
            records=self.records + later.records,
            malformed_lines=self.malformed_lines + later.malformed_lines,
            rejected_lines=self.rejected_lines + later.rejected_lines,
            skipped_records=self.skipped_records + later.skipped_records,
            record_types=dict(types),
            session_id=later.session_id or self.session_id,
            version=later.version or self.version,
            agent_id=later.agent_id or self.agent_id,
            usage=list(usage.values()),
            compactions=self.compactions + later.compactions,
            compact_summaries=self.compact_summaries + later.compact_summaries,
            summaries=self.summaries + later.summaries,
            tool_uses=self.tool_uses + later.tool_uses,
            tool_results=self.tool_results + later.tool_results,
            user_answers=self.user_answers + later.user_answers,
            user_prompts=self.user_prompts + later.user_prompts,
            assistant_texts=self.assistant_texts + later.assistant_texts,
        )


def todos_from_input(tool_input: dict[str, Any]) -> list[Todo]:
    """The ``todos`` of a TodoWrite (``content``) or write_todos (``description``) input;
    entries without text are dropped."""
    raw = tool_input.get("todos")
    if not isinstance(raw, list):
        return []
    todos = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        text = item.get("content", item.get("description"))
        if isinstance(text, str):
            status = item.get("status")
            todos.append(Todo(text, status if isinstance(status, str) else "pending"))
    return todos
