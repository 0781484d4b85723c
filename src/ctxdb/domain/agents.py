"""Values the agent-client front ends (hooks) hand to the session service.

The front end computes them (from the hook's JSON payload, from git); the service checks them
before any transaction starts, so a malformed payload changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

# The clients' names and limits live in domain.client_rules (the remote hook's short path
# reads them without this module's imports); named here as before.
from ctxdb.domain.client_rules import AUTO_PRE_COMPACT_EVERY_TURN as AUTO_PRE_COMPACT_EVERY_TURN
from ctxdb.domain.client_rules import CLIENTS as CLIENTS
from ctxdb.domain.client_rules import INJECTION_LIMITS as INJECTION_LIMITS
from ctxdb.domain.client_rules import INJECTION_MARGIN as INJECTION_MARGIN
from ctxdb.domain.client_rules import RELOAD_AFTER_COMPRESSION as RELOAD_AFTER_COMPRESSION
from ctxdb.domain.client_rules import RESUME_DROPS_INJECTIONS as RESUME_DROPS_INJECTIONS
from ctxdb.domain.client_rules import injection_limit as injection_limit
from ctxdb.domain.validation import check_identifier, check_text
from ctxdb.errors import ValidationError

if TYPE_CHECKING:
    from ctxdb.transcripts.reader import Source
    from ctxdb.transcripts.uploaded import UploadedTranscript

SESSION_SOURCES = ("startup", "resume", "clear", "compact")
MAX_PATH_CHARS = 4_096
MAX_HOSTNAME_CHARS = 255


def injection_max_chars(client: str) -> int:
    """How long ctxdb builds an injection for ``client``: its cap less a margin."""
    return injection_limit(client) - INJECTION_MARGIN


class RepoIdentity(NamedTuple):
    """Which project a working directory belongs to.

    ``repo_key`` is the same for every clone and worktree of one repository (see
    ``ctxdb.repo_identity``); ``worktree`` and ``branch`` describe this checkout only.
    """

    repo_key: str
    name: str
    worktree: str | None = None
    branch: str | None = None

    def checked(self) -> RepoIdentity:
        check_identifier(self.repo_key, "repo_key")
        check_identifier(self.name, "project name")
        for what, value in (("worktree", self.worktree), ("branch", self.branch)):
            if value is not None:
                check_text(value, what, MAX_PATH_CHARS)
        return self


class AgentSession(NamedTuple):
    """One agent session as its client names it: ``(client, session_id)`` is its identity."""

    client: str
    session_id: str
    transcript_path: str | None = None
    cwd: str | None = None
    process_id: int | None = None
    # The agent's machine, when it is not this one (an event forwarded to a server); None:
    # this machine's name is recorded.
    hostname: str | None = None
    # The part of the transcript a remote agent sent with its event (its transcript_path is
    # then None: a path on the agent's machine is no file of the server's to open).
    uploaded: UploadedTranscript | None = None
    # With it, the new bytes of the session's subagent transcripts (<session>/subagents/).
    uploaded_subagents: tuple[UploadedTranscript, ...] = ()

    @property
    def transcript(self) -> Source | None:
        """What the session's transcript is read from: the upload, else the local file."""
        return self.uploaded if self.uploaded is not None else self.transcript_path

    def checked(self) -> AgentSession:
        if self.client not in CLIENTS:
            raise ValidationError(
                f"unknown client {self.client!r}: expected one of {', '.join(CLIENTS)}")
        check_identifier(self.session_id, "session_id")
        for what, value, limit in (("transcript_path", self.transcript_path, MAX_PATH_CHARS),
                                   ("cwd", self.cwd, MAX_PATH_CHARS),
                                   ("hostname", self.hostname, MAX_HOSTNAME_CHARS)):
            if value is not None:
                check_text(value, what, limit)
        return self

    @property
    def default_instance_id(self) -> str:
        """The id of the instance a hook registers for this session (stable across hooks)."""
        return check_identifier(f"{self.client}-{self.session_id}", "instance_id")


def check_source(source: object) -> str:
    if source not in SESSION_SOURCES:
        raise ValidationError(
            f"unknown session source {source!r}: expected one of {', '.join(SESSION_SOURCES)}")
    return str(source)
