"""A transcript that lives on another machine: the bytes of it an agent's hook sent.

A remote agent's hook (``ctxdb hook`` with ``CTXDB_URL=http(s)://…``) sends the part of its
transcript the event needs: the bytes appended since the server's stored offset (ingestion),
or the file's last block (the context in use); for a handoff, the handoff itself, read on
the agent's machine from the whole file and its subagents' with the local reader. The
readers of this package take an :class:`UploadedTranscript` wherever they take a path and read
it as they would read the file, under the path the agent named, which is only a name here:
the class has no ``__fspath__``, so nothing can open it on this machine's disk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ctxdb.transcripts.handoff import Handoff

from ctxdb.domain.client_rules import MAX_UPLOAD_BYTES as MAX_UPLOAD_BYTES


class UploadedTranscript(NamedTuple):
    """Bytes ``[offset, offset + len(data))`` of the agent's file ``name`` (``size`` bytes
    long), complete lines only, followed by ``skipped`` bytes of one line over the upload's
    limit that the agent left out."""

    name: str
    offset: int
    data: bytes
    size: int
    skipped: int = 0
    # The handoff the agent's machine read from the whole file and its subagents' files, as
    # a local hook reads them (``handoff_since_last_compaction``): a handoff is made from it
    # rather than from the bytes sent.
    handoff: Handoff | None = None

    @property
    def end(self) -> int:
        """The offset just after what was sent (and skipped)."""
        return self.offset + len(self.data) + self.skipped

    def __str__(self) -> str:
        return self.name
