"""Plain text for the model: short, deterministic renderings of service results."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

# Longest content shown per item in a search listing, unless the caller asks for it whole.
PREVIEW_CHARS = 600


def content_text(content: Any) -> str:
    """Text content as it is, JSON content as compact JSON (keys in stored order)."""
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, separators=(", ", ": "))


def preview(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters; ask with full_content]"


def handoff_text(handoff: dict[str, Any]) -> str:
    lines = [f"Latest handoff #{handoff['handoff_id']} ({handoff['kind']}) from instance "
             f"{handoff['instance_id']}, generation {handoff['generation']}, at "
             f"{handoff['created_at']}:"]
    if handoff["summary"]:
        lines.append(f"Summary: {handoff['summary']}")
    if handoff["next_steps"]:
        lines.append("Next steps:")
        lines += [f"- {content_text(step)}" for step in handoff["next_steps"]]
    if handoff["working_set"]:
        lines.append(f"Working set: {content_text(handoff['working_set'])}")
    return "\n".join(lines)


def item_line(item: dict[str, Any], limit: int | None = PREVIEW_CHARS) -> str:
    phase = "" if item["phase_id"] is None else f", phase {item['phase_id']}"
    return (f"- item {item['item_id']} (seq {item['sequence_number']}, {item['priority']} "
            f"{item['content_type']}, {item['token_count']} tokens{phase}): "
            f"{preview(content_text(item['content']), limit)}")


def stored_text(item: dict[str, Any]) -> str:
    return (f"Stored context item {item['item_id']} (seq {item['sequence_number']}) in project "
            f"{item['project_id']}: {item['priority']} {item['content_type']}, "
            f"{item['token_count']} tokens.")


def search_text(
    project_id: str, query: str | None, result: dict[str, Any], full_content: bool
) -> str:
    items = result["items"]
    what = f"matching {query!r}" if query and query.strip() else "(no text filter)"
    lines = [f"{len(items)} context item{'s' if len(items) != 1 else ''} {what} in project "
             f"{project_id}, newest first."]
    lines += [item_line(item, None if full_content else PREVIEW_CHARS) for item in items]
    if result["has_more"]:
        lines.append("More items match: raise limit or narrow the filters.")
    return "\n".join(lines)


def hit_id(hit: dict[str, Any]) -> str:
    """The id of a hit as ``get`` takes it (and ``timeline``, for an event or an
    observation)."""
    if hit["kind"] == "context":
        return f"item:{hit['id']}"
    if hit["kind"] == "memory":
        return f"memory:{hit['namespace']}/{hit['key']}"
    if hit["kind"] == "observation":
        return f"observation:{hit['id']}"
    return f"event:{hit['session_id']}/{hit['sequence']}"


def hit_line(hit: dict[str, Any]) -> str:
    """One search hit on one line: its id, what it is, score, time and snippet."""
    if hit["kind"] == "context":
        what = f"{hit['priority']} {hit['type']}, seq {hit['sequence']}"
    elif hit["kind"] == "memory":
        what = f"memory v{hit['version']}, {hit['type']}"
    elif hit["kind"] == "observation":
        what = f"{hit['type']} in session {hit['session_id']}"
    else:
        what = f"{hit['type']} event"
    return (f"- {hit_id(hit)} ({what}) score {hit['score']:.2f}, {hit['time']}: "
            f"{hit['snippet']}")


def observation_text(observation: dict[str, Any]) -> str:
    """One observation of an agent session's timeline, whole."""
    code = observation["exit_code"]
    status = f" (exit {code})" if code is not None else ""
    return (f"observation:{observation['observation_id']} [{observation['kind']}] "
            f"{observation['occurred_at']} session {observation['session_id']}: "
            f"{observation['text']}{status}")


def event_text(event: dict[str, Any]) -> str:
    """One conversation event, whole."""
    return (f"#{event['sequence']} [{event['role']}] {event['created_at']}: "
            f"{content_text(event['content'])}")


def search_hits_text(project_id: str, query: str, hits: list[dict[str, Any]],
                     limit: int) -> str:
    lines = [f"{len(hits)} best match{'es' if len(hits) != 1 else ''} for {query!r} in project "
             f"{project_id} (matching words between **; whole records: get with the ids):"]
    lines += [hit_line(hit) for hit in hits]
    if len(hits) == limit:
        lines.append("More may match: raise limit or narrow the search.")
    return "\n".join(lines)


def usage_text(instance: dict[str, Any]) -> str:
    used, window = instance["current_token_usage"], instance["context_window"]
    return f"{used} of {window} tokens ({used / window * 100:.1f}%)"


def heartbeat_text(instance: dict[str, Any]) -> str:
    return (f"Instance {instance['instance_id']} is {instance['status']} (project "
            f"{instance['project_id']}, generation {instance['generation']}, "
            f"{usage_text(instance)}); last heartbeat {instance['last_heartbeat']}.")


def instance_line(instance: dict[str, Any]) -> str:
    details = [instance["status"], f"client {instance['client']}",
               f"generation {instance['generation']}", usage_text(instance),
               f"last heartbeat {instance['last_heartbeat']}"]
    for name in ("phase_id", "branch", "worktree", "session_id"):
        if instance[name] is not None:
            details.append(f"{name.replace('_id', '')} {instance[name]}")
    return f"- {instance['instance_id']}: {', '.join(details)}"


def instances_text(project_id: str, instances: Iterable[dict[str, Any]],
                   status: str | None) -> str:
    rows = list(instances)
    which = f"{status} " if status else ""
    lines = [f"{len(rows)} {which}instance{'s' if len(rows) != 1 else ''} in project "
             f"{project_id}."]
    lines += [instance_line(row) for row in rows]
    return "\n".join(lines)


def handoff_recorded_text(handoff: dict[str, Any]) -> str:
    return (f"Recorded handoff #{handoff['handoff_id']} ({handoff['kind']}) for instance "
            f"{handoff['instance_id']}, generation {handoff['generation']}, at "
            f"{handoff['tokens_before']} tokens; its usage is unchanged.")


def memory_label(memory: dict[str, Any]) -> str:
    return f"{memory['namespace']}/{memory['key']} v{memory['version']} ({memory['memory_type']})"


def memory_text(memory: dict[str, Any]) -> str:
    expiry = f", expires at {memory['expires_at']}" if memory.get("expires_at") else ""
    return (f"Memory {memory_label(memory)}, written by {memory['updated_by']} at "
            f"{memory['updated_at']}{expiry}:\n{content_text(memory['value'])}")


def memory_version_text(version: dict[str, Any]) -> str:
    what = "deleted" if version["op"] == "delete" else content_text(version["value"])
    return (f"Memory {version['namespace']}/{version['key']} version {version['version']} "
            f"({version['memory_type']}), written by {version['written_by']} at "
            f"{version['written_at']}:\n{what}")


def memory_stored_text(memory: dict[str, Any]) -> str:
    return (f"Stored memory {memory_label(memory)}; pass expected_version="
            f"{memory['version']} to update it only if nobody else has.")


def memories_text(project_id: str, prefix: str, memories: list[dict[str, Any]],
                  limit: int) -> str:
    where = f"under '{prefix}' " if prefix else ""
    lines = [f"{len(memories)} memories {where}in project {project_id}"
             + (":" if memories else ".")]
    lines += [f"- {memory_label(m)}: {preview(content_text(m['value']), PREVIEW_CHARS)}"
              for m in memories]
    if memories and len(memories) == limit:
        last = memories[-1]
        lines.append(f"More may follow: call again with after_namespace='{last['namespace']}' "
                     f"and after_key='{last['key']}'.")
    return "\n".join(lines)


def event_appended_text(event: dict[str, Any]) -> str:
    return (f"Appended event #{event['sequence']} ({event['role']}) to session "
            f"{event['session_id']} at {event['created_at']}; idempotency key "
            f"'{event['idempotency_key']}' (appending again with it returns this event).")


def session_events_text(session_id: str, events: list[dict[str, Any]], after: int,
                        limit: int) -> str:
    where = f" after #{after}" if after else ""
    lines = [f"{len(events)} events of session {session_id}{where}"
             + (":" if events else ".")]
    lines += [f"#{e['sequence']} [{e['role']}] {preview(content_text(e['content']), PREVIEW_CHARS)}"
              for e in events]
    if events and len(events) == limit:
        lines.append(f"More may follow: call again with after_sequence={events[-1]['sequence']}.")
    return "\n".join(lines)
