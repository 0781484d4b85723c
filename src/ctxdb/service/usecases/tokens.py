"""Token management: usage tracking and the clear-and-reload cycle with its handoff."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from ctxdb.domain.ids import new_idempotency_key
from ctxdb.domain.resume import has_substance
from ctxdb.domain.validation import (
    check_choice,
    check_identifier,
    check_limit,
    check_non_negative_int,
    check_optional_int,
    check_text,
    encode_json,
)
from ctxdb.domain.vocabulary import HandoffKind
from ctxdb.errors import InvalidTransitionError, TokenUsageOutOfRangeError, ValidationError
from ctxdb.service.common import Service, audit, decode, decode_all
from ctxdb.service.idempotency import claim_of, write_once
from ctxdb.service.usecases.instances import instance_of_project, require_instance
from ctxdb.service.usecases.packs import pack_in_tx
from ctxdb.service.usecases.projects import require_project
from ctxdb.storage import Tx

MAX_SUMMARY = 100_000
# How many of a project's newest handoffs are looked through for one with substance.
RECENT_HANDOFFS = 20
MAX_HANDOFFS_LISTED = 500


def usage_view(instance: dict[str, Any]) -> dict[str, Any]:
    used, window = instance["current_token_usage"], instance["context_window"]
    return {
        "instance_id": instance["instance_id"],
        "project_id": instance["project_id"],
        "current_token_usage": used,
        "context_window": window,
        "percentage": used / window * 100,
        "tokens_remaining": window - used,
        "generation": instance["generation"],
    }


def reached(used: int, window: int, threshold: float) -> bool:
    """Whether usage is at or past ``threshold`` of the window, exactly as the user wrote it.

    In binary floating point 0.55 * 200000 is 110000.00000000001, so 110000 tokens would not
    count as having reached 55%; the decimal value of the threshold is compared instead.
    """
    return used >= Fraction(repr(threshold)) * window


class TokenService(Service):
    def update_usage(
        self, instance_id: str, token_count: int, actor: str | None = None
    ) -> dict[str, Any]:
        """Set the instance's usage; must lie within the instance's own context window."""
        if isinstance(token_count, bool) or not isinstance(token_count, int):
            raise TokenUsageOutOfRangeError(f"token count must be an integer, got {token_count!r}")

        def unit(tx: Tx) -> dict[str, Any]:
            instance = require_instance(tx, instance_id)
            window = instance["context_window"]
            if not 0 <= token_count <= window:
                raise TokenUsageOutOfRangeError(
                    f"token count {token_count} is outside 0..{window}, the context window of "
                    f"instance {instance_id!r}",
                    token_count=token_count, context_window=window,
                )
            tx.execute("set_token_usage", instance_id=instance_id, tokens=token_count)
            audit(tx, actor or instance_id, "tokens.update", "instance", instance_id,
                  instance["project_id"], previous=instance["current_token_usage"],
                  current=token_count)
            return usage_view(require_instance(tx, instance_id))

        return self.storage.write(unit)

    def check_usage(self, instance_id: str) -> dict[str, Any]:
        return usage_view(self.storage.read(lambda tx: require_instance(tx, instance_id)))

    def all_usage(self, project_id: str | None = None) -> dict[str, Any]:
        """Usage of every live instance, flagged ``warning`` at or past the clear threshold."""
        def unit(tx: Tx) -> list[dict[str, Any]]:
            if project_id is not None:
                require_project(tx, project_id)
            return tx.all("list_live_instances", project_id=project_id or "")

        rows = self.storage.read(unit)
        instances = []
        for row in rows:
            view = usage_view(row)
            warn = reached(row["current_token_usage"], row["context_window"],
                           self.settings.clear_threshold)
            instances.append({**view, "status": "warning" if warn else "healthy",
                              "instance_status": row["status"]})
        total = sum(i["current_token_usage"] for i in instances)
        return {
            "instances": instances,
            "total_instances": len(instances),
            "total_tokens_used": total,
            "average_usage": total / len(instances) if instances else 0.0,
        }

    def _handoff_json(
        self, summary: str, kind: str, next_steps: Any, working_set: Any
    ) -> tuple[str, str]:
        """Check a handoff's fields; returns next steps and working set as JSON text."""
        check_text(summary, "summary", MAX_SUMMARY)
        check_choice(kind, HandoffKind, "handoff kind")
        limit = self.settings.max_content_bytes
        return (encode_json([] if next_steps is None else next_steps, "next_steps", limit),
                encode_json({} if working_set is None else working_set, "working_set", limit))

    def clear_and_reload(
        self,
        instance_id: str,
        *,
        summary: str = "",
        next_steps: list[Any] | None = None,
        working_set: dict[str, Any] | None = None,
        kind: str = "clear",
        budget_tokens: int | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """One transaction: save a handoff, reset usage, bump the generation, reload the pack.

        The pack's budget defaults to ``pack_budget_fraction`` of the instance's window. The
        cycle must go on when the project's CRITICAL items alone exceed it: the clear happens
        all the same, the reload carries the CRITICAL items that fit (in sequence order), and
        the others are named in ``critical_omitted`` and the manifest (``doctor`` warns about
        such a project).
        """
        check_identifier(instance_id, "instance_id")
        if budget_tokens is not None:
            check_non_negative_int(budget_tokens, "budget_tokens")
        steps, working = self._handoff_json(summary, kind, next_steps, working_set)
        key = new_idempotency_key()

        def unit(tx: Tx) -> dict[str, Any]:
            instance = decode(tx.one("lock_instance", instance_id=instance_id)
                              or require_instance(tx, instance_id))
            budget = budget_tokens if budget_tokens is not None else int(
                instance["context_window"] * self.settings.pack_budget_fraction)
            handoff_id = tx.value("handoff_by_key", idempotency_key=key)
            if handoff_id is None:
                handoff_id = self._clear(tx, instance, key, kind, summary, steps, working, actor)
            # else: a retry of this unit after its first attempt committed; nothing to redo.
            handoff = decode(tx.one("get_handoff", handoff_id=handoff_id) or {})
            pack = pack_in_tx(tx, instance["project_id"], budget, instance["phase_id"],
                              partial_critical=True)
            return self._reload_result(handoff, tx.one("get_instance", instance_id=instance_id)
                                       or instance, pack)

        return self.storage.write(unit)

    def clear(
        self, instance_id: str, *, summary: str = "", actor: str | None = None
    ) -> dict[str, Any]:
        """Reset usage to 0 and start a new generation, recording a ``clear`` handoff.

        Unlike :meth:`clear_and_reload` nothing is read back: the context items stay as they
        are. Returns the usage view with the ``handoff``.
        """
        check_identifier(instance_id, "instance_id")
        check_text(summary, "summary", MAX_SUMMARY)
        key = new_idempotency_key()

        def unit(tx: Tx) -> dict[str, Any]:
            instance = decode(tx.one("lock_instance", instance_id=instance_id)
                              or require_instance(tx, instance_id))
            handoff_id = tx.value("handoff_by_key", idempotency_key=key)
            if handoff_id is None:  # else a retry after the first attempt committed
                handoff_id = self._clear(tx, instance, key, "clear", summary, "[]", "{}", actor,
                                         action="tokens.clear")
            handoff = decode(tx.one("get_handoff", handoff_id=handoff_id) or {})
            return {**usage_view(require_instance(tx, instance_id)), "handoff": handoff}

        return self.storage.write(unit)

    @staticmethod
    def _clear(
        tx: Tx, instance: dict[str, Any], key: str, kind: str, summary: str, steps: str,
        working: str, actor: str | None, action: str = "tokens.clear_and_reload",
    ) -> int:
        """Save the handoff, reset usage, bump the generation; returns the handoff id."""
        instance_id = instance["instance_id"]
        if instance["status"] == "completed":
            raise InvalidTransitionError(f"instance {instance_id!r} has ended")
        handoff_id = int(tx.value(
            "insert_handoff", project_id=instance["project_id"], instance_id=instance_id,
            generation=instance["generation"], kind=kind, summary=summary, next_steps=steps,
            working_set=working, tokens_before=instance["current_token_usage"],
            idempotency_key=key))
        tx.execute("observe_handoff", handoff_id=handoff_id)  # on the session's timeline
        generation = tx.value("clear_token_usage", instance_id=instance_id)
        audit(tx, actor or instance_id, action, "instance", instance_id,
              instance["project_id"], tokens_before=instance["current_token_usage"],
              generation=generation, handoff_id=handoff_id)
        return handoff_id

    @staticmethod
    def _reload_result(
        handoff: dict[str, Any], instance: dict[str, Any], pack: Any
    ) -> dict[str, Any]:
        counts = pack.counts()
        return {
            "instance_id": instance["instance_id"],
            "project_id": instance["project_id"],
            "tokens_before": handoff["tokens_before"],
            "tokens_after": instance["current_token_usage"],
            "generation": instance["generation"],
            "context_items_loaded": len(pack.items),
            "critical_items": counts["CRITICAL"],
            "high_items": counts["HIGH"],
            "medium_items": counts["MEDIUM"],
            "low_items": counts["LOW"],
            "status": "ready",
            "handoff": handoff,
            "items": pack.items,
            "critical_omitted": pack.critical_omitted,
            "manifest": pack.manifest.to_dict(),
        }

    def auto_manage(
        self, instance_id: str, threshold: float | None = None, **handoff: Any
    ) -> dict[str, Any] | None:
        """Clear and reload when usage has reached ``threshold`` of the window, else ``None``."""
        threshold = self.settings.clear_threshold if threshold is None else threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
                or not 0 < threshold <= 1:
            raise ValidationError(f"threshold must be in (0, 1], got {threshold!r}")
        usage = self.check_usage(instance_id)
        if not reached(usage["current_token_usage"], usage["context_window"], threshold):
            return None
        return self.clear_and_reload(instance_id, **handoff)

    def record_handoff(
        self,
        instance_id: str,
        *,
        summary: str = "",
        next_steps: list[Any] | None = None,
        working_set: dict[str, Any] | None = None,
        kind: str = "manual",
        project_id: str | None = None,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Save a handoff of the instance's current generation, leaving its usage untouched.

        For an agent that wants to leave notes for its successor (or its own next generation)
        before it is cleared or compacted; :meth:`clear_and_reload` is the variant that also
        resets the usage. One transaction with its audit row; returns the stored handoff.
        With ``project_id``, an instance of another project is refused: a handoff is the
        first thing its project's agents load. With ``idempotency_key``, a retry gets the
        first answer.
        """
        check_identifier(instance_id, "instance_id")
        if project_id is not None:
            check_identifier(project_id, "project_id")
        if next_steps is not None and not isinstance(next_steps, list):
            raise ValidationError(
                f"next_steps must be a list, got {type(next_steps).__name__}")
        if working_set is not None and not isinstance(working_set, dict):
            raise ValidationError(
                f"working_set must be a JSON object, got {type(working_set).__name__}")
        steps, working = self._handoff_json(summary, kind, next_steps, working_set)
        if not (summary.strip() or next_steps or working_set):
            raise ValidationError("a handoff needs a summary, next steps or a working set")
        key = new_idempotency_key()
        claim = None if idempotency_key is None else claim_of(
            project_id or self.instance_project(instance_id), "handoff.record",
            idempotency_key, {"instance_id": instance_id, "summary": summary,
                              "next_steps": next_steps, "working_set": working_set,
                              "kind": kind})

        def unit(tx: Tx) -> dict[str, Any]:
            instance = instance_of_project(tx.one("lock_instance", instance_id=instance_id),
                                           instance_id, project_id)
            handoff_id = tx.value("handoff_by_key", idempotency_key=key)
            if handoff_id is None:  # else a retry after the first attempt committed
                if instance["status"] == "completed":
                    raise InvalidTransitionError(f"instance {instance_id!r} has ended",
                                                 instance_id=instance_id)
                handoff_id = int(tx.value(
                    "insert_handoff", project_id=instance["project_id"],
                    instance_id=instance_id, generation=instance["generation"], kind=kind,
                    summary=summary, next_steps=steps, working_set=working,
                    tokens_before=instance["current_token_usage"], idempotency_key=key))
                tx.execute("observe_handoff", handoff_id=handoff_id)
                audit(tx, actor or instance_id, "tokens.handoff", "instance", instance_id,
                      instance["project_id"], handoff_id=handoff_id, kind=kind,
                      generation=instance["generation"])
            return decode(tx.one("get_handoff", handoff_id=handoff_id) or {})

        return write_once(self.storage, claim, unit)

    def instance_project(self, instance_id: str) -> str:
        return str(self.storage.read(
            lambda tx: require_instance(tx, instance_id))["project_id"])

    def latest_handoff(
        self, *, instance_id: str | None = None, project_id: str | None = None
    ) -> dict[str, Any] | None:
        """The newest handoff of the instance, else of the project. With both, the instance
        must belong to the project. The project's is its newest with something to resume
        from: a session whose transcript could not be read (another client's format, a lost
        file) leaves a bare handoff when it stops, which must not hide the one before it."""
        if instance_id is None and project_id is None:
            raise ValidationError("give instance_id or project_id")

        def unit(tx: Tx) -> dict[str, Any] | None:
            if instance_id is not None:
                require_instance(tx, instance_id, project_id)
                row = tx.one("latest_handoff_of_instance", instance_id=instance_id)
            else:
                require_project(tx, str(project_id))
                rows = decode_all(tx.all("recent_handoffs_of_project", project_id=project_id,
                                         limit=RECENT_HANDOFFS))
                return next((row for row in rows if has_substance(row)),
                            rows[0] if rows else None)
            return decode(row) if row else None

        return self.storage.read(unit)

    def handoffs(
        self, instance_id: str, project_id: str | None = None, *,
        before_id: int | None = None, limit: int = 20,
    ) -> list[dict[str, Any]]:
        """The instance's handoffs, newest first: at most ``limit``, with ``before_id`` only
        those older than that handoff (the next page). With ``project_id``, an instance of
        another project is refused, as ``latest_handoff`` refuses it."""
        check_optional_int(before_id, "before_id")
        check_limit(limit, MAX_HANDOFFS_LISTED)

        def unit(tx: Tx) -> list[dict[str, Any]]:
            require_instance(tx, instance_id, project_id)
            return decode_all(tx.all("handoffs_of_instance", instance_id=instance_id,
                                     before_id=before_id, limit=limit))

        return self.storage.read(unit)
