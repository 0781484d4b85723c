"""Prompt-time recall: on UserPromptSubmit, the project's records that match the prompt.

The prompt's words (``domain.recall``) are searched with the project's search
(``usecases.search``: relevance x priority x recency) over ``RECALL_KINDS``; hits under the
relevance floor, and records already injected in the session's generation (by SessionStart
or an earlier prompt), are dropped; the rest are written as a small block within
``recall_max_chars`` and recorded in ``injections`` like every injection (hook event
``UserPromptSubmit``, source ``recall``), with an audit row ``session.recall``.

The search runs in a read transaction; only a block worth injecting costs a write, in which
what the generation has been given is read again, so that two prompts never inject one
record twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ctxdb.domain.agents import AgentSession
from ctxdb.domain.ids import new_idempotency_key
from ctxdb.domain.recall import (
    RECALL_KINDS,
    hit_key,
    recall_query,
    recall_terms,
    recall_title,
    recalled_keys,
    render_recall,
    required_terms,
)
from ctxdb.service.common import Service, audit
from ctxdb.service.usecases.agent_session_rows import injection_view, record_injection
from ctxdb.service.usecases.instances import instance_of_project, require_instance
from ctxdb.service.usecases.search import search_in_tx
from ctxdb.storage import Tx
from ctxdb.storage.search_text import query_words

PROMPT_EVENT = "UserPromptSubmit"
SOURCE = "recall"
CANDIDATES = 10  # hits read, best first, before the floor and what was injected drop some


def already_injected(tx: Tx, instance: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(kind, id) of every record injected into the instance's current generation: the items
    of every injection, and whatever the recall blocks named."""
    keys: set[tuple[str, str]] = set()
    texts = []
    for row in tx.all("injections_of_generation", instance_id=instance["instance_id"],
                      generation=instance["generation"], hook_event=PROMPT_EVENT):
        ids = row["item_ids"]
        keys.update(("context", str(i)) for i in (json.loads(ids) if isinstance(ids, str)
                                                  else ids))
        texts.append(row["text"])
    return keys | recalled_keys(texts)


def relevant(hits: Sequence[dict[str, Any]], terms: Sequence[str]) -> list[dict[str, Any]]:
    """The hits that hold at least ``required_terms`` of ``terms`` (each term as the index
    holds words: its stems, every one of them for an identifier split in parts)."""
    wanted = [set(query_words((term,))) for term in terms]
    wanted = [stems for stems in wanted if stems]
    floor = required_terms(len(wanted))
    kept = []
    for hit in hits:
        words = set(str(hit["terms"]).split())
        if sum(stems <= words for stems in wanted) >= floor:
            kept.append(hit)
    return kept


def _own(hit: dict[str, Any], session: AgentSession) -> bool:
    """Whether ``hit`` is an observation of ``session`` itself (what it did is in its
    conversation, or in the summary that replaced it)."""
    return hit["kind"] == "observation" and str(hit["session_id"]) == session.session_id


class RecallService(Service):
    def for_prompt(self, session: AgentSession, prompt: str, actor: str | None = None, *,
                   instance: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """Inject what the project holds about ``prompt`` into the session's context: the
        injection recorded (its ``text`` is what to inject), or None when there is nothing
        to add (recall off, a reply rather than a topic, nothing relevant or nothing new,
        an unknown session).

        ``instance``: the session's instance as the prompt's own transaction has just left
        it, which the search then does not read again (its project and generation are what
        it needs; the injection's transaction reads the instance afresh)."""
        session = session.checked()
        if not self.settings.recall or not isinstance(prompt, str):
            return None
        terms = recall_terms(prompt)
        if not terms:
            return None
        engine = self.storage.search_engine()

        def find(tx: Tx) -> tuple[Mapping[str, Any] | None, list[dict[str, Any]]]:
            nonlocal instance
            if instance is None:
                row = tx.one("session_instance", session_id=session.session_id,
                             client=session.client)
                if row is None:
                    return None, []
                instance = instance_of_project(row, row["instance_id"])
            hits = search_in_tx(tx, engine, instance["project_id"], recall_query(terms),
                                kinds=RECALL_KINDS, limit=CANDIDATES)
            seen = already_injected(tx, instance)
            return instance, [hit for hit in relevant(hits, terms)
                              if hit_key(hit) not in seen and not _own(hit, session)]

        found, hits = self.storage.read(find)
        if found is None or not hits:
            return None
        return self._inject(session, found["instance_id"], hits,
                            actor or found["instance_id"])

    def _inject(self, session: AgentSession, instance_id: str, hits: list[dict[str, Any]],
                actor: str) -> dict[str, Any] | None:
        key = new_idempotency_key()

        def unit(tx: Tx) -> dict[str, Any] | None:
            done = tx.one("injection_by_key", idempotency_key=key)
            if done is not None:  # a retry of this unit after its first attempt committed
                return injection_view(done)
            instance = require_instance(tx, instance_id)
            seen = already_injected(tx, instance)
            rendered = render_recall([hit for hit in hits if hit_key(hit) not in seen],
                                     title=recall_title(instance["project_id"]),
                                     max_chars=self.settings.recall_max_chars)
            if not rendered.text:
                return None
            result = record_injection(tx, instance, session, SOURCE, rendered.text,
                                      rendered.item_ids, None, key, hook_event=PROMPT_EVENT)
            audit(tx, actor, "session.recall", "instance", instance_id,
                  instance["project_id"], session_id=session.session_id,
                  injection_id=result["injection_id"],
                  records=[f"{kind}:{ident}" for kind, ident in rendered.keys])
            return result

        return self.storage.write(unit)
