"""Transcript ingestion: token usage per API response, compaction boundaries and the
session's observations (its timeline: ``service/usecases/observations.py``), read
incrementally from the agents' JSONL transcripts.

Idempotent and incremental: each file's byte offset is stored (table ``transcripts``), a read
starts there, and the offset only moves by compare-and-set, so two ingestions racing on one
file never both apply the same lines. Usage rows are upserted on ``(session_id, message_id)``
(a response can straddle two reads), boundaries are keyed by their uuid. A file that became
shorter than the stored offset (replaced, truncated) is read again from the start, which the
upserts make harmless. A file longer than one read (``MAX_READ_BYTES``) is ingested in several
transactions, each moving the offset.

A transcript is third-party data: a bad line never stops the ingestion. The parser skips lines
that are no JSON object, nested too deep, too long, or whose key cannot be stored, and
replaces NUL characters and lone surrogates; here timestamps that are no real date are stored
as unknown and free text is bounded, so that both backends store exactly the same values. The
lines skipped are counted (``skipped_lines``) and the offset moves past them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ctxdb.domain.validation import (
    MAX_INDEXED_BYTES,
    MAX_INTEGER,
    MAX_NAME_LENGTH,
    check_identifier,
    check_text,
    is_real_timestamp,
)
from ctxdb.service.common import Service, audit
from ctxdb.service.usecases.instances import require_instance
from ctxdb.service.usecases.observations import record_observations
from ctxdb.storage import Row, Tx
from ctxdb.transcripts import (
    InvalidTranscriptOffsetError,
    TranscriptChunk,
    parse_transcript,
    reader,
    subagent_files,
)
from ctxdb.transcripts.errors import NotATranscriptError
from ctxdb.transcripts.text import clip
from ctxdb.transcripts.uploaded import UploadedTranscript

# Timestamps as Claude Code writes them, of a date that exists; anything else is stored as
# unknown (NULL) rather than handed to PostgreSQL's timestamptz parser (or stored by SQLite).
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
MAX_SUMMARY_CHARS = 100_000
MAX_PATH_CHARS = 4_096


def _timestamp(value: str | None) -> str | None:
    if value is None or not _TIMESTAMP.match(value) or not is_real_timestamp(value):
        return None
    return value


def _short(value: str | None) -> str | None:
    """A free-text field (model, trigger) bounded like any name."""
    return None if value is None else clip(value, MAX_NAME_LENGTH)


def _tokens(value: int | None) -> int | None:
    return None if value is None else min(value, MAX_INTEGER)


def _check_path(path: str) -> str:
    """A transcript path: the key of its row (and its audit rows' entity id), so indexed."""
    return check_text(path, "path", MAX_PATH_CHARS, MAX_INDEXED_BYTES)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _require_a_transcript(path: Path, chunk: TranscriptChunk) -> None:
    """A first read of a file with lines, none a transcript record (a JSON object with a
    ``type``), is a file given by mistake: refused, rather than reported as 0 new records."""
    typed = sum(count for kind, count in chunk.record_types.items() if kind != "?")
    if chunk.end_offset > chunk.start_offset and typed == 0:
        lines = chunk.records + chunk.malformed_lines
        raise NotATranscriptError(
            f"{path} is not a transcript: none of its {lines} line(s) is a JSON record with "
            "a type; nothing was recorded", path=str(path), reason="not_a_transcript")


class TranscriptService(Service):
    def ingest(
        self,
        path: str | os.PathLike[str],
        *,
        session_id: str | None = None,
        project_id: str | None = None,
        instance_id: str | None = None,
        include_subagents: bool = True,
        actor: str | None = None,
        client: str | None = None,
    ) -> dict[str, Any]:
        """Ingest what was appended to ``path`` (and its subagent files) since the last run;
        ``client`` names the agent client whose format the transcript is in (see
        ``ctxdb.transcripts.parse_transcript``; by default Claude Code's)."""
        main = Path(os.path.abspath(_check_path(os.fspath(path))))
        for what, value in (("session_id", session_id), ("project_id", project_id),
                            ("instance_id", instance_id)):
            if value is not None:
                check_identifier(value, what)
        files = [main, *(subagent_files(main) if include_subagents else [])]
        results = [self._ingest_file(file, session_id, project_id, instance_id,
                                     actor or self.settings.actor, subagent=file != main,
                                     client=client)
                   for file in files]
        return {
            "path": str(main),
            "files": results,
            "records": sum(r["records"] for r in results),
            "usage_entries": sum(r["usage_entries"] for r in results),
            "compactions": sum(r["compactions"] for r in results),
            "observations": sum(r["observations"] for r in results),
            "skipped_lines": sum(r["skipped_lines"] for r in results),
        }

    def _ingest_file(
        self, path: Path, session_id: str | None, project_id: str | None,
        instance_id: str | None, actor: str, *, subagent: bool, client: str | None,
    ) -> dict[str, Any]:
        """Every read of the file up to its end (one transaction each), summed."""
        _check_path(str(path))  # a subagent file's path is longer than its session's
        parts = [self._ingest_chunk(path, session_id, project_id, instance_id, actor,
                                    subagent=subagent, client=client)]
        while parts[-1]["applied"] and parts[-1]["more"]:
            parts.append(self._ingest_chunk(path, session_id, project_id, instance_id, actor,
                                            subagent=subagent, client=client))
        result = {"path": str(path), "from_offset": parts[0]["from_offset"],
                  "to_offset": parts[-1]["to_offset"], "reset": parts[0]["reset"],
                  "applied": any(part["applied"] for part in parts)}
        for count in ("records", "usage_entries", "compactions", "observations",
                      "skipped_lines"):
            result[count] = sum(part[count] for part in parts)
        return result

    def _ingest_chunk(
        self, path: Path, session_id: str | None, project_id: str | None,
        instance_id: str | None, actor: str, *, subagent: bool, client: str | None,
    ) -> dict[str, Any]:
        stored = self.storage.read(lambda tx: tx.one("transcript_by_path", path=str(path)))
        offset = int(stored["byte_offset"]) if stored else 0
        # A row another session holds (a remote agent may name any path: its rows are keys,
        # not files) does not say how far this file was read: read it from the start.
        reset = bool(stored and session_id and not subagent
                     and stored["session_id"] not in (None, session_id))
        try:
            chunk = parse_transcript(path, 0 if reset else offset, client)
        except InvalidTranscriptOffsetError:
            chunk, reset = parse_transcript(path, 0, client), True
        # the read stopped at its limit, not at the end of the file
        more = _size(path) - chunk.start_offset > reader.MAX_READ_BYTES
        return self._store(path, chunk, stored, offset, session_id, project_id, instance_id,
                           actor, subagent=subagent, reset=reset, more=more)

    def ingest_uploaded(self, upload: UploadedTranscript, *, session_id: str,
                        client: str | None = None, subagent: bool = False) -> int | None:
        """Ingest the bytes a remote agent sent of its transcript, as :meth:`ingest` reads
        the file, under the path the agent named (a name only: no file is opened). Returns
        the offset stored after it (where the agent's next bytes must start), None when the
        path is another session's.

        Bytes that do not reach the stored offset, or start past it, apply nothing (the agent
        sends again from the offset returned); bytes sent twice are read once, since the
        offset only moves by compare-and-set."""
        name = os.path.abspath(_check_path(upload.name))
        check_identifier(session_id, "session_id")
        stored = self.storage.read(lambda tx: tx.one("transcript_by_path", path=name))
        if stored is not None and stored["session_id"] not in (None, session_id):
            return None  # another session's file: not this agent's to move or to learn of
        offset = int(stored["byte_offset"]) if stored else 0
        reset = offset > upload.size  # the agent's file is shorter: replaced, read anew
        start = 0 if reset else offset
        if not upload.offset <= start <= upload.end:
            return offset
        chunk = parse_transcript(upload, start, client)
        done = self._store(Path(name), chunk, stored, offset, session_id, None, None,
                           self.settings.actor, subagent=subagent, reset=reset, more=False)
        return int(done["to_offset"]) if done["applied"] else self._offset_of(name, offset)

    def _offset_of(self, name: str, default: int) -> int:
        row = self.storage.read(lambda tx: tx.one("transcript_by_path", path=name))
        return default if row is None else int(row["byte_offset"])

    def _store(self, path: Path, chunk: TranscriptChunk, stored: Row | None, offset: int,
               session_id: str | None, project_id: str | None, instance_id: str | None,
               actor: str, *, subagent: bool, reset: bool, more: bool) -> dict[str, Any]:
        """Apply ``chunk`` read from ``offset`` (the stored one) in one transaction, unless
        another ingestion moved the offset first."""
        result = {"path": str(path), "from_offset": chunk.start_offset,
                  "to_offset": chunk.end_offset, "records": 0, "usage_entries": 0,
                  "compactions": 0, "observations": 0, "skipped_lines": 0, "reset": reset,
                  "applied": False, "more": more}
        if stored is None and not subagent:
            _require_a_transcript(path, chunk)
        if stored is not None and chunk.end_offset == offset and not reset:
            return result  # nothing new: a re-run writes nothing at all
        session = session_id if not subagent and session_id else chunk.session_id or session_id
        if session is None and stored is not None and stored["session_id"]:
            # A later read may hold no record naming the session (Codex names it once, in
            # the first): it stays the one the file was first filed under.
            session = str(stored["session_id"])
        if session is None:
            session = path.stem  # Claude Code names the file after its session
        check_identifier(session, "session_id")

        def unit(tx: Tx) -> dict[str, Any]:
            owner = self._owner(tx, session, project_id, instance_id)
            tx.execute("insert_transcript", path=str(path), session_id=session,
                       agent_id=chunk.agent_id, **owner)
            moved = tx.execute("advance_transcript", path=str(path), old_offset=offset,
                               new_offset=chunk.end_offset, records=chunk.records,
                               session_id=session, agent_id=chunk.agent_id, **owner)
            if not moved:  # another ingestion got there first (or this unit is a retry)
                return result
            applied = self._apply(tx, chunk, session, owner, subagent)
            audit(tx, actor, "transcript.ingest", "transcript", str(path), owner["project_id"],
                  session_id=session, from_offset=chunk.start_offset,
                  to_offset=chunk.end_offset, reset=reset, **applied)
            return {**result, **applied, "applied": True}

        return self.storage.write(unit)

    @staticmethod
    def _owner(tx: Tx, session: str, project_id: str | None,
               instance_id: str | None) -> dict[str, Any]:
        """The project and instance the session belongs to, when ctxdb knows them. With
        ``project_id``, an instance (given, or found by the session) of another project is
        refused: the transcript would otherwise join one project's records to another's."""
        if instance_id is not None:
            require_instance(tx, instance_id, project_id)
        else:
            row = tx.one("instance_by_session_id", session_id=session)
            if row is not None:
                instance_id = str(row["instance_id"])
                require_instance(tx, instance_id, project_id)
                project_id = project_id or row["project_id"]
        return {"project_id": project_id, "instance_id": instance_id}

    def _apply(self, tx: Tx, chunk: TranscriptChunk, session: str, owner: dict[str, Any],
               subagent: bool) -> dict[str, int]:
        for entry in chunk.usage:
            tx.execute(
                "upsert_api_usage", session_id=session, message_id=entry.message_id,
                agent_id=chunk.agent_id,
                input_tokens=_tokens(entry.input_tokens),
                output_tokens=_tokens(entry.output_tokens),
                cache_creation_tokens=_tokens(entry.cache_creation_input_tokens),
                cache_read_tokens=_tokens(entry.cache_read_input_tokens),
                model=_short(entry.model),
                sidechain=int(entry.sidechain or subagent),
                occurred_at=_timestamp(entry.timestamp), **owner)
        # Boundaries and the summaries that follow them, in file order, so that each summary
        # lands on the boundary just before it (possibly one stored by an earlier read).
        events: list[tuple[int, Any]] = [(c.offset, c) for c in chunk.compactions]
        events += [(s.offset, s) for s in chunk.compact_summaries]
        compactions = 0
        for _offset, event in sorted(events, key=lambda pair: pair[0]):
            if hasattr(event, "pre_tokens"):
                compactions += tx.execute(
                    "insert_compaction", session_id=session,
                    boundary_uuid=event.uuid or f"{chunk.path}:{event.offset}",
                    trigger_type=_short(event.trigger), pre_tokens=_tokens(event.pre_tokens),
                    occurred_at=_timestamp(event.timestamp), summary=None, **owner)
            else:
                tx.execute("summarize_latest_compaction", session_id=session,
                           summary=clip(event.text, MAX_SUMMARY_CHARS))
        instance = None if owner["instance_id"] is None else tx.one(
            "get_instance", instance_id=owner["instance_id"])
        self._note_usage(tx, chunk, instance, subagent)
        observations = record_observations(
            tx, chunk, Path(chunk.path), session, owner,
            None if instance is None else instance["generation"])
        return {"records": chunk.records, "usage_entries": len(chunk.usage),
                "compactions": compactions, "observations": observations,
                "skipped_lines": chunk.malformed_lines + chunk.rejected_lines}

    @staticmethod
    def _note_usage(tx: Tx, chunk: TranscriptChunk, instance: Row | None,
                    subagent: bool) -> None:
        """The instance's context in use, from the latest main-chain response read."""
        tokens = chunk.context_tokens
        if subagent or tokens is None or instance is None:
            return
        tx.execute("set_token_usage", instance_id=instance["instance_id"],
                   tokens=min(tokens, int(instance["context_window"])))

    # --- reading ---------------------------------------------------------------------------

    def usage(self, session_id: str) -> dict[str, Any]:
        """Every recorded API response of a session and their totals."""
        check_identifier(session_id, "session_id")

        def unit(tx: Tx) -> dict[str, Any]:
            return {"responses": tx.all("api_usage_of_session", session_id=session_id),
                    "totals": tx.one("usage_totals_of_session", session_id=session_id)}

        return self.storage.read(unit)

    def compactions(self, session_id: str) -> list[dict[str, Any]]:
        check_identifier(session_id, "session_id")
        return self.storage.read(
            lambda tx: tx.all("compactions_of_session", session_id=session_id))

    def get(self, path: str | os.PathLike[str]) -> dict[str, Any] | None:
        """The stored reading position of a transcript file, or None if never ingested."""
        absolute = os.path.abspath(_check_path(os.fspath(path)))
        return self.storage.read(lambda tx: tx.one("transcript_by_path", path=absolute))
