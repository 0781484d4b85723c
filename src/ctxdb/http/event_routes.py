"""``GET /v1/events``: the change feed as Server-Sent Events (docs/server.md, "The change feed").

Each event is one change of the token's project (a fleet-wide token: of every project, or of
``?project_id=``): ``id`` is the cursor to resume after it, ``event`` the kind of record
changed, ``data`` one JSON object naming the project, the record, the action, its actor and
time. A client that reconnects sends the last id it received (``Last-Event-ID``, as browsers
do, or ``?after=``) and gets exactly what it missed; without one it starts from now.

The stream reads the feed when the process's change signal rings (LISTEN/NOTIFY on
PostgreSQL, a poll of the file on SQLite; ``storage/change_signal.py``) and sends a comment
line every ``HEARTBEAT_SECONDS`` so that proxies keep the connection open. At each heartbeat
the token is checked again: a revoked or expired token ends the stream, and reconnecting is
then refused. When the server is asked to stop, :func:`end_streams` ends every stream at once
(a stream never ends by itself, so the graceful shutdown would otherwise wait its whole
timeout and then cut them); clients reconnect, to another replica or to the restarted
server, with their last id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ctxdb.errors import CtxdbError
from ctxdb.http.auth import Caller, bearer_secret
from ctxdb.http.encoding import EncodedRoute
from ctxdb.http.problems import PROBLEM_RESPONSES
from ctxdb.http.routing import Reader
from ctxdb.service import Ctxdb
from ctxdb.service.usecases.changes import Change, Position

HEARTBEAT_SECONDS = 15.0
BATCH = 200
RETRY_MILLISECONDS = 2_000

v1 = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES, route_class=EncodedRoute)

_STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {200: {
    "description": "A stream of Server-Sent Events (text/event-stream): `id` (the cursor), "
                   "`event` (the entity type) and `data` (a JSON object: id, project_id, "
                   "entity_type, entity_id, action, actor, occurred_at); comment lines as "
                   "heartbeats.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}}}}


class _Streams:
    """The app's open streams: how to wake each, and whether the server is stopping."""

    def __init__(self) -> None:
        self.wakers: set[Callable[[], None]] = set()
        self.closing = False


def _streams(app: FastAPI) -> _Streams:
    streams: _Streams | None = getattr(app.state, "feed_streams", None)
    if streams is None:
        streams = app.state.feed_streams = _Streams()
    return streams


def end_streams(app: FastAPI) -> None:
    """End every stream of the app now and refuse to wait in new ones (the server stops)."""
    streams = _streams(app)
    streams.closing = True
    for wake in list(streams.wakers):
        wake()


def encode(change: Change, named: bool = True) -> str:
    """One event in the SSE wire format; ``named``: its ``event`` field is the entity type
    (else it is a plain ``message`` event, which a page hears with one listener)."""
    data = json.dumps(change.to_dict(), separators=(",", ":"), sort_keys=True)
    name = f"event: {change.entity_type}\n" if named else ""
    return f"id: {change.cursor}\n{name}data: {data}\n\n"


def still_signed(db: Ctxdb, secret: str) -> Callable[[], bool]:
    """Whether the token of ``secret`` is still valid (read from the database when asked)."""

    def check() -> bool:
        try:
            db.access_tokens.authenticate(secret)
        except CtxdbError:
            return False
        return True

    return check


def _scope(caller: Caller, project_id: str | None) -> str | None:
    """The one project whose changes the caller gets, or ``None`` for all (a fleet token)."""
    if not caller.fleet_wide:
        return caller.project(project_id or caller.token["project_id"])
    if project_id is not None:
        caller.db.projects.get(project_id)  # an unknown project is refused, not followed
    return project_id


@v1.get("/events", response_class=StreamingResponse, responses=_STREAM_RESPONSE)
async def follow_changes(
        caller: Reader, request: Request, project_id: str | None = None,
        after: Annotated[str | None, Query(description="resume after this event id")] = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
        max_seconds: Annotated[float | None, Query(
            ge=0, le=86_400, description="end the stream after this many seconds (0: send "
                                         "what is there and end)")] = None,
) -> StreamingResponse:
    """The live change feed of the token's projects, as Server-Sent Events."""
    scope = await run_in_threadpool(_scope, caller, project_id)
    start = await run_in_threadpool(caller.db.changes.start, last_event_id or after)
    return feed_response(request.app, caller.db, scope, start,
                         still_signed(caller.db, bearer_secret(request)),
                         math.inf if max_seconds is None else max_seconds)


def feed_response(app: FastAPI, db: Ctxdb, scope: str | None, start: Position,
                  still_allowed: Callable[[], bool], max_seconds: float = math.inf,
                  *, named: bool = True) -> StreamingResponse:
    """The feed after ``start`` (of project ``scope``, or of all with ``None``) as a stream of
    Server-Sent Events, ended when ``still_allowed`` (asked at each heartbeat) says no, or
    when ``app``'s server stops. Shared by ``/v1/events`` and the dashboard's own stream
    (``/ui/events``, signed in by cookie, with unnamed events), which ``create_app`` hands
    this function."""
    stream = _Stream(db, _streams(app), scope, still_allowed, max_seconds, named)
    return StreamingResponse(stream.events(start), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class _Stream:
    """One client's stream: reads after its position whenever the signal rings."""

    def __init__(self, db: Ctxdb, streams: _Streams, scope: str | None,
                 still_allowed: Callable[[], bool], max_seconds: float, named: bool) -> None:
        self.db, self.streams, self.scope, self.named = db, streams, scope, named
        self.still_allowed = still_allowed
        self.max_seconds = max_seconds
        self.wake = asyncio.Event()

    def _ringer(self) -> Callable[[], None]:
        loop = asyncio.get_running_loop()

        def ring() -> None:  # called in the signal's thread
            with contextlib.suppress(RuntimeError):  # a closed loop: the stream is over
                loop.call_soon_threadsafe(self.wake.set)

        return ring

    async def events(self, position: Position) -> AsyncIterator[str]:
        ring = self._ringer()
        unsubscribe = self.db.changes.subscribe(ring)
        self.streams.wakers.add(ring)
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n: ctxdb change feed\n\n"
            async for text in self._follow(position):
                yield text
        finally:
            self.streams.wakers.discard(ring)
            unsubscribe()

    async def _follow(self, position: Position) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_seconds
        beat = loop.time() + HEARTBEAT_SECONDS
        while True:
            self.wake.clear()  # before reading: a ring during the read reads again
            batch = await run_in_threadpool(self.db.changes.since, position, self.scope, BATCH)
            position = batch.position
            for change in batch.changes:
                yield encode(change, self.named)
            if batch.full:
                continue
            now = loop.time()
            if now >= deadline or self.streams.closing:
                return
            if now >= beat:
                if not await run_in_threadpool(self.still_allowed):
                    return
                yield ": heartbeat\n\n"
                beat = now + HEARTBEAT_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), min(beat, deadline) - now)
