"""The agent clients' names, event names and limits, as plain constants.

Read by the hook's payload parsing (``domain.hook_events``), the session values
(``domain.agents``) and the remote hook's short path (``hooks.remote_entry``), which starts
on every prompt and may import no more than this: no typing, no re, no enum.
"""

CLIENTS = ("claude-code", "codex", "gemini")
# The longest text each client takes from a hook (``additionalContext``), in characters.
# Claude Code documents 10,000; Codex and Gemini CLI document no cap, and ctxdb holds them to
# the same one. Injections are built to ``INJECTION_MARGIN`` below it.
INJECTION_LIMITS = {"claude-code": 10_000, "codex": 10_000, "gemini": 10_000}
INJECTION_MARGIN = 500
# Clients whose resumed session has lost what the hooks injected: Gemini CLI rebuilds a
# resumed history without the user messages that start with <hook_context> and expects
# SessionStart(resume) to supply that context again (checked with Gemini CLI 0.61).
RESUME_DROPS_INJECTIONS = frozenset({"gemini"})
# Clients that fire their pre-compaction event (trigger "auto") on every turn, before they
# decide whether to compress: Gemini CLI's PreCompress. Only a manual one (/compress) is sure
# to be followed by a compression.
AUTO_PRE_COMPACT_EVERY_TURN = frozenset({"gemini"})
# Clients that start no SessionStart(compact) after compressing: ctxdb reads the compression
# from their transcript and puts the context back on the next prompt (or resume) instead.
RELOAD_AFTER_COMPRESSION = frozenset({"gemini"})

# Gemini CLI event -> the Claude Code event with the same role.
GEMINI_EVENTS = {
    "SessionStart": "SessionStart",
    "BeforeAgent": "UserPromptSubmit",
    "AfterAgent": "Stop",
    "PreCompress": "PreCompact",
    "SessionEnd": "SessionEnd",
}
EVENTS = ("SessionStart", "UserPromptSubmit", "PreCompact", "PostCompact", "Stop",
          "SubagentStop", "SessionEnd")
# Events whose output the clients add to the model's context.
CONTEXT_EVENTS = ("SessionStart", "UserPromptSubmit")
# What one event carries of a remote agent's transcript at most; a longer backlog goes with
# the next events (``transcripts.uploaded``).
MAX_UPLOAD_BYTES = 1024 * 1024


def event_role(client: str, name: str) -> str:
    """The role of the client's event ``name`` in Claude Code's vocabulary ("": unknown)."""
    event = GEMINI_EVENTS.get(name, "") if client == "gemini" else name
    return event if event in EVENTS else ""


def injection_limit(client: str) -> int:
    """The client's cap on one injected string (the strictest one for an unknown client)."""
    return INJECTION_LIMITS.get(client, min(INJECTION_LIMITS.values()))
