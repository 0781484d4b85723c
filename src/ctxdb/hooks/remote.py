"""A hook event forwarded to a ctxdb server (``CTXDB_URL=http(s)://host:port``).

The agent's machine keeps what only it knows: it parses the event (so a malformed one is
refused here, as locally), computes the repository identity of the working directory (git),
and posts both to ``POST /v1/hooks`` with ``CTXDB_TOKEN``. The server runs the same use
cases the local hook runs and answers ``{"output": …}``, the object to print (or null). The
answer is read, checked and written out again with the local renderer, so that whatever
the server sends the client gets one valid output or none.

Only the standard library (``_socket``, ``json``, ``base64``; ``socket`` and ``ssl`` for https
only) is imported here: no HTTP library, no database driver; the request itself is
``hooks.remote_http``'s. A server that is down, slow, refuses the token, redirects or answers
garbage raises :class:`RemoteHookError` (the dispatcher logs it and prints nothing: fail
open). Every wait is bounded by the ``answer_by`` instant. The common events usually take a
shorter path (``hooks.remote_entry``) that sends the same request and prints the same output.
"""

from __future__ import annotations

import _socket  # the C module: socket.py builds enums of all its constants on import
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ctxdb.database_url import server_address
from ctxdb.domain.hook_events import HookEvent, context_output
from ctxdb.hooks.remote_http import MAX_ANSWER_BYTES, WITHOUT_REPO, post, refusal
from ctxdb.hooks.remote_http import RemoteHookError as RemoteHookError
from ctxdb.hooks.remote_transcript import (
    INGESTING,
    note_offset,
    subagent_bodies,
    transcript_body,
)
from ctxdb.settings import default_data_dir

if TYPE_CHECKING:
    from ctxdb.domain.agents import RepoIdentity
    from ctxdb.settings import Settings

# The part of the transcript the event needs goes with it (remote_transcript.py).


def forward(event: HookEvent, repo_of: Callable[[HookEvent], RepoIdentity],
            settings: Settings, connect_within: float, answer_by: float,
            handoff: dict[str, Any] | None = None) -> str | None:
    """Post ``event`` to the server; the output to print (None: nothing). ``handoff``: the
    one :func:`ctxdb.hooks.remote_transcript.handoff_body` read, for an event that saves one
    (read before, so that the time it took is not the server's)."""
    if not settings.token:
        raise RemoteHookError(f"CTXDB_URL names the server {settings.url} but no token is "
                              "set (CTXDB_TOKEN or token in the config file); nothing was sent")
    body: dict[str, Any] = {
        "client": event.client, "event": event.fields, "host": _socket.gethostname(),
        "repo": None if event.event in WITHOUT_REPO else _repo_body(repo_of(event))}
    # Only ingesting events send from (and keep) the offset the server answered last.
    state_dir = default_data_dir(os.environ) if event.event in INGESTING else None
    transcript = transcript_body(event, settings.url, state_dir, handoff is not None)
    subagents: list[dict[str, Any]] = []
    if transcript is not None:
        body["transcript"] = transcript
        if handoff is not None:
            body["handoff"] = handoff
        if state_dir is not None:
            subagents = subagent_bodies(event, settings.url, state_dir, transcript)
        if subagents:
            body["subagents"] = subagents
    status, text = post(server_address(settings.url), settings.url, settings.token,
                        json.dumps(body).encode("utf-8"), connect_within, answer_by)
    if status != 200:
        raise refusal(status, text, settings.url)
    output = checked_output(event, text, settings.url)
    # The offset answered is where the next ingesting event starts, so only those events
    # keep it (a prompt's tail starts elsewhere, and keeping it would cost every prompt a file
    # write, hashlib and pathlib); checked_output checked the answer is a JSON object.
    if transcript is not None and state_dir is not None:
        answer = json.loads(text)
        note_offset(state_dir, settings.url, transcript["path"],
                    answer.get("transcript_offset"))
        offsets = answer.get("subagent_offsets")
        for sent in subagents if isinstance(offsets, dict) else []:
            note_offset(state_dir, settings.url, sent["path"], offsets.get(sent["path"]))
    return output


def _repo_body(repo: RepoIdentity) -> dict[str, Any]:
    return {"repo_key": repo.repo_key, "name": repo.name, "worktree": repo.worktree,
            "branch": repo.branch}


def checked_output(event: HookEvent, text: bytes, url: str) -> str | None:
    """The answer's output, written out again by the local renderer (the same bytes a local
    hook prints); anything but the expected shape is an error."""
    if len(text) > MAX_ANSWER_BYTES:
        raise RemoteHookError(f"the server at {url} answered more than {MAX_ANSWER_BYTES} "
                              "bytes; nothing was output")
    try:
        output = json.loads(text)["output"]
        if output is None:
            return None
        specific = output["hookSpecificOutput"]
        context = specific["additionalContext"]
        if specific["hookEventName"] != event.name or not isinstance(context, str):
            raise TypeError("another event's output, or no text in it")
    except (ValueError, KeyError, TypeError) as exc:
        raise RemoteHookError(f"the server at {url} answered something that is no hook "
                              f"output ({type(exc).__name__}: {exc}): {text[:200]!r}") from None
    return context_output(event, context)
