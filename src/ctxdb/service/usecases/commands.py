"""Command runs: what was run (or is to be run) for a project, how it went, how long it took.

A run names a ``command`` (a program such as ``pytest``, or a command type such as ``PRIME``)
with a JSON array of ``arguments``, an optional working directory and the instance that runs
it. Its status only moves forward:

    queued ─start→ running ─finish→ success | failed
       │              └────cancel→ cancelled
       └──finish / cancel (it never started: e.g. the program was not found)

``finish`` records the exit code, the output and an error message; its status is ``success``
for exit code 0 and ``failed`` otherwise, unless given. The duration is the caller's
measurement when it has one, else the database clock's time from start to finish (none for a
run that never started). A run that is finished never changes again: any further transition
is refused with :class:`InvalidTransitionError`. :meth:`CommandService.record` stores a run
that already finished in one step.

Creating a run carries an idempotency key (one is made up when the caller gives none):
creating the same command again with a key the project already holds returns that run as it
is now and writes nothing; another command, arguments, folder or instance under that key is
refused with :class:`IdempotencyConflictError`.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ctxdb.domain.checks import check_arguments, check_exit_code
from ctxdb.domain.ids import new_idempotency_key
from ctxdb.domain.validation import (
    check_choice,
    check_identifier,
    check_limit,
    check_non_negative_int,
    check_optional_int,
    check_positive_id,
    check_text,
)
from ctxdb.domain.vocabulary import FINISHED_RUN_STATUSES, UNFINISHED_RUN_STATUSES, RunStatus
from ctxdb.errors import (
    CommandRunNotFoundError,
    InvalidStatusError,
    InvalidTransitionError,
    ValidationError,
)
from ctxdb.service.common import Service, audit, same_request
from ctxdb.service.usecases.instances import require_instance
from ctxdb.service.usecases.projects import require_project
from ctxdb.storage import Row, Tx

MAX_PAGE = 1_000
MAX_COMMAND = 1_000
MAX_PATH = 4_096
MAX_ERROR = 100_000
MAX_DURATION_MS = 10 * 365 * 24 * 3600 * 1000  # ten years: anything longer is a mistake


def _outcome(status: str | None, exit_code: int | None) -> RunStatus:
    """The final status: the one given, else success for exit code 0 and failed otherwise."""
    if status is not None:
        return check_choice(status, RunStatus, "command run status",
                            allowed=FINISHED_RUN_STATUSES, error=InvalidStatusError)
    if exit_code is None:
        raise ValidationError("give an exit_code or a final status (success, failed or "
                              "cancelled) to finish a command run")
    return RunStatus.SUCCESS if exit_code == 0 else RunStatus.FAILED


def _run(row: Row) -> dict[str, Any]:
    if isinstance(row.get("arguments"), str):  # both backends hand JSON over as text
        row["arguments"] = json.loads(row["arguments"])
    return row


def _elapsed_ms(start: str | None, end: str | None) -> int | None:
    if start is None or end is None:
        return None
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return max(0, round(delta.total_seconds() * 1000))


def require_run(tx: Tx, run_id: int, project_id: str | None = None,
                *, lock: bool = False) -> dict[str, Any]:
    """The run (locked with ``lock``); with ``project_id``, another project's run is refused
    as unknown, so that ids never reach across projects."""
    row = tx.one("lock_command_run" if lock else "get_command_run", run_id=run_id)
    if row is None or (project_id is not None and row["project_id"] != project_id):
        where = f" in project {project_id!r}" if project_id is not None else ""
        raise CommandRunNotFoundError(f"unknown command run {run_id}{where}", run_id=run_id)
    return _run(row)


class CommandService(Service):
    def queue(
        self,
        project_id: str,
        command: str,
        arguments: Sequence[Any] = (),
        *,
        cwd: str | None = None,
        instance_id: str | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Record a run that is to happen (``queued``); ``start`` and ``finish`` follow."""
        return self._create(project_id, command, arguments, RunStatus.QUEUED, cwd=cwd,
                            instance_id=instance_id, idempotency_key=idempotency_key,
                            actor=actor)

    def record(
        self,
        project_id: str,
        command: str,
        arguments: Sequence[Any] = (),
        *,
        exit_code: int | None = None,
        status: str | None = None,
        output: str = "",
        error: str | None = None,
        duration_ms: int | None = None,
        cwd: str | None = None,
        instance_id: str | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Record a run that already finished, in one step: its status is ``status``, or
        success for exit code 0 and failed otherwise; with ``duration_ms`` it started that
        long before now."""
        final = _outcome(status, check_exit_code(exit_code))
        return self._create(project_id, command, arguments, final, cwd=cwd,
                            instance_id=instance_id, idempotency_key=idempotency_key,
                            actor=actor, exit_code=exit_code, output=output, error=error,
                            duration_ms=duration_ms)

    def get(self, run_id: int, *, project_id: str | None = None) -> dict[str, Any]:
        """One run, with its whole output."""
        check_positive_id(run_id, "run_id")
        if project_id is not None:
            check_identifier(project_id, "project_id")
        return self.storage.read(lambda tx: require_run(tx, run_id, project_id))

    def list(
        self,
        project_id: str,
        *,
        status: str | None = None,
        command: str | None = None,
        instance_id: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> builtins.list[dict[str, Any]]:
        """A page of a project's runs, oldest first, without their output; pass the last
        one's id as ``after``."""
        check_identifier(project_id, "project_id")
        status_value = "" if status is None else check_choice(
            status, RunStatus, "command run status", error=InvalidStatusError).value
        for value, what in ((command, "command"), (instance_id, "instance_id")):
            if value is not None:
                check_identifier(value, what)
        check_non_negative_int(after, "after")
        check_limit(limit, MAX_PAGE)

        def unit(tx: Tx) -> builtins.list[dict[str, Any]]:
            require_project(tx, project_id)
            if instance_id is not None:  # a filter naming another project's record is refused
                require_instance(tx, instance_id, project_id)
            rows = tx.all("list_command_runs", project_id=project_id, status=status_value,
                          command=command or "", instance_id=instance_id or "",
                          after_run_id=after, limit=limit)
            return [_run(row) for row in rows]

        return self.storage.read(unit)

    def start(self, run_id: int, *, project_id: str | None = None,
              actor: str | None = None) -> dict[str, Any]:
        """A queued run began: queued → running (``started_at`` is now)."""

        def change(tx: Tx, run: dict[str, Any]) -> dict[str, Any]:
            if run["status"] != RunStatus.QUEUED:
                raise InvalidTransitionError(
                    f"command run {run_id} is {run['status']}, not queued: cannot start it",
                    run_id=run_id, status=run["status"])
            tx.execute("start_command_run", run_id=run_id)
            return {}

        return self._transition(run_id, "start", change, project_id, actor)

    def finish(
        self,
        run_id: int,
        *,
        exit_code: int | None = None,
        status: str | None = None,
        output: str = "",
        error: str | None = None,
        duration_ms: int | None = None,
        project_id: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """A queued or running run ended: with ``exit_code`` (success when 0, failed
        otherwise, unless ``status`` says), its ``output`` and an ``error`` message."""
        check_positive_id(run_id, "run_id")
        final = _outcome(status, check_exit_code(exit_code))
        self._check_results(output, error, duration_ms)

        def change(tx: Tx, run: dict[str, Any]) -> dict[str, Any]:
            self._require_unfinished(run, "finish it")
            tx.execute("finish_command_run", run_id=run_id, status=final.value,
                       exit_code=exit_code, output=output, error=error)
            self._set_duration(tx, run_id, duration_ms)
            return {"status": final.value, "exit_code": exit_code}

        return self._transition(run_id, "finish", change, project_id, actor)

    def cancel(self, run_id: int, *, error: str | None = None,
               project_id: str | None = None, actor: str | None = None) -> dict[str, Any]:
        """Give up a queued or running run (``error`` may say why)."""
        check_positive_id(run_id, "run_id")
        self._check_results("", error, None)

        def change(tx: Tx, run: dict[str, Any]) -> dict[str, Any]:
            self._require_unfinished(run, "cancel it")
            tx.execute("finish_command_run", run_id=run_id,
                       status=RunStatus.CANCELLED.value, exit_code=None, output=run["output"],
                       error=error)
            self._set_duration(tx, run_id, None)
            return {"previous_status": run["status"]}

        return self._transition(run_id, "cancel", change, project_id, actor)

    # --- helpers ---------------------------------------------------------------------------

    def _create(self, project_id: str, command: str, arguments: Sequence[Any],
                status: RunStatus, *, cwd: str | None, instance_id: str | None,
                idempotency_key: str | None, actor: str | None, exit_code: int | None = None,
                output: str = "", error: str | None = None,
                duration_ms: int | None = None) -> dict[str, Any]:
        check_identifier(project_id, "project_id")
        check_identifier(command, "command")
        check_text(command, "command", MAX_COMMAND)
        arguments_json = check_arguments(arguments, self.settings.max_content_bytes)
        if cwd is not None:
            check_text(cwd, "cwd", MAX_PATH)
        if instance_id is not None:
            check_identifier(instance_id, "instance_id")
        self._check_results(output, error, duration_ms)
        key = check_identifier(idempotency_key or new_idempotency_key(), "idempotency_key")
        actor = check_identifier(actor or instance_id or self.settings.actor, "actor")
        values = {"project_id": project_id, "instance_id": instance_id, "command": command,
                  "arguments": arguments_json, "cwd": cwd, "status": status.value,
                  "exit_code": exit_code, "output": output, "error": error,
                  "duration_ms": duration_ms, "created_by": actor, "idempotency_key": key,
                  "duration_seconds": None if duration_ms is None else duration_ms / 1000}

        def unit(tx: Tx) -> dict[str, Any]:
            existing = tx.value("command_run_by_key", project_id=project_id,
                                idempotency_key=key)
            if existing is not None:  # its status, output and timings may have moved on
                return same_request(require_run(tx, existing), {
                    "command": command, "arguments": json.loads(arguments_json), "cwd": cwd,
                    "instance_id": instance_id}, what="command run", key=key,
                    id_field="run_id")
            require_project(tx, project_id, active=True)
            if instance_id is not None:
                require_instance(tx, instance_id, project_id)
            run_id = tx.value("insert_command_run", **values)
            action = "queue" if status is RunStatus.QUEUED else "record"
            audit(tx, actor, f"command.{action}", "command_run", run_id, project_id,
                  command=command, status=status.value, exit_code=exit_code,
                  instance_id=instance_id)
            return require_run(tx, run_id)

        return self.storage.write(unit)

    def _check_results(self, output: object, error: object, duration_ms: object) -> None:
        check_text(output, "output", self.settings.max_content_bytes)
        if error is not None:
            check_text(error, "error", MAX_ERROR)
        check_optional_int(duration_ms, "duration_ms", MAX_DURATION_MS)

    @staticmethod
    def _require_unfinished(run: dict[str, Any], doing: str) -> None:
        if run["status"] not in UNFINISHED_RUN_STATUSES:
            raise InvalidTransitionError(
                f"command run {run['run_id']} already ended ({run['status']}): cannot {doing}",
                run_id=run["run_id"], status=run["status"])

    @staticmethod
    def _set_duration(tx: Tx, run_id: int, duration_ms: int | None) -> None:
        """The caller's measurement, else the database clock's from start to the finish
        just written (none for a run that never started)."""
        if duration_ms is None:
            run = require_run(tx, run_id)
            duration_ms = _elapsed_ms(run["started_at"], run["finished_at"])
        tx.execute("set_command_run_duration", run_id=run_id, duration_ms=duration_ms)

    def _transition(self, run_id: int, action: str, change: Any, project_id: str | None,
                    actor: str | None) -> dict[str, Any]:
        """Run ``change`` on the locked run of an active project; audited."""
        check_positive_id(run_id, "run_id")
        if project_id is not None:
            check_identifier(project_id, "project_id")
        actor_value = None if actor is None else check_identifier(actor, "actor")

        def unit(tx: Tx) -> dict[str, Any]:
            run = require_run(tx, run_id, project_id, lock=True)
            require_project(tx, run["project_id"], active=True)
            details = change(tx, run)
            audit(tx, actor_value or run["instance_id"] or self.settings.actor,
                  f"command.{action}", "command_run", run_id, run["project_id"], **details)
            return require_run(tx, run_id)

        return self.storage.write(unit)
