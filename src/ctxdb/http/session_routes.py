"""The ``/v1`` routes of conversation sessions (an app's sessions with its users) and their
events: create, list, get, replace the state, close, append an event, read the events; and the
timeline of what agent sessions did (docs/timeline.md).

Every id is looked up by the service within the URL's project, so another project's session
answers exactly like an unknown one. See docs/conversations.md for what a session holds.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ctxdb.http import workflow_models as w
from ctxdb.http.encoding import EncodedRoute
from ctxdb.http.problems import PROBLEM_RESPONSES
from ctxdb.http.routing import IdempotencyKey, Reader, Writer, project_naming

v1 = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES, route_class=EncodedRoute)
SESSION = "/projects/{project_id}/sessions/{session_id}"


@v1.post("/projects/{project_id}/sessions", response_model=w.Session, status_code=201)
def create_session(caller: Writer, project_id: str, body: w.SessionIn,
                   key: IdempotencyKey = None) -> Any:
    return caller.db.conversations.create(
        project_naming(caller, project_id, body.instance_id), body.app_name, body.user_id,
        instance_id=body.instance_id, state=body.state, idempotency_key=key)


@v1.get("/projects/{project_id}/sessions", response_model=list[w.Session])
def list_sessions(caller: Reader, project_id: str, app_name: str | None = None,
                  user_id: str | None = None, status: str | None = None,
                  after: str | None = None, limit: int = 100) -> Any:
    """A page of the project's sessions, oldest first: pass the last one's id as ``after``."""
    return caller.db.conversations.list(caller.project(project_id), app_name=app_name,
                                        user_id=user_id, status=status, after=after,
                                        limit=limit)


@v1.get(SESSION, response_model=w.Session)
def get_session(caller: Reader, project_id: str, session_id: str) -> Any:
    return caller.db.conversations.get(session_id, project_id=caller.project(project_id))


@v1.put(SESSION + "/state", response_model=w.Session)
def set_session_state(caller: Writer, project_id: str, session_id: str,
                      body: w.SessionStateIn) -> Any:
    return caller.db.conversations.update_state(session_id, body.state,
                                                project_id=caller.project(project_id))


@v1.post(SESSION + "/close", response_model=w.Session)
def close_session(caller: Writer, project_id: str, session_id: str) -> Any:
    return caller.db.conversations.close(session_id, project_id=caller.project(project_id))


@v1.post(SESSION + "/events", response_model=w.Event, status_code=201)
def append_event(caller: Writer, project_id: str, session_id: str, body: w.EventIn,
                 key: IdempotencyKey = None) -> Any:
    """Append an event; with ``Idempotency-Key`` (per session) a retry gets the first event."""
    return caller.db.conversations.append(
        session_id, body.role, body.content, metadata=body.metadata, idempotency_key=key,
        project_id=caller.project(project_id))


@v1.get(SESSION + "/events", response_model=list[w.Event])
def list_events(caller: Reader, project_id: str, session_id: str, after_sequence: int = 0,
                limit: int = 100) -> Any:
    """A page of events in order: pass the last one's ``sequence`` as ``after_sequence``."""
    return caller.db.conversations.events(session_id, after_sequence=after_sequence,
                                          limit=limit, project_id=caller.project(project_id))


@v1.get("/projects/{project_id}/timeline", response_model=list[w.Observation])
def timeline(caller: Reader, project_id: str, session_id: str | None = None,
             since: str | None = None, limit: int = 50) -> Any:
    """The latest observations of the project (or of one agent session), oldest first;
    ``since`` is ISO-8601 or an age (``7d``)."""
    return caller.db.observations.timeline(caller.project(project_id), session_id=session_id,
                                           since=since, limit=limit)
