"""A project's context packed within a token budget, read inside the caller's transaction:
what a context load, a clear-and-reload and a hook's session start inject."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ctxdb.domain.models import PRIORITY_ORDER, Priority
from ctxdb.domain.packing import DEFAULT_MAX_SKIPS, Pack, Row, pack_items
from ctxdb.errors import ConflictError
from ctxdb.service.common import decode, decode_all
from ctxdb.storage import Tx

CONTENT_BATCH = 64  # the ids item_contents takes (:id0 … :id63)
SIZES_PAGE = 256  # rows of a tier read at a time without their content
# The rows of the tiers' first pages that come with their content (see startup_pack).
CONTENT_WITH_PAGES = CONTENT_BATCH
# The columns of pack_tier_sizes_in_phase and pack_tier_sizes_outside_phase, in order.
_SIZE_COLUMNS = ("item_id", "priority", "content_type", "token_count", "sequence_number")


def current_phase_id(tx: Tx, project_id: str) -> int | None:
    row = tx.one("current_phase", project_id=project_id)
    return None if row is None else int(row["phase_id"])


def pack_in_tx(
    tx: Tx, project_id: str, budget: int, phase_id: int | None,
    max_skips: int = DEFAULT_MAX_SKIPS, *, partial_critical: bool = False,
) -> Pack:
    """The budgeted pack, read inside the caller's transaction (see ``domain.packing``;
    ``partial_critical`` for a reload, which must not fail)."""
    focus = current_phase_id(tx, project_id) if phase_id is None else phase_id
    critical = decode_all(tx.all("items_of_priority", project_id=project_id,
                                 priority="CRITICAL", phase_id=None))

    def whole_items(query: str, phase: int, priority: str) -> Iterator[Row]:
        for row in tx.stream(query, project_id=project_id, phase_id=phase, priority=priority):
            yield decode(row)

    def tier(priority: Priority) -> Iterator[Row]:
        if focus is not None:
            yield from whole_items("pack_tier_in_phase", focus, priority.value)
        yield from whole_items("pack_tier_outside_phase", -1 if focus is None else focus,
                               priority.value)

    tiers = ((priority, tier(priority)) for priority in PRIORITY_ORDER[1:])
    return pack_items(critical, tiers, budget, max_skips, partial_critical=partial_critical)


def first_pages_read(project_id: str, phase_id: int | None) -> tuple[str, dict[str, Any]]:
    """The first read of :func:`startup_pack`, for a unit to prefetch (Tx.prefetch)."""
    return "startup_pack_first_pages", {"project_id": project_id, "phase_id": phase_id,
                                        "limit": SIZES_PAGE,
                                        "content_rows": CONTENT_WITH_PAGES}


def startup_pack(tx: Tx, project_id: str, budget: int, phase_id: int | None) -> Pack:
    """The pack a session start injects. Like ``tokens.clear_and_reload``'s it never fails:
    CRITICAL items over the budget are left out and named (the injected text says how to
    fetch them), rather than fail the agent's session start.

    Its HIGH, MEDIUM and LOW items are read without their content, but for the first
    CONTENT_WITH_PAGES of them in tier order: a reload budget of 50,000 tokens packs hundreds of
    items, an injection of under 10,000 characters shows a few dozen (those first ones,
    unless packing skipped some), and the rest are only counted. An item shown without its
    content reads it (with that of the next items) when the injection is written and first
    asks for it. The text is the same as with whole items; only the content of what is
    likely shown is read and decoded. The transaction must stay open while the items are
    read. Its manifest is not itemized (see ``pack_items``): an injection does not show it.

    The phase, the CRITICAL items and each tier's first page, with those contents, come in
    one statement (``startup_pack_first_pages``): the contents came in a second one, a round
    trip more for every start. A tier goes on a page at a time only past a full one.
    """
    parts: dict[int, list[Row]] = {}
    focus = -1
    query, params = first_pages_read(project_id, phase_id)
    for row in tx.all(query, **params):
        part, focus = row.pop("part"), row.pop("focus")
        del row["ord"]
        # The columns (and their order) of items_of_priority, or of the size queries (with
        # the content, when it came: the rows an injection is likely to show).
        parts.setdefault(part, []).append(decode(row) if part == 0 else _sized(row))

    def sizes(part: int, query: str) -> Iterator[Row]:
        rows: Sequence[Row] = parts.get(part, [])
        yield from rows
        while len(rows) == SIZES_PAGE:  # a full page: the next, until packing stops
            rows = tx.all(query, project_id=project_id, phase_id=focus,
                          priority=rows[0]["priority"], before=rows[-1]["sequence_number"],
                          limit=SIZES_PAGE)
            yield from rows

    def tier(index: int) -> Iterator[Row]:
        yield from sizes(2 * index + 1, "pack_tier_sizes_in_phase")
        yield from sizes(2 * index + 2, "pack_tier_sizes_outside_phase")

    tiers = ((priority, tier(index)) for index, priority in enumerate(PRIORITY_ORDER[1:]))
    pack = pack_items(parts.get(0, []), tiers, budget, DEFAULT_MAX_SKIPS,
                      partial_critical=True, itemized=False)
    reader = ContentReader(tx, project_id)
    pack.items = [row if "content" in row else reader.add(row) for row in pack.items]
    return pack


def _sized(row: Row) -> Row:
    """A tier's row of the first pages as the size queries read it, with its content if the
    row came with it."""
    sized = {name: row[name] for name in _SIZE_COLUMNS}
    if row["content"] is not None:
        sized["content"] = decode({"content": row["content"]})["content"]
    return sized


class ItemWithoutContent(dict[str, Any]):
    """A packed item read without its content: ``item["content"]`` reads it (``in`` and
    ``get`` do not), with the content of the next items of the pack."""

    __slots__ = ("reader",)
    reader: ContentReader

    def __missing__(self, key: str) -> Any:
        if key != "content":
            raise KeyError(key)
        self.reader.read_from(self)
        return self[key]


class ContentReader:
    """Reads the content of a pack's items in the order they are shown, CONTENT_BATCH at a
    time (a rendering shows items in pack order, and stops at the first that does not fit)."""

    def __init__(self, tx: Tx, project_id: str) -> None:
        self.tx = tx
        self.project_id = project_id
        self.items: list[ItemWithoutContent] = []
        self._position: dict[int, int] = {}  # id() of an item -> its index, made on first use

    def add(self, row: Row) -> ItemWithoutContent:
        item = ItemWithoutContent(row)
        item.reader = self
        self.items.append(item)
        return item

    def read_from(self, first: ItemWithoutContent) -> None:
        if not self._position:
            self._position = {id(item): index for index, item in enumerate(self.items)}
        index = self._position[id(first)]
        batch = [item for item in self.items[index:index + CONTENT_BATCH]
                 if "content" not in item]
        ids = [item["item_id"] for item in batch]
        slots = {f"id{n}": ids[n] if n < len(ids) else None for n in range(CONTENT_BATCH)}
        contents = {row["item_id"]: decode(row)["content"]
                    for row in self.tx.all("item_contents", project_id=self.project_id,
                                           **slots)}
        for item in batch:
            item["content"] = contents[item["item_id"]] if item["item_id"] in contents \
                else self._archived(item["item_id"])

    def _archived(self, item_id: int) -> Any:
        """The content of an item gc archived since the pack read it as live (on PostgreSQL,
        whose statements each see the latest commits): the one it had then."""
        row = self.tx.one("archived_item_content", project_id=self.project_id,
                          item_id=item_id)
        if row is None:  # archived and forgotten in between: the pack cannot be shown whole
            raise ConflictError(f"context item {item_id} was removed while the pack was read; "
                                "try again")
        return decode(row)["content"]
